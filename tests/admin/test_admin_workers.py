"""The admin on ``serve --workers 2``: whichever worker answers a page reaches the API through
the socket it was asked on, and accepts a form whichever worker made it (the CSRF token needs
no state of a worker's own)."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from html import unescape

from servers import Server, call, token

WRITER = token("backend/*")


def fetch(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Cookie": f"restplug_admin={WRITER}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html
    return unescape(found.group(1))


def test_forms_work_across_the_workers(tmp_path):
    server = Server(tmp_path, "--workers", "2", RESTPLUG_CACHE_URL="none://").start()
    try:
        status, _, _ = call(
            f"{server.url}/api/v1/apps", "POST", {"id": 1, "name": "Start", "type": "game"}, WRITER
        )
        assert status == 201
        # New connections each time: the two workers share the accepting socket.
        for round in range(6):
            status, html = fetch(f"{server.url}/admin/apps/1/edit")
            assert status == 200 and 'id="document-form"' in html
            form = {
                "csrf": hidden(html, "csrf"),
                "etag": hidden(html, "etag"),
                "name": f"Round {round}",
                "type": "game",
            }
            status, html = fetch(f"{server.url}/admin/apps/1/edit", form)
            assert status == 200 and "Saved." in html, html
            assert call(f"{server.url}/api/v1/apps/1")[2]["name"] == f"Round {round}"
    finally:
        server.stop()
