"""kill -9 at every point of a write's life (``RESTPLUG_CRASH_AT``), then a restart: no write the
server acknowledged is lost, and the store, the search index and the reads agree (a
``demo-data`` load killed part-way included); a task the
orchestrator accepted before the crash reaches it again (deduped by id); a ``restplug reindex``
in another process reaches the servers' cached searches."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import Server, call, cli

APPS = "/api/v1/apps"
FAST = {"RESTPLUG_OUTBOX_RETRY_MS": "200"}
#: What the scenarios did, summed over the module (printed at the end with -s).
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\ncrash tests: {dict(TALLY)}")


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> str:
    return cli(tmp_path_factory.mktemp("token"), "token", "--scopes", "backend/*").stdout.strip()


def app(id: int, round: int = 0) -> dict[str, Any]:
    """An app findable by a word of its own (``w<id>r<round>``) and one all share."""
    return {"id": id, "name": f"Crashed w{id}r{round} survivor", "type": "game"}


def send(server: Server, method: str, path: str, body: Any, token: str) -> int | None:
    """The status of a write, or None when the server died before answering."""
    TALLY["requests"] += 1
    try:
        return call(f"{server.url}{path}", method, body, token, timeout=30)[0]
    except OSError:
        return None


def stored(tmp_path: Path) -> dict[int, dict[str, Any]]:
    """The apps as the store file holds them, read apart from any server."""
    with sqlite3.connect(tmp_path / "store.db") as db:
        return {id: json.loads(doc) for id, doc in db.execute("SELECT _id, doc FROM apps")}


def searched(server: Server, word: str) -> set[int]:
    status, _, page = call(f"{server.url}{APPS}?search={word}&size=100")
    assert status == 200, page
    return {item["id"] for item in page["items"]}


def assert_agree(server: Server, tmp_path: Path, ids: set[int], expected: dict[int, str]) -> None:
    """Store, search index and detail reads agree on ``ids``; ``expected`` (acknowledged
    writes: the name, or "" for a delete) holds in the store."""
    documents = stored(tmp_path)
    for id, name in expected.items():
        if (documents.get(id, {}).get("name") or "") != name:
            TALLY["acknowledged writes lost"] += 1
    assert TALLY["acknowledged writes lost"] == 0, (expected, documents)
    for id in ids:
        status, _, body = call(f"{server.url}{APPS}/{id}")
        document = documents.get(id)
        assert (status, body["name"] if status == 200 else None) == (
            (200, document["name"]) if document else (404, None)
        )
        if document is not None:
            own = document["name"].split()[1]
            assert id in searched(server, own), f"{id} is stored but not searchable"
        else:
            assert id not in searched(server, "crashed"), f"{id} is deleted but still found"


def crash_then_restart(server: Server, point: str, action: Any) -> Any:
    """Start with the crash point armed, run ``action`` (it dies part-way), restart clean."""
    server.start(RESTPLUG_CRASH_AT=point)
    result = action()
    assert server.wait_exit() == -signal.SIGKILL, server.output()
    TALLY["faults injected"] += 1
    server.start()
    return result


SINGLE = [("after-commit", "POST"), ("after-commit", "PUT"), ("after-commit", "DELETE")]
SINGLE += [("after-index", "PUT"), ("mid-effects", "DELETE")]


@pytest.mark.parametrize(("point", "method"), SINGLE)
def test_a_single_write_survives_a_crash_at_any_point(
    server_factory, tmp_path: Path, token: str, rounds: int, point: str, method: str
) -> None:
    server = server_factory(**FAST)
    for round in range(rounds):
        id = 100 + round
        expected: dict[int, str] = {}
        if method != "POST":  # something to change: written and settled before the crash
            server.start()
            assert send(server, "POST", APPS, app(id), token) == 201
            server.kill()
        body = app(id, round + 1)
        path = APPS if method == "POST" else f"{APPS}/{id}"
        status = crash_then_restart(
            server,
            point,
            partial(send, server, method, path, None if method == "DELETE" else body, token),
        )
        if status is not None:  # answered before dying: acknowledged
            assert 200 <= status < 300
            expected[id] = "" if method == "DELETE" else body["name"]
        assert_agree(server, tmp_path, {id}, expected)
        server.kill()


@pytest.mark.parametrize("point", ["after-commit", "mid-effects:150", "after-index"])
def test_a_package_survives_a_crash_and_resending_it_changes_nothing(
    server_factory, tmp_path: Path, token: str, rounds: int, point: str
) -> None:
    server = server_factory(**FAST)
    for round in range(rounds):
        apps = [app(id, round) for id in range(1000 * (round + 1), 1000 * (round + 1) + 300)]
        status = crash_then_restart(
            server, point, partial(send, server, "POST", "/api/v1/package", {"apps": apps}, token)
        )
        assert status is None  # every point is reached before the answer
        status, _, page = call(f"{server.url}{APPS}?search=w{apps[0]['id']}r{round}")
        assert status == 200 and [item["id"] for item in page["items"]] == [apps[0]["id"]]
        status, _, page = call(f"{server.url}{APPS}?search=survivor&size=1")
        assert page["total"] == 300 * (round + 1), "an app of the package is not searchable"
        assert_agree(server, tmp_path, {apps[0]["id"], apps[-1]["id"]}, {})
        # Resending the package: every app is there already, and stays searchable.
        TALLY["requests"] += 1
        status, _, result = call(f"{server.url}/api/v1/package", "POST", {"apps": apps}, token)
        assert (status, result["unchanged"]) == (200, 300)
        assert call(f"{server.url}{APPS}?search=survivor&size=1")[2]["total"] == 300 * (round + 1)
        server.kill()


class Orchestrator(ThreadingHTTPServer):
    """A real HTTP orchestrator in a thread, recording the Idempotency-Key of each POST."""

    def __init__(self) -> None:
        self.received: list[str] = []
        orchestrator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                orchestrator.received.append(self.headers["Idempotency-Key"])
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/tasks"


def test_a_task_the_orchestrator_accepted_before_a_crash_reaches_it(
    server_factory, token: str, rounds: int
) -> None:
    orchestrator = Orchestrator()
    server = server_factory(
        RESTPLUG_ORCHESTRATOR_URL=orchestrator.url, RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS="50"
    )
    acknowledged = []
    task = {"type": "scrape_app", "payload": {"app_id": 1}}
    try:
        for _ in range(rounds):

            def register() -> str | None:
                TALLY["requests"] += 1
                try:
                    status, _, body = call(f"{server.url}/api/v1/tasks", "POST", task, token)
                except OSError:  # died before answering: not acknowledged
                    return None
                assert status == 201
                return body["id"]

            id = crash_then_restart(server, "task-forwarded", register)
            if id is None:
                server.kill()
                continue
            acknowledged.append(id)
            deadline = time.monotonic() + 20
            while True:
                body = call(f"{server.url}/api/v1/tasks/{acknowledged[-1]}", token=token)[2]
                if body["forwarding"]["state"] == "done":
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.1)
            server.kill()
        # At least once: each acknowledged task arrived twice, before the crash and after.
        assert acknowledged
        assert all(orchestrator.received.count(id) >= 2 for id in acknowledged)
    finally:
        orchestrator.shutdown()
        orchestrator.server_close()


def cached_search(server: Server, word: str) -> tuple[str, list[int]]:
    status, headers, page = call(f"{server.url}{APPS}?search={word}")
    assert status == 200, page
    return headers["X-Cache"], [item["id"] for item in page["items"]]


@pytest.mark.parametrize("cache", ["memory", "redis"])
def test_a_reindex_in_another_process_refreshes_cached_searches(
    request: pytest.FixtureRequest, server_factory, tmp_path: Path, token: str, cache: str
) -> None:
    env = {"RESTPLUG_CACHE_URL": "memory://", **FAST}
    if cache == "redis":
        proc = request.getfixturevalue("redis_server")
        # Servers do not look for rebuild records within the test: the shared cache does it.
        env = {"RESTPLUG_CACHE_URL": f"redis://{proc.host}:{proc.port}/0"}
        env["RESTPLUG_OUTBOX_RETRY_MS"] = "600000"
    server = server_factory(**env)
    server.start()
    assert send(server, "POST", APPS, app(7), token) == 201
    server.kill()
    (tmp_path / "search.db").unlink()  # the index is lost; the store keeps the app
    server.start()
    assert cached_search(server, "w7r0") == ("MISS", [])
    assert cached_search(server, "w7r0") == ("HIT", [])
    reindexed = cli(tmp_path, "reindex", "apps", **env)
    assert reindexed.returncode == 0, reindexed.stderr
    deadline = time.monotonic() + 10
    while (answer := cached_search(server, "w7r0"))[1] != [7]:
        assert cache == "memory" and time.monotonic() < deadline, answer
        time.sleep(0.05)
    assert answer == ("MISS", [7])


@pytest.mark.parametrize(
    "point", ["after-commit:2", "after-commit:3", "mid-effects:700", "after-index:2"]
)
def test_a_load_killed_part_way_leaves_every_stored_app_searchable(
    server_factory, tmp_path: Path, point: str
) -> None:
    # upsert_all writes a batch while the one before settles its side effects: a kill -9
    # between the two must leave neither batch's apps out of the search index.
    killed = cli(tmp_path, "demo-data", "--count", "3000", RESTPLUG_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    TALLY["faults injected"] += 1
    ids = set(stored(tmp_path))
    assert 0 < len(ids) < 3000, "the load was to die part-way"
    server = server_factory(**FAST)
    server.start()
    deadline = time.monotonic() + 30
    while indexed(tmp_path) != ids and time.monotonic() < deadline:
        time.sleep(0.2)
    assert indexed(tmp_path) == ids, "the index and the store disagree after the restart"
    status, _, page = call(f"{server.url}{APPS}?size=1")
    assert (status, page["total"]) == (200, len(ids))
    server.kill()


def indexed(tmp_path: Path) -> set[int]:
    """The app ids the search index file holds, read apart from any server."""
    with sqlite3.connect(tmp_path / "search.db") as db:
        return {id for (id,) in db.execute('SELECT _id FROM "apps.ids"')}
