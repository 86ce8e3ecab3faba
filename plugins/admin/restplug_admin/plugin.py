"""The admin plugin: its routes under ``/admin/``, and the sign-in cookie read as a bearer token.

Every page is an ordinary route (``register_routes``), so the permission votes see it like
any other; what it shows and changes it asks of the API with the caller's token.
"""

from __future__ import annotations

from aiohttp import web

from restplug import Authenticated, Context, Handler, Problem, Route, hookimpl
from restplug_admin.pages import COOKIE, Pages

PREFIX = "/admin"
_pages: dict[Context, Pages] = {}


@hookimpl
def register_routes(restplug: Context) -> list[Route]:
    pages = _pages[restplug] = Pages(restplug)
    # Changes need a signed-in caller to reach the API at all; what the caller may change,
    # the API's own votes decide when the page forwards the change.
    signed_in = Authenticated()
    item = f"{PREFIX}/{{resource}}/{{id}}"

    def read(path: str, handler: Handler) -> Route:
        return Route("GET", path, handler, "read", documented=False)

    def write(path: str, handler: Handler) -> Route:
        return Route("POST", path, handler, "write", signed_in, documented=False)

    return [
        read(PREFIX, redirect_home),
        read(f"{PREFIX}/", pages.home),
        read(f"{PREFIX}/sign-in", pages.sign_in_page),
        # Signing in changes nothing but a cookie: open like the sign-in page itself.
        Route("POST", f"{PREFIX}/sign-in", pages.sign_in, "read", documented=False),
        write(f"{PREFIX}/sign-out", pages.sign_out),
        read(f"{PREFIX}/status", pages.status),
        read(f"{PREFIX}/static/{{name}}", pages.static),
        read(f"{PREFIX}/{{resource}}", pages.list_page),
        read(f"{PREFIX}/{{resource}}/-/new", pages.create_page),
        write(f"{PREFIX}/{{resource}}/-/new", pages.create),
        read(item, pages.detail),
        read(f"{item}/edit", pages.edit_page),
        write(f"{item}/edit", pages.edit),
        read(f"{item}/delete", pages.delete_page),
        write(f"{item}/delete", pages.delete),
        write(f"{item}/prices", pages.new_price),
    ]


async def redirect_home(_: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"{PREFIX}/")


# The outermost of the plugins' middlewares: the others (the rate limit) and the permission
# votes then see the cookie's token as the request's own, and its identity.
@hookimpl(tryfirst=True)
def register_middlewares(restplug: Context) -> list:
    pages = _pages[restplug]

    @web.middleware
    async def sign_in_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
        """On the admin's pages, the cookie stands for an ``Authorization: Bearer`` header
        (a header sent by a script wins); a token the API refuses sends a page back to the
        sign-in form."""
        if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
            return await handler(request)
        token = request.cookies.get(COOKIE)
        if token and "Authorization" not in request.headers:
            headers = request.headers.copy()
            headers["Authorization"] = f"Bearer {token}"
            request = request.clone(headers=headers)
        try:
            return await handler(request)
        except Problem as problem:
            if problem.status != 401 or request.method != "GET" or not token:
                raise
            response = pages.page(
                request.clone(headers={}),
                "sign_in.html",
                401,
                title="Sign in",
                error=f"sign in again: {problem.detail}",
            )
            response.del_cookie(COOKIE, path=PREFIX)
            return response

    return [sign_in_cookie]


@hookimpl
async def shutdown(restplug: Context) -> None:
    pages = _pages.pop(restplug, None)
    if pages is not None:
        await pages.api.close()
