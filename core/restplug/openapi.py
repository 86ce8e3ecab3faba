"""The OpenAPI 3.1 document, built from the resources' schemas and parameters, and Swagger UI.

Everything here is derived from what the server validates with (the resources' marshmallow
schemas, their list parsers, the methods' fields), so the document cannot drift from the
server: a generated client sends only what the server accepts and can parse every answer.
"""

from __future__ import annotations

import functools
from importlib import resources as package_files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.field_converter import FieldConverterMixin
from marshmallow import Schema, fields, missing

from restplug import __version__
from restplug.errors import PROBLEM_JSON
from restplug.http import JSON, json_response
from restplug.query import COUNT_MODES, MAX_PAGE, MAX_SIZE

if TYPE_CHECKING:
    from restplug.app import Restplug
    from restplug.query import ListParser
    from restplug.resources import Resource
    from restplug.routes import Handler, Route

PROBLEM = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"type": "object", "description": "messages per field or parameter"},
    },
    "required": ["type", "title", "status"],
}
STRING = {"type": "string"}
ETAG = "the version of the document, for If-Match and If-None-Match"
#: Headers of cached reads (apps, price histories).
CACHE_HEADERS = {
    "X-Cache": {
        "description": "HIT or MISS",
        "schema": {"type": "string", "enum": ["HIT", "MISS"]},
    },
    "Cache-Control": {"description": "how long a copy may be kept", "schema": STRING},
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": STRING}}
#: Answers of every route that reads a JSON body (restplug.http.read_json).
BODY_ERRORS = {
    "400": "malformed JSON, or nested too deep",
    "408": "the body did not arrive within RESTPLUG_BODY_TIMEOUT",
    "413": "the body is larger than RESTPLUG_MAX_BODY",
    "415": "not a JSON content type",
    "422": "invalid document (per-field messages in errors)",
}
SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>restplug API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
deepLinking: true, persistAuthorization: true});</script>
</body></html>
"""


def problem_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response object for a problem+json error."""
    return response_object(PROBLEM_JSON, PROBLEM, description, headers or {})


def header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response header object."""
    return {"description": description, "schema": schema or STRING}


def json_content(schema: Any, description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI response object with a JSON body (``schema`` may be a schema class)."""
    return response_object(JSON, schema, description, headers)


def response_object(
    media_type: str, schema: Any, description: str, headers: dict[str, Any]
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def page_schema(item: Any, **extra: dict[str, Any]) -> dict[str, Any]:
    """The list envelope every list of the API answers, with ``item`` (a JSON schema or a
    schema class) for its items and ``extra`` properties beside the usual ones."""
    properties = {
        "items": {"type": "array", "items": item},
        "total": {"type": ["integer", "null"], "minimum": 0},
        "page": {"type": ["integer", "null"], "minimum": 1},
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
        "pages": {"type": ["integer", "null"], "minimum": 0},
        "next_cursor": {"type": ["string", "null"]},
        **extra,
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def guaranteed(schema: type[Schema]) -> list[str]:
    """The keys every stored document has: required fields, and those with a load default
    (documents are stored as the schema loaded and dumped them)."""
    return [
        field.data_key or name
        for name, field in schema().fields.items()
        if not field.load_only and (field.required or field.load_default is not missing)
    ]


def nested_schema(field: fields.Field) -> type[Schema] | None:
    """The schema of an object field, of a list's or a map's objects."""
    if isinstance(field, fields.List):
        field = field.inner
    elif isinstance(field, fields.Dict) and field.value_field is not None:
        field = field.value_field
    return type(field.schema) if isinstance(field, fields.Nested) else None


def differs_on_read(schema: type[Schema]) -> bool:
    """Reads guarantee more keys than writes require, here or in a nested object."""
    instance = schema()
    required = [f.data_key or n for n, f in instance.fields.items() if f.required]
    return guaranteed(schema) != required or any(
        differs_on_read(nested)
        for field in instance.fields.values()
        if (nested := nested_schema(field)) is not None
    )


def renamed_refs(schema: Any, renames: dict[str, str]) -> Any:
    if isinstance(schema, list):
        return [renamed_refs(s, renames) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("$ref") in renames:
        return {**schema, "$ref": renames[schema["$ref"]]}
    return {k: renamed_refs(v, renames) for k, v in schema.items()}


def partial(schema: Any, components: dict[str, Any], *, nullable: bool = False) -> Any:
    """``schema`` with its references inlined and nothing required, at any depth: what a
    projection (``fields=``) returns, or, ``nullable`` (null removes a key), a merge patch."""
    if isinstance(schema, list):
        return [partial(s, components, nullable=nullable) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return partial(components[schema["$ref"].rsplit("/", 1)[1]], components, nullable=nullable)
    result = {k: partial(v, components, nullable=nullable) for k, v in schema.items()}
    result.pop("required", None)
    if nullable and "properties" in result:
        result["properties"] = {k: or_null(v) for k, v in result["properties"].items()}
    return result


def or_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": list(dict.fromkeys([*kind, "null"]))}
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class OpenAPIBuilder:
    def __init__(self, restplug: Restplug) -> None:
        self.restplug = restplug
        self.plugin = MarshmallowPlugin()
        self.spec = APISpec(
            title="restplug",
            version=__version__,
            openapi_version="3.1.0",
            plugins=[self.plugin],
            info={"description": "Plugin-based REST API: the game catalogue."},
        )
        self.spec.components.schema("Problem", PROBLEM_SCHEMA)
        self.spec.components.security_scheme(
            "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or opaque token"}
        )
        #: Components made from others once all are known: name -> (source, nullable).
        self.partials: dict[str, tuple[str, bool]] = {}
        self.names: dict[str, str] = {}
        #: Base name -> the component of what reads return.
        self.reads: dict[str, str] = {}

    def param(
        self, name: str, field: fields.Field, description: str = "", where: str = "query"
    ) -> dict[str, Any]:
        schema = self.plugin.converter.field2property(field)
        # A load default says what a document gets, not what a filter means: sent by a
        # generated client, it would add a filter to every request.
        schema.pop("default", None)
        return self.param_object(name, schema, description or schema.pop("description", ""), where)

    @staticmethod
    def param_object(
        name: str, schema: dict[str, Any], description: str, where: str = "query"
    ) -> dict[str, Any]:
        param = {
            "name": name,
            "in": where,
            "required": where == "path",
            "schema": schema,
            "description": description,
        }
        if schema.get("type") == "array":
            param.update(style="form", explode=False)  # one comma list: a,b,c
        return param

    def list_parameters(self, parser: ListParser) -> list[dict[str, Any]]:
        resource = parser.resource
        orders = [form for name in parser.sort_names for form in (name, f"-{name}")]
        params = [
            self.param_object(
                "page",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                "page number, from 1 (not with cursor)",
            ),
            self.param_object(
                "size",
                {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                "items per page (default 20)",
            ),
            self.param_object(
                "cursor", STRING, "opaque cursor from next_cursor, with the same filters"
            ),
            self.param_object(
                "order_by",
                {"type": "string", "enum": orders},
                order_by_description(parser),
            ),
            self.fields_parameter(),
            self.param_object(
                "count",
                {"type": "string", "enum": list(COUNT_MODES)},
                "exact (default) or none to skip the total",
            ),
        ]
        for name, (path, op) in parser.field_params.items():
            field = resource.field_at(path)
            if isinstance(field, fields.List):
                field = field.inner
            if op == "isnull":
                field = fields.Boolean()
            param = self.param(name, field, f"{path} {op or 'equals'}")
            if op in ("in", "not_in"):
                param = self.param_object(
                    name,
                    {"type": "array", "items": param["schema"], "minItems": 1},
                    f"{path} {op} (comma list)",
                )
            params.append(param)
        for method in parser.methods.values():
            params.append(self.param(method.name, method.field, method.description))
        return params

    def fields_parameter(self) -> dict[str, Any]:
        return self.param_object(
            "fields",
            {"type": "string", "minLength": 1},
            "comma list of document paths to return (a projection)",
        )

    def operation(self, route: Route, resource: Resource | None) -> dict[str, Any]:
        op: dict[str, Any] = {"responses": {}}
        if resource is not None:
            op["tags"] = [resource.name]
        if route.requirement is not None:
            op["security"] = [{"bearer": route.requirement.scopes()}]
            op["responses"]["401"] = problem_response("missing or invalid bearer token")
            op["responses"]["403"] = problem_response(f"needs {route.requirement}")
        elif route.action == "write":
            op["responses"]["403"] = problem_response(
                "writes are closed unless a plugin allows them"
            )
        if route.parser is not None:
            declared = self.list_operation(route.parser)
            op["responses"].update(declared.pop("responses"))
            op.update(declared)
        declared = dict(route.operation)
        op["responses"] = {**declared.pop("responses", {}), **op["responses"]}
        op.update(declared)
        return op

    def components(self, resource: Resource) -> str:
        """Register the schemas of a resource; returns its base name (``App``): ``App`` is
        what writes take, ``AppRead`` what reads return, ``AppProjection`` a ``fields=``
        answer, ``AppPatch`` a merge patch and ``AppPage`` a list page."""
        if resource.name in self.names:
            return self.names[resource.name]
        name = resource.schema.__name__.removesuffix("Schema") or resource.name
        self.spec.components.schema(name, schema=resource.schema)
        read_schema = resource.read_schema or resource.schema
        if read_schema is resource.schema and not differs_on_read(read_schema):
            self.reads[name] = name  # reads return what writes take: one component
        else:
            self.reads[name] = self.read_component(read_schema, f"{name}Read")
        self.partials[f"{name}Projection"] = (self.reads[name], False)
        self.spec.components.schema(f"{name}Page", page_schema(self.document_or_projection(name)))
        self.names[resource.name] = name
        return name

    def document_or_projection(self, name: str) -> dict[str, Any]:
        """A read with or without ``fields=``: a generated client tries the whole document
        first, then the projection (which requires nothing)."""
        return {"anyOf": [ref(self.reads[name]), ref(f"{name}Projection")]}

    def read_component(self, schema: type[Schema], name: str) -> str:
        """Register ``schema`` as reads return it, under ``name``: every key a stored document
        has is required, in nested objects too (``PlatformsRead`` where that differs from
        what writes need)."""
        if name not in self.spec.components.schemas:
            read = self.plugin.converter.schema2jsonschema(schema)
            read["required"] = guaranteed(schema)
            renames = {}
            for field in schema().fields.values():
                nested = nested_schema(field)
                if nested is not None and differs_on_read(nested):
                    written = ref(self.plugin.schema_name_resolver(nested))["$ref"]
                    base = nested.__name__.removesuffix("Schema")
                    renames[written] = ref(self.read_component(nested, f"{base}Read"))["$ref"]
            self.spec.components.schema(name, renamed_refs(read, renames))
        return name

    def list_operation(self, parser: ListParser) -> dict[str, Any]:
        """The GET of a list: its parameters, the page and the errors it can answer."""
        name = self.components(parser.resource)
        return {
            "summary": f"List {parser.resource.name}",
            "parameters": self.list_parameters(parser),
            "responses": {
                "200": json_content(
                    ref(f"{name}Page"),
                    "a page",
                    Link=header('rel="next" and rel="prev" page links (RFC 8288)'),
                ),
                "304": {"description": "not modified (If-None-Match)"},
                "400": problem_response("unknown parameter or bad value"),
                **(
                    {"501": problem_response("a filter's plugin built a query no store answers")}
                    if parser.methods
                    else {}
                ),
            },
        }

    def resource_operations(self, resource: Resource) -> dict[tuple[str, str], dict[str, Any]]:
        name = self.components(resource)
        self.partials[f"{name}Patch"] = (name, True)
        body = {"required": True, "content": {"application/json": {"schema": ref(name)}}}
        read = json_content(ref(self.reads[name]), "the document", ETag=header(ETAG))
        id_param = id_parameter(resource)
        if_match = self.param_object(
            "If-Match", STRING, "the ETag of the version you change", "header"
        )
        write_errors = {
            "404": problem_response("no such id"),
            "412": problem_response("stale If-Match"),
            "428": problem_response("If-Match is required (RESTPLUG_REQUIRE_IF_MATCH)"),
        }
        parser = self.restplug.parsers[resource.name]
        listing = self.list_operation(parser)
        listing["responses"]["200"]["headers"].update(CACHE_HEADERS)
        return {
            ("get", resource.path): listing,
            ("post", resource.path): {
                "summary": f"Create one of {resource.name}",
                "requestBody": body,
                "responses": {
                    "201": {
                        **read,
                        "headers": {**read["headers"], "Location": header("the new document")},
                    },
                    "409": problem_response("the id exists"),
                },
            },
            ("get", f"{resource.path}/{{id}}"): {
                "summary": f"Read one of {resource.name}",
                "parameters": [
                    id_param,
                    self.fields_parameter(),
                    self.param_object(
                        "If-None-Match", STRING, "an ETag you have: 304 if unchanged", "header"
                    ),
                ],
                "responses": {
                    "200": json_content(
                        self.document_or_projection(name),
                        "the document, or the fields asked for",
                        ETag=header(ETAG),
                        **CACHE_HEADERS,
                    ),
                    "304": {"description": "not modified (If-None-Match)"},
                    "400": problem_response("unknown parameter or fields"),
                    "404": problem_response("no such id"),
                },
            },
            ("put", f"{resource.path}/{{id}}"): {
                "summary": f"Replace one of {resource.name}",
                "parameters": [id_param, if_match],
                "requestBody": body,
                "responses": {"200": read, **write_errors},
            },
            ("patch", f"{resource.path}/{{id}}"): {
                "summary": f"Change one of {resource.name} with a JSON merge patch (RFC 7396)",
                "parameters": [id_param, if_match],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {"schema": ref(f"{name}Patch")},
                        "application/json": {"schema": ref(f"{name}Patch")},
                    },
                },
                "responses": {"200": read, **write_errors},
            },
            ("delete", f"{resource.path}/{{id}}"): {
                "summary": f"Delete one of {resource.name}",
                "parameters": [id_param, if_match],
                "responses": {"204": {"description": "deleted"}, **write_errors},
            },
        }

    def build(self) -> dict[str, Any]:
        generated: dict[tuple[str, str], dict[str, Any]] = {}
        for resource in self.restplug.resources.values():
            if resource.default_routes:  # else the plugin's routes describe themselves
                generated.update(self.resource_operations(resource))
        paths: dict[str, dict[str, Any]] = {}
        for route in self.restplug.routes:
            if not route.documented:
                continue
            resource = self.restplug.resources.get(route.resource or "")
            key = (route.method.lower(), route.path)
            op = {**generated.get(key, {})}
            extra = self.operation(route, resource)
            op["responses"] = {**op.get("responses", {}), **extra.pop("responses")}
            op.update(extra)
            complete_responses(op)
            for described in self.restplug.route_docs.get((route.method, route.path), []):
                add_described(op, described)
            paths.setdefault(route.path, {})[key[0]] = op
        for path, operations in paths.items():
            self.spec.path(path=path, operations=operations)
        document = self.spec.to_dict()
        schemas = document["components"]["schemas"]
        for name, (source, nullable) in self.partials.items():
            schemas[name] = partial(schemas[source], schemas, nullable=nullable)
        return document


def id_parameter(resource: Resource, name: str = "id") -> dict[str, Any]:
    """The path parameter of a resource's id, typed by its id field (an integer for apps, a
    string for tasks), for the routes of a resource and those a plugin adds below it."""
    field = resource.schema().fields[resource.id_field]
    schema = _field_converter().field2property(field)
    for key in ("readOnly", "default"):  # a path parameter is always sent
        schema.pop(key, None)
    return OpenAPIBuilder.param_object(name, schema, f"the {resource.id_field}", "path")


@functools.cache
def _field_converter() -> FieldConverterMixin:
    """marshmallow fields to OpenAPI schemas, for scalar fields outside a document's build."""
    plugin = MarshmallowPlugin()
    APISpec(title="restplug", version=__version__, openapi_version="3.1.0", plugins=[plugin])
    assert plugin.converter is not None
    return plugin.converter


def order_by_description(parser: ListParser) -> str:
    """What ``order_by`` takes: the default, and what each sort method sorts by."""
    text = "- for descending; the server also takes a comma list of keys; default " + ",".join(
        parser.resource.default_order
    )
    methods = [f"{m.name}: {m.description}" for m in parser.sort_methods.values() if m.description]
    return "; ".join([text, *methods])


def complete_responses(op: dict[str, Any]) -> None:
    """The answers any route can give besides its own: the body errors of a route taking a
    body, and 503 (a backend down or too slow) everywhere."""
    responses = op["responses"]
    if "requestBody" in op:
        for status, description in BODY_ERRORS.items():
            responses.setdefault(status, problem_response(description))
    responses.setdefault(
        "503", problem_response("a backend is unavailable or too slow; retry", RETRY_AFTER)
    )


def add_described(op: dict[str, Any], described: dict[str, Any]) -> None:
    """Apply what a plugin's ``describe_route`` says: new statuses, and headers on every answer
    (copied: response objects may be shared between operations)."""
    responses = op["responses"]
    for status, response in described.get("responses", {}).items():
        responses.setdefault(status, response)
    headers = described.get("headers")
    if headers:
        op["responses"] = {
            status: {**response, "headers": {**response.get("headers", {}), **headers}}
            for status, response in responses.items()
        }


def openapi_document(restplug: Restplug) -> dict[str, Any]:
    return OpenAPIBuilder(restplug).build()


def openapi_routes(restplug: Restplug) -> list[tuple[str, Handler]]:
    """``(path, GET handler)`` for ``/openapi.json``, ``/docs`` and Swagger UI's assets; the
    app guards them like every other read."""
    document = openapi_document(restplug)
    static = package_files.files("restplug") / "static" / "swagger-ui"
    assets = {entry.name: Path(str(entry)) for entry in static.iterdir() if entry.is_file()}

    async def spec(_: web.Request) -> web.Response:
        return json_response(document)

    async def docs(_: web.Request) -> web.Response:
        return web.Response(text=SWAGGER_PAGE, content_type="text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        path = assets.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return [("/openapi.json", spec), ("/docs", docs), ("/docs/static/{name}", asset)]
