"""The admin's pages: server-rendered HTML over what the application's HTTP API answers.

Reads and writes are requests to the API with the signed-in user's token (:mod:`.client`), so
the API's permission votes, validation and ETags decide; a page only shows what it answered:
field messages next to their inputs, a 412 as "changed since you opened it", a 403 as such.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Mapping
from hashlib import sha256
from importlib import resources as package_files
from typing import Any, NoReturn
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from restplug import Context, Problem, Resource
from restplug_admin import catalogue, forms
from restplug_admin.client import Answer, Api, segment

COOKIE = "restplug_admin"
#: The list parameters the page sets itself, outside the filter form.
PAGING = ("page", "size", "cursor", "order_by", "fields", "count")
#: Columns a list shows when the request names no ``fields``, at most.
DEFAULT_COLUMNS = 6
#: Forms that show some of a resource's fields only: the ones its API lets a client send.
FORM_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "tasks": {"create": ("type", "payload"), "edit": ("status", "result", "error")},
}
#: Columns worth seeing first where the defaults would hide them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "tasks": ("id", "type", "status", "error", "forwarding.state", "forwarding.last_error"),
}
NOTICES = {
    "saved": "Saved.",
    "price": "The new price is recorded.",
    "created": "Created.",
    "deleted": "Deleted.",
    "signed-in": "Signed in.",
}
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


def csrf_token(request: web.Request) -> str:
    """The token a form of this caller carries: a MAC of the credential the page was asked
    with.  A page elsewhere cannot know it (it would need the credential), and every worker
    computes the same one, with no server state."""
    credential = request.headers.get("Authorization", "").encode()
    return hmac.new(credential, b"restplug-admin form", sha256).hexdigest()


def on_loopback(request: web.Request) -> bool:
    """A browser on this machine talking to it directly (the cookie may go without
    ``Secure`` on plain HTTP there)."""
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    return request.scheme == "http" and is_loopback(host) and is_loopback(request.remote or "")


async def posted(request: web.Request) -> MultiDictProxy:
    """A form's fields, when a browser says it was not sent from a page of another site."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
        raise Problem(403, "this form was sent from another site")
    return await request.post()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def value_at(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def cell(value: Any) -> str:
    """A value as a table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:79] + "…"
    return str(value)


class Pages:
    """The handlers of ``/admin/``, for one configured application."""

    def __init__(self, restplug: Context) -> None:
        self.restplug = restplug
        # The API's own deadline, plus time to answer with its 503.
        self.api = Api(timeout=restplug.query_timeout + 5)
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("restplug_admin"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["segment"] = segment
        self.templates.filters["cell"] = cell
        self.templates.globals["cellof"] = lambda document, path: cell(value_at(document, path))
        self.openapi: dict[str, Any] | None = None

    # -- rendering --------------------------------------------------------------------------

    def page(
        self, request: web.Request, template: str, status: int = 200, **values: Any
    ) -> web.Response:
        signed_in = "Authorization" in request.headers
        notice = NOTICES.get(request.query.get("done", ""), "")
        html = self.templates.get_template(template).render(
            resources=sorted(self.restplug.resources.values(), key=lambda r: r.name),
            signed_in=signed_in,
            csrf=csrf_token(request),
            notice=values.pop("notice", notice),
            error=values.pop("error", ""),
            **values,
        )
        return web.Response(
            text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )

    def failed(self, request: web.Request, answer: Answer, doing: str) -> web.Response:
        """A page saying what the API refused, with its status."""
        sign_in = answer.status == 401
        return self.page(
            request,
            "message.html",
            answer.status,
            title=f"{answer.status}: {doing}",
            error=f"{doing}: {answer.detail}",
            sign_in=sign_in,
        )

    @staticmethod
    def redirect(location: str) -> NoReturn:
        raise web.HTTPSeeOther(location)

    def resource(self, request: web.Request) -> Resource:
        name = request.match_info["resource"]
        found = self.restplug.resources.get(name)
        if found is None:
            raise Problem(404, f"no resource is named {name!r}")
        return found

    async def checked_form(self, request: web.Request) -> Mapping[str, str]:
        """The posted form, once it proves it comes from a page of this admin."""
        form = await posted(request)
        sent = str(form.get("csrf", ""))
        if not hmac.compare_digest(sent, csrf_token(request)):
            raise Problem(
                403,
                "the form's CSRF token is missing or does not match your sign-in; "
                "reload the page and send it again",
            )
        # The last value of a name wins: a ticked checkbox's after its hidden "false".
        return {name: value for name, value in form.items() if isinstance(value, str)}

    # -- sign-in, status, assets -------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        return self.page(request, "home.html", title="restplug admin")

    async def sign_in_page(self, request: web.Request) -> web.Response:
        return self.page(request, "sign_in.html", title="Sign in")

    async def sign_in(self, request: web.Request) -> web.Response:
        form = await posted(request)
        token = str(form.get("token", "")).strip()
        if not token:
            return self.page(
                request, "sign_in.html", 422, title="Sign in", error="paste a bearer token"
            )
        # The API says whether the token is good: a bad one is a 401 on any read.
        answer = await self.api.call(
            request, "GET", "/-/plugins", headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status == 401:
            return self.page(
                request,
                "sign_in.html",
                401,
                title="Sign in",
                error=f"the API refused this token: {answer.detail}",
            )
        response = web.HTTPSeeOther("/admin/?done=signed-in")
        response.set_cookie(
            COOKIE,
            token,
            path="/admin",
            httponly=True,
            samesite="Strict",
            secure=not on_loopback(request),
        )
        raise response

    async def sign_out(self, request: web.Request) -> web.Response:
        await self.checked_form(request)
        response = web.HTTPSeeOther("/admin/sign-in")
        response.del_cookie(COOKIE, path="/admin")
        raise response

    async def status(self, request: web.Request) -> web.Response:
        plugins, ready = await asyncio.gather(
            self.api.call(request, "GET", "/-/plugins"),
            self.api.call(request, "GET", "/health/ready"),
        )
        return self.page(
            request,
            "status.html",
            title="Status",
            plugins=plugins,
            ready=ready,
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        suffix = name[name.rfind(".") :] if "." in name else ""
        asset = package_files.files("restplug_admin") / "static" / name
        if "/" in name or suffix not in STATIC_TYPES or not asset.is_file():
            raise Problem(404, f"no asset {name!r}")
        return web.Response(
            body=asset.read_bytes(),
            content_type=STATIC_TYPES[suffix],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # -- lists -------------------------------------------------------------------------------

    async def list_parameters(self, request: web.Request, resource: Resource) -> list[dict]:
        """The list route's query parameters as the application's OpenAPI document declares
        them: field filters and every plugin's method filters alike."""
        if self.openapi is None:
            answer = await self.api.call(request, "GET", "/openapi.json")
            if not answer.ok:
                return []
            self.openapi = answer.body
        operation = self.openapi.get("paths", {}).get(resource.path, {}).get("get", {})
        return [p for p in operation.get("parameters", []) if p.get("in") == "query"]

    def default_columns(self, resource: Resource) -> list[str]:
        if resource.name in COLUMNS:
            return list(COLUMNS[resource.name])
        schema = resource.schema()
        wanted = {*resource.filters, *resource.sorts}
        scalar = [
            name
            for name, declared in schema.fields.items()
            if name in wanted and forms.kind_of(declared) not in {"group", "json", "lines"}
        ]
        columns = [resource.id_field, *(n for n in scalar if n != resource.id_field)]
        return columns[:DEFAULT_COLUMNS]

    async def list_page(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        query = [(name, value) for name, value in request.query.items() if value.strip()]
        chosen = [
            path
            for value in request.query.getall("fields", [])
            for path in value.split(",")
            if path.strip()
        ]
        columns = list(dict.fromkeys([resource.id_field, *chosen])) if chosen else None
        columns = columns or self.default_columns(resource)
        sent = [(n, v) for n, v in query if n != "fields"] + [("fields", ",".join(columns))]
        answer, parameters = await asyncio.gather(
            self.api.call(request, "GET", resource.path, params=sent),
            self.list_parameters(request, resource),
        )
        if answer.status in {401, 403}:
            return self.failed(request, answer, f"listing {resource.name}")
        can_create = await self.restplug.allows(request, "POST", resource.path)
        return self.page(
            request,
            "list.html",
            200 if answer.ok else answer.status,
            title=resource.title or resource.name,
            resource=resource,
            answer=answer,
            error="" if answer.ok else answer.detail,
            columns=columns,
            orders=self.orders(parameters),
            filters=self.filters(resource, parameters, request.query),
            all_fields=[
                declared.data_key or name for name, declared in resource.schema().fields.items()
            ],
            query=dict(query),
            link=lambda **changes: self.link(request, changes),
            can_create=can_create,
            order=request.query.get("order_by", ""),
        )

    @staticmethod
    def orders(parameters: list[dict]) -> list[str]:
        """What ``order_by`` takes: declared fields and sort methods, each both ways."""
        for parameter in parameters:
            if parameter["name"] == "order_by":
                return [str(key) for key in parameter.get("schema", {}).get("enum", [])]
        return []

    @staticmethod
    def filters(
        resource: Resource, parameters: list[dict], query: Mapping[str, str]
    ) -> dict[str, list[dict]]:
        """The filter inputs: ``main`` (equality on fields, and method filters), ``more``
        (the operators of field filters)."""
        shown: dict[str, list[dict]] = {"main": [], "more": []}
        for parameter in parameters:
            name = parameter["name"]
            if name in PAGING:
                continue
            schema = parameter.get("schema", {})
            choices = [str(c) for c in schema.get("enum", [])]
            if schema.get("type") == "boolean":
                choices = ["true", "false"]
            hint = "comma list" if schema.get("type") == "array" else schema.get("format", "")
            item = {
                "name": name,
                "value": query.get(name, ""),
                "choices": choices,
                "hint": hint,
                "description": parameter.get("description", ""),
            }
            operator = "__" in name and name.split("__", 1)[0] in resource.filters
            shown["more" if operator else "main"].append(item)
        return shown

    @staticmethod
    def link(request: web.Request, changes: dict[str, Any]) -> str:
        """This page's URL with some parameters changed (None removes one)."""
        params: dict[str, list[str]] = {}
        for name, value in request.query.items():
            if value.strip():
                params.setdefault(name, []).append(value)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = [str(value)]
        return f"{request.path}?{urlencode(params, doseq=True)}" if params else request.path

    # -- one document ------------------------------------------------------------------------

    def item_path(self, resource: Resource, id: str) -> str:
        return f"{resource.path}/{segment(id)}"

    async def detail(self, request: web.Request, **shown: Any) -> web.Response:
        resource = self.resource(request)
        id = request.match_info["id"]
        path = self.item_path(resource, id)
        answer = await self.api.call(request, "GET", path)
        if not answer.ok:
            return self.failed(request, answer, f"reading {resource.name} {id}")
        document = answer.body
        links = catalogue.history_links(document) or {}
        histories = await asyncio.gather(
            *(
                self.api.call(request, "GET", link, params={"size": "100"})
                for link in links.values()
            )
        )
        prices = []
        for (country, _), history in zip(links.items(), histories, strict=True):
            story = history.body.get("items", []) if history.ok else []
            current = value_at(document, f"{catalogue.PRICES}.{country}") or {}
            prices.append(
                {
                    "country": country,
                    "current": current,
                    "latest": (current.get("price_story") or [{}])[0],
                    "story": story,
                    "total": history.body.get("total") if history.ok else None,
                    "chart": catalogue.chart(story),
                    "error": "" if history.ok else history.detail,
                }
            )
        can_edit, can_delete = await asyncio.gather(
            self.restplug.allows(request, "PATCH", path),
            self.restplug.allows(request, "DELETE", path),
        )
        return self.page(
            request,
            "detail.html",
            shown.pop("status", 200),
            title=f"{resource.name} {id}",
            resource=resource,
            id=id,
            document=document,
            etag=answer.headers.get("ETag", ""),
            prices=prices if catalogue.history_links(document) is not None else None,
            price_form=shown.pop("price_form", {}),
            can_edit=can_edit,
            can_delete=can_delete,
            **shown,
        )

    def form_fields(self, resource: Resource, purpose: str, document: Any) -> dict[str, Any]:
        """The fields a create or edit form of ``resource`` shows."""
        only = FORM_FIELDS.get(resource.name, {}).get(purpose)
        shown = forms.editable(resource.schema(), only)
        if purpose == "edit":
            # The id is the URL's; prices have their own form, which keeps their history.
            shown.pop(resource.id_field, None)
            if catalogue.history_links(document) is not None:
                shown.pop(catalogue.PRICES, None)
        return shown

    async def edit_page(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        id = request.match_info["id"]
        answer = await self.api.call(request, "GET", self.item_path(resource, id))
        if not answer.ok:
            return self.failed(request, answer, f"reading {resource.name} {id}")
        shown = self.form_fields(resource, "edit", answer.body)
        inputs = forms.build(shown, answer.body)
        return self.form_page(request, resource, inputs, id=id, etag=answer.headers.get("ETag", ""))

    def form_page(
        self,
        request: web.Request,
        resource: Resource,
        inputs: list[forms.FormField],
        *,
        id: str | None = None,
        etag: str = "",
        status: int = 200,
        stale: bool = False,
        errors: Mapping[str, list[str]] | None = None,
        **values: Any,
    ) -> web.Response:
        """The edit form of document ``id`` (sent back with its ``etag``), or, without an
        ``id``, the form of a new one."""
        base = f"/admin/{segment(resource.name)}"
        return self.page(
            request,
            "edit.html",
            status,
            stale=stale,
            unplaced=forms.unplaced(inputs, errors or {}),
            title=f"New {resource.name}" if id is None else f"Edit {resource.name} {id}",
            resource=resource,
            id=id,
            inputs=inputs,
            etag=etag,
            action=f"{base}/-/new" if id is None else f"{base}/{segment(id)}/edit",
            **values,
        )

    async def edit(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        id = request.match_info["id"]
        form = await self.checked_form(request)
        path = self.item_path(resource, id)
        current = await self.api.call(request, "GET", path)
        if not current.ok:
            return self.failed(request, current, f"reading {resource.name} {id}")
        shown = self.form_fields(resource, "edit", current.body)
        document, problems = forms.read(shown, form)
        etag = form.get("etag", "")
        if problems:
            inputs = refilled(shown, document, problems, form)
            return self.form_page(
                request, resource, inputs, id=id, etag=etag, status=422, errors=problems
            )
        answer = await self.api.call(
            request,
            "PATCH",
            path,
            body=forms.changes(current.body, document),
            headers={"If-Match": etag},
        )
        if answer.ok:
            self.redirect(f"/admin/{segment(resource.name)}/{segment(id)}?done=saved")
        if answer.status not in {412, 422}:
            return self.failed(request, answer, f"saving {resource.name} {id}")
        errors = forms.flat_errors(answer.errors)
        return self.form_page(
            request,
            resource,
            refilled(shown, document, errors, form),
            id=id,
            etag=etag,
            status=answer.status,
            error=stale_message(resource, id) if answer.status == 412 else answer.detail,
            stale=answer.status == 412,
            errors=errors,
        )

    async def create_page(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        shown = self.form_fields(resource, "create", None)
        return self.form_page(request, resource, forms.build(shown, None))

    async def create(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        form = await self.checked_form(request)
        shown = self.form_fields(resource, "create", None)
        document, problems = forms.read(shown, form)
        if problems:
            inputs = refilled(shown, document, problems, form)
            return self.form_page(request, resource, inputs, status=422, errors=problems)
        sent = {key: value for key, value in document.items() if value is not None}
        answer = await self.api.call(request, "POST", resource.path, body=sent)
        if answer.ok and isinstance(answer.body, dict):
            id = answer.body.get(resource.id_field)
            self.redirect(f"/admin/{segment(resource.name)}/{segment(id)}?done=created")
        if answer.status not in {409, 422}:
            return self.failed(request, answer, f"creating {resource.name}")
        errors = forms.flat_errors(answer.errors)
        inputs = refilled(shown, document, errors, form)
        return self.form_page(
            request, resource, inputs, status=answer.status, errors=errors, error=answer.detail
        )

    async def delete_page(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        id = request.match_info["id"]
        answer = await self.api.call(request, "GET", self.item_path(resource, id))
        if not answer.ok:
            return self.failed(request, answer, f"reading {resource.name} {id}")
        return self.page(
            request,
            "delete.html",
            title=f"Delete {resource.name} {id}",
            resource=resource,
            id=id,
            etag=answer.headers.get("ETag", ""),
        )

    async def delete(self, request: web.Request) -> web.Response:
        resource = self.resource(request)
        id = request.match_info["id"]
        form = await self.checked_form(request)
        answer = await self.api.call(
            request,
            "DELETE",
            self.item_path(resource, id),
            headers={"If-Match": form.get("etag", "")},
        )
        if answer.ok:
            self.redirect(f"/admin/{segment(resource.name)}?done=deleted")
        if answer.status == 412:
            return self.page(
                request,
                "message.html",
                412,
                title=f"Not deleted: {resource.name} {id}",
                error=stale_message(resource, id) + " It was not deleted.",
                sign_in=False,
                back=f"/admin/{segment(resource.name)}/{segment(id)}",
            )
        return self.failed(request, answer, f"deleting {resource.name} {id}")

    async def new_price(self, request: web.Request) -> web.Response:
        """Record a new price in one country (a country new to the app included): its
        currency, availability and a new newest entry of its history, the whole history sent
        back with the page's ETag, since a merge patch replaces lists."""
        resource = self.resource(request)
        id = request.match_info["id"]
        form = await self.checked_form(request)
        country = form.get("country", "").strip()
        path = self.item_path(resource, id)
        story = await self.whole_history(request, f"{path}/prices/{segment(country)}")
        if isinstance(story, Answer):
            if story.status != 404 or not form.get("new"):
                return self.failed(request, story, f"reading the prices of {resource.name} {id}")
            story = []  # prices in a country the app had none in
        patch = {catalogue.PRICES: {country: catalogue.country_prices(form, story)}}
        answer = await self.api.call(
            request, "PATCH", path, body=patch, headers={"If-Match": form.get("etag", "")}
        )
        if answer.ok:
            self.redirect(f"/admin/{segment(resource.name)}/{segment(id)}?done=price")
        if answer.status not in {412, 422}:
            return self.failed(request, answer, f"saving the price of {resource.name} {id}")
        errors = catalogue.price_errors(forms.flat_errors(answer.errors), country)
        return await self.detail(
            request,
            status=answer.status,
            error=stale_message(resource, id) if answer.status == 412 else answer.detail,
            price_form={
                "country": country,
                "new": bool(form.get("new")),
                "values": form,
                "errors": errors,
            },
        )

    async def whole_history(self, request: web.Request, path: str) -> list[dict] | Answer:
        """Every entry of a price history, newest first, page after page; the failed answer
        when the API refuses one."""
        entries: list[dict] = []
        page = 1
        while True:
            answer = await self.api.call(
                request, "GET", path, params={"page": str(page), "size": "100"}
            )
            if not answer.ok:
                return answer
            entries += answer.body["items"]
            if page >= (answer.body.get("pages") or 0):
                return entries
            page += 1


def refilled(
    shown: Mapping[str, Any],
    document: dict[str, Any],
    errors: Mapping[str, list[str]],
    form: Mapping[str, str],
) -> list[forms.FormField]:
    """A sent form again, with the messages next to its inputs and what the user typed in
    them, not its parsed form: "abc" stays "abc" next to its message."""
    inputs = forms.build(shown, document, errors)
    typed_back(inputs, form)
    return inputs


def typed_back(inputs: list[forms.FormField], form: Mapping[str, str]) -> None:
    for item in inputs:
        if item.kind == "group":
            typed_back(item.children, form)
        elif item.kind != "checkbox" and item.name in form:
            item.value = form[item.name]


def stale_message(resource: Resource, id: str) -> str:
    return (
        f"{resource.name} {id} changed since you opened it: nothing was overwritten. "
        "Open it again to see the current version, then make your change."
    )
