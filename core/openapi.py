"""The OpenAPI 3.1 document, built from the resources' schemas and parameters, and Swagger UI."""

from __future__ import annotations

from importlib import resources as package_files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from restplug import __version__
from restplug.http import json_response
from restplug.query import DEFAULT_SIZE, MAX_SIZE

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
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "description": "messages per field or parameter"},
    },
    "required": ["type", "title", "status"],
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


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response object for a problem+json error."""
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


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

    def param(self, name: str, field: fields.Field, description: str = "") -> dict[str, Any]:
        schema = self.plugin.converter.field2property(field)
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description or schema.pop("description", ""),
        }

    def list_parameters(self, parser: ListParser) -> list[dict[str, Any]]:
        resource = parser.resource
        params = [
            self.param("page", fields.Integer(validate=lambda v: v >= 1), "page number, from 1"),
            self.param(
                "size", fields.Integer(), f"items per page, 1..{MAX_SIZE} (default {DEFAULT_SIZE})"
            ),
            self.param("cursor", fields.String(), "opaque cursor from next_cursor (not with page)"),
            self.param(
                "order_by",
                fields.String(),
                "comma list of "
                + ", ".join(parser.sort_names)
                + f"; - for descending; default {','.join(resource.default_order)}",
            ),
            self.param("fields", fields.String(), "comma list of document paths to return"),
            self.param("count", fields.String(), "exact (default) or none to skip the total"),
        ]
        for name, (path, op) in parser.field_params.items():
            field = resource.field_at(path)
            if isinstance(field, fields.List):
                field = field.inner
            if op == "isnull":
                field = fields.Boolean()
            description = f"{path} {op or 'equals'}"
            if op in ("in", "not_in"):
                description += " (comma-separated)"
                field = fields.String()
            params.append(self.param(name, field, description))
        for method in parser.methods.values():
            params.append(self.param(method.name, method.field, method.description))
        return params

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
        declared = dict(route.operation)
        op["responses"] = {**declared.pop("responses", {}), **op["responses"]}
        op.update(declared)
        return op

    def resource_operations(self, resource: Resource) -> dict[tuple[str, str], dict[str, Any]]:
        name = resource.schema.__name__.removesuffix("Schema") or resource.name
        self.spec.components.schema(name, schema=resource.schema)
        ref = {"$ref": f"#/components/schemas/{name}"}
        body = {"required": True, "content": {"application/json": {"schema": ref}}}
        item = {"description": "the document", "content": {"application/json": {"schema": ref}}}
        id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
        conditional = [
            {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
        ]
        page = {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref},
                "total": {"type": ["integer", "null"]},
                "page": {"type": ["integer", "null"]},
                "size": {"type": "integer"},
                "pages": {"type": ["integer", "null"]},
                "next_cursor": {"type": ["string", "null"]},
            },
        }
        parser = self.restplug.parsers[resource.name]
        invalid = problem_response("invalid document (per-field messages in errors)")
        conditional_errors = {
            "404": problem_response("no such id"),
            "412": problem_response("stale If-Match"),
        }
        return {
            ("get", resource.path): {
                "summary": f"List {resource.name}",
                "parameters": self.list_parameters(parser),
                "responses": {
                    "200": {
                        "description": "a page",
                        "content": {"application/json": {"schema": page}},
                    },
                    "400": problem_response("unknown parameter or bad value"),
                    "503": problem_response("the store did not answer in time"),
                },
            },
            ("post", resource.path): {
                "summary": f"Create one of {resource.name}",
                "requestBody": body,
                "responses": {
                    "201": item,
                    "409": problem_response("the id exists"),
                    "422": invalid,
                },
            },
            ("get", f"{resource.path}/{{id}}"): {
                "summary": f"Read one of {resource.name}",
                "parameters": [id_param],
                "responses": {
                    "200": item,
                    "304": {"description": "not modified"},
                    "404": problem_response("no such id"),
                },
            },
            ("put", f"{resource.path}/{{id}}"): {
                "summary": f"Replace one of {resource.name}",
                "parameters": [id_param, *conditional],
                "requestBody": body,
                "responses": {"200": item, **conditional_errors, "422": invalid},
            },
            ("patch", f"{resource.path}/{{id}}"): {
                "summary": f"Change one of {resource.name} with a JSON merge patch (RFC 7396)",
                "parameters": [id_param, *conditional],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {"schema": {"type": "object"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {"200": item, **conditional_errors, "422": invalid},
            },
            ("delete", f"{resource.path}/{{id}}"): {
                "summary": f"Delete one of {resource.name}",
                "parameters": [id_param, *conditional],
                "responses": {"204": {"description": "deleted"}, **conditional_errors},
            },
        }

    def build(self) -> dict[str, Any]:
        generated: dict[tuple[str, str], dict[str, Any]] = {}
        for resource in self.restplug.resources.values():
            generated.update(self.resource_operations(resource))
        paths: dict[str, dict[str, Any]] = {}
        for route in self.restplug.routes:
            resource = self.restplug.resources.get(route.resource or "")
            key = (route.method.lower(), route.path)
            op = {**generated.get(key, {})}
            extra = self.operation(route, resource)
            op["responses"] = {**op.get("responses", {}), **extra.pop("responses")}
            op.update(extra)
            paths.setdefault(route.path, {})[key[0]] = op
        for path, operations in paths.items():
            self.spec.path(path=path, operations=operations)
        return self.spec.to_dict()


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
