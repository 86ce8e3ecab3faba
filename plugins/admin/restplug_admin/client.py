"""The admin's way to the data: the application's own HTTP API, over loopback.

Every page is built from what the API answers to the signed-in user's token, so every action
goes through the same authentication, permission votes, validation, ETags and rate limits as
any other client's.  The API is reached on the local address of the connection the page was
asked on, which is the server's own socket: it works behind a proxy, and each of the workers
of ``serve --workers N`` asks itself.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from restplug import Problem


@dataclass(frozen=True)
class Answer:
    """What the API answered: its status, headers and decoded JSON body (None when empty)."""

    status: int
    body: Any
    #: Case-insensitive, as HTTP header names are.
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The problem's detail (or title), for a page to show."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.status)
        return f"the API answered {self.status}"

    @property
    def errors(self) -> dict[str, Any]:
        """The field messages of a 422 problem, as the API nests them."""
        if isinstance(self.body, dict) and isinstance(self.body.get("errors"), dict):
            return self.body["errors"]
        return {}


class Api:
    """Requests to this server's API on behalf of the caller of a page."""

    def __init__(self, timeout: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(
        self,
        request: web.Request,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``method path`` with the page's credentials; ``path`` is already quoted."""
        if self.session is None:
            # Made on first use: a session belongs to the event loop that serves the pages.
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        sent = {"Accept": "application/json"}
        if "Authorization" in request.headers:
            sent["Authorization"] = request.headers["Authorization"]
        sent.update(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method, own_address(request) + path, params=params, json=body, headers=sent
            ) as response:
                text = await response.text()
                return Answer(response.status, _decoded(text), CIMultiDict(response.headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Problem(502, f"the API did not answer the admin panel: {exc}") from None


def _decoded(text: str) -> Any:
    """The JSON of a body; None when empty, the text itself when it is not JSON."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def own_address(request: web.Request) -> str:
    """``http://host:port`` of the socket the page's request arrived on."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport else None
    if not isinstance(sockname, tuple):
        raise Problem(503, "the admin panel needs a TCP socket to reach the API")
    host, port = sockname[0], sockname[1]
    if ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def segment(value: Any) -> str:
    """A path segment from an id or a name (``/`` included, quoted)."""
    return quote(str(value), safe="")
