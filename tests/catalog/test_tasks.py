"""Tasks for the scraping orchestrator: the API, every status transition, and forwarding to a
real HTTP server through its outages and a restart of ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from openapi_spec_validator import validate

from restplug import hookimpl
from restplug.app import RESTPLUG, Restplug
from restplug.errors import ConfigError
from restplug.testing import AllowWrites, isolated_environ
from restplug_auth_oauth.dev_tokens import mint_token
from restplug_catalog.tasks import load_demo_tasks
from restplug_catalog.tasks.documents import TRANSITIONS

TASKS = "/api/v1/tasks"
TASK = {"type": "scrape_app", "payload": {"app_id": 10, "countries": ["US"]}}
ClientFactory = Callable[..., Awaitable[TestClient]]


def forwarding_env(url: str, timeout_ms: int = 1000) -> dict[str, str]:
    """Forwarding to ``url`` with retries every few milliseconds, so outages take no time."""
    return {
        "RESTPLUG_ORCHESTRATOR_URL": url,
        "RESTPLUG_ORCHESTRATOR_TIMEOUT_MS": str(timeout_ms),
        "RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS": "5",
        "RESTPLUG_ORCHESTRATOR_RETRY_MAX_MS": "40",
    }


class Orchestrator:
    """A real HTTP server standing in for the orchestrator, on one fixed port so that it can
    go down and come back.  It records every request that reaches it (``received``, with the
    Idempotency-Key header), answers ``answers`` in turn and then 201, and holds each request
    while ``hold`` is set."""

    def __init__(self) -> None:
        self.port = unused_port()
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.answers: list[int] = []
        self.hold: asyncio.Event | None = None
        self.server: TestServer | None = None
        self.app = web.Application()
        self.app.router.add_post("/tasks", self._receive)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tasks"

    def ids(self) -> list[str]:
        return [task["id"] for task, _ in self.received]

    async def start(self) -> None:
        self.server = TestServer(self.app, port=self.port)
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("Idempotency-Key")))
        if self.hold is not None:
            await self.hold.wait()
        status = self.answers.pop(0) if self.answers else 201
        return web.json_response({"accepted": status < 300}, status=status)


@pytest.fixture
async def orchestrator():
    server = Orchestrator()
    yield server
    if server.hold is not None:
        server.hold.set()
    await server.stop()


@pytest.fixture
async def client(restplug_client: ClientFactory) -> TestClient:
    return await restplug_client(plugins=[AllowWrites()])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)
    return value


def forwarding_reaches(client: TestClient, id: str, predicate: Callable[[dict], bool]):
    """A check for :func:`eventually`: the task once its ``forwarding`` meets ``predicate``."""

    async def check() -> dict | None:
        task = await (await client.get(f"{TASKS}/{id}")).json()
        return task if predicate(task["forwarding"]) else None

    return check


async def create(client: TestClient, body: dict | None = None) -> dict:
    response = await client.post(TASKS, json=body or TASK)
    assert response.status == 201, await response.text()
    return await response.json()


async def move(client: TestClient, id: str, *statuses: str) -> dict:
    task: dict = {}
    for status in statuses:
        response = await client.patch(f"{TASKS}/{id}", json={"status": status})
        assert response.status == 200, await response.text()
        task = await response.json()
    return task


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


# -- the API ----------------------------------------------------------------------------------


async def test_create_stores_a_pending_task_and_reads_it_back(client):
    response = await client.post(TASKS, json=TASK)
    assert response.status == 201
    task = await response.json()
    assert task["type"] == "scrape_app" and task["payload"] == TASK["payload"]
    assert task["status"] == "pending" and task["created_at"] == task["updated_at"]
    # Without RESTPLUG_ORCHESTRATOR_URL tasks are stored only.
    assert task["forwarding"] == {
        "state": "off",
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": None,
    }
    assert response.headers["Location"] == f"{TASKS}/{task['id']}"

    read = await client.get(response.headers["Location"])
    assert read.status == 200 and await read.json() == task
    assert read.headers["ETag"] == response.headers["ETag"]
    assert "no-store" in read.headers["Cache-Control"]
    again = await client.get(
        f"{TASKS}/{task['id']}", headers={"If-None-Match": read.headers["ETag"]}
    )
    assert again.status == 304

    other = await create(client)
    assert other["id"] != task["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {}}, "type"),
        ({"type": "", "payload": {}}, "type"),
        ({"type": 5, "payload": {}}, "type"),
        ({"type": "scrape_app"}, "payload"),
        ({"type": "scrape_app", "payload": [1, 2]}, "payload"),
        ({**TASK, "id": "mine"}, "id"),
        ({**TASK, "status": "done"}, "status"),
        ([TASK], "_schema"),
    ],
)
async def test_create_rejects_an_invalid_task_field_by_field(client, body, field):
    body = await problem(await client.post(TASKS, json=body), 422)
    assert field in body["errors"]
    assert (await (await client.get(TASKS)).json())["total"] == 0


async def test_create_refuses_other_content_types_and_malformed_json(client):
    await problem(
        await client.post(TASKS, data="type=x", headers={"Content-Type": "text/plain"}), 415
    )
    malformed = await client.post(TASKS, data="{", headers={"Content-Type": "application/json"})
    await problem(malformed, 400)


async def test_an_unknown_task_is_404(client):
    await problem(await client.get(f"{TASKS}/nope"), 404)
    await problem(await client.patch(f"{TASKS}/nope", json={"status": "running"}), 404)


async def test_list_filters_by_status_and_type_newest_first(client):
    ids = []
    for index in range(6):
        task_type = "scrape_prices" if index % 2 else "scrape_app"
        ids.append((await create(client, {"type": task_type, "payload": {"n": index}}))["id"])
    await move(client, ids[0], "running")
    await move(client, ids[1], "running", "done")
    await move(client, ids[2], "running", "failed")

    everything = await (await client.get(TASKS)).json()
    assert [task["id"] for task in everything["items"]] == ids[::-1]
    assert everything["total"] == 6 and everything["next_cursor"] is None

    async def listed(query: str) -> list[str]:
        response = await client.get(f"{TASKS}?{query}")
        assert response.status == 200, await response.text()
        return [task["id"] for task in (await response.json())["items"]]

    assert await listed("status=pending") == [ids[5], ids[4], ids[3]]
    assert await listed("status__in=done,failed") == [ids[2], ids[1]]
    assert await listed("type=scrape_prices") == [ids[5], ids[3], ids[1]]
    assert await listed("type__in=scrape_app&status=running") == [ids[0]]
    assert await listed("order_by=created_at&size=2") == ids[:2]
    assert await listed("fields=id") == ids[::-1]
    response = await client.get(f"{TASKS}?priority=high")
    assert "priority" in (await problem(response, 400))["detail"]


async def test_list_pages_and_cursors_walk_every_task_once(client):
    ids = [(await create(client))["id"] for _ in range(5)][::-1]

    first = await client.get(f"{TASKS}?size=2")
    body = await first.json()
    assert (body["total"], body["pages"], body["page"], body["size"]) == (5, 3, 1, 2)
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    paged = []
    for page in (1, 2, 3):
        body = await (await client.get(f"{TASKS}?size=2&page={page}")).json()
        paged += [task["id"] for task in body["items"]]
    assert paged == ids

    walked, cursor = [], None
    while True:
        query = f"size=2&cursor={cursor}" if cursor else "size=2"
        body = await (await client.get(f"{TASKS}?{query}")).json()
        walked += [task["id"] for task in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert walked == ids


# -- status transitions -----------------------------------------------------------------------


#: How to bring a new task to each status.
PATHS = {
    "pending": (),
    "running": ("running",),
    "done": ("running", "done"),
    "failed": ("running", "failed"),
}
#: Every (status, status) pair that is not an allowed transition, and unknown statuses.
REFUSED = [
    (current, wanted)
    for current in TRANSITIONS
    for wanted in TRANSITIONS
    if wanted not in TRANSITIONS[current]
] + [("pending", "paused"), ("done", "archived")]


@pytest.mark.parametrize("status", ["running", "done", "failed"])
async def test_every_allowed_transition(client, status):
    task = await create(client)
    moved = await move(client, task["id"], *PATHS[status])
    assert moved["status"] == status
    assert moved["updated_at"] > task["updated_at"]
    assert (await (await client.get(f"{TASKS}/{task['id']}")).json()) == moved


@pytest.mark.parametrize(("current", "status"), REFUSED)
async def test_every_other_transition_is_409(client, current, status):
    task = await create(client)
    before = await move(client, task["id"], *PATHS[current]) if PATHS[current] else task
    response = await client.patch(f"{TASKS}/{task['id']}", json={"status": status})
    body = await problem(response, 409)
    assert current in body["detail"] and status in body["detail"]
    assert (await (await client.get(f"{TASKS}/{task['id']}")).json()) == before


async def test_a_transition_carries_a_result_or_an_error(client):
    done = await create(client)
    await move(client, done["id"], "running")
    response = await client.patch(
        f"{TASKS}/{done['id']}",
        data='{"status": "done", "result": {"prices": 3}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert (await response.json())["result"] == {"prices": 3}

    failed = await create(client)
    await move(client, failed["id"], "running")
    patch = {"status": "failed", "error": "HTTP 429 from the store"}
    response = await client.patch(f"{TASKS}/{failed['id']}", json=patch)
    assert (await response.json())["error"] == "HTTP 429 from the store"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"status": "running", "type": "scrape_prices"}, "type"),
        ({"status": "running", "payload": {}}, "payload"),
        ({"status": "running", "id": "other"}, "id"),
        ({"status": "running", "forwarding": {"state": "done"}}, "forwarding"),
        ({}, "status"),
        ({"status": None}, "status"),
        ({"status": 3}, "status"),
        ({"status": "failed", "error": ["not", "text"]}, "error"),
    ],
)
async def test_patch_changes_only_the_status_result_and_error(client, patch, field):
    task = await create(client)
    body = await problem(await client.patch(f"{TASKS}/{task['id']}", json=patch), 422)
    assert field in body["errors"]
    assert (await (await client.get(f"{TASKS}/{task['id']}")).json()) == task


async def test_if_match_guards_a_patch(client, restplug_client):
    task = await create(client)
    read = await client.get(f"{TASKS}/{task['id']}")
    etag = read.headers["ETag"]
    await move(client, task["id"], "running")

    stale = await client.patch(
        f"{TASKS}/{task['id']}", json={"status": "done"}, headers={"If-Match": etag}
    )
    await problem(stale, 412)
    current = (await client.get(f"{TASKS}/{task['id']}")).headers["ETag"]
    fresh = await client.patch(
        f"{TASKS}/{task['id']}", json={"status": "done"}, headers={"If-Match": current}
    )
    assert fresh.status == 200 and fresh.headers["ETag"] != current

    strict = await restplug_client(env={"RESTPLUG_REQUIRE_IF_MATCH": "1"}, plugins=[AllowWrites()])
    other = await create(strict)
    await problem(await strict.patch(f"{TASKS}/{other['id']}", json={"status": "running"}), 428)


async def test_two_workers_cannot_both_claim_a_task(client):
    task = await create(client)
    responses = await asyncio.gather(
        *(client.patch(f"{TASKS}/{task['id']}", json={"status": "running"}) for _ in range(4))
    )
    assert sorted(response.status for response in responses) == [200, 409, 409, 409]


# -- forwarding -------------------------------------------------------------------------------


async def test_a_task_is_forwarded_once(restplug_client, orchestrator):
    await orchestrator.start()
    client = await restplug_client(env=forwarding_env(orchestrator.url), plugins=[AllowWrites()])
    task = await create(client)
    assert task["forwarding"]["state"] == "pending"

    done = await eventually(
        forwarding_reaches(client, task["id"], lambda f: f["state"] == "done"), "forwarded"
    )
    assert done["forwarding"] == {
        "state": "done",
        "attempts": 1,
        "last_error": None,
        "next_attempt_at": None,
    }
    sent = {key: value for key, value in task.items() if key != "forwarding"}
    assert orchestrator.received == [(sent, task["id"])]


async def test_an_outage_keeps_the_task_and_retries_until_it_is_forwarded(
    restplug_client, orchestrator
):
    client = await restplug_client(env=forwarding_env(orchestrator.url), plugins=[AllowWrites()])
    task = await create(client)

    failing = await eventually(
        forwarding_reaches(client, task["id"], lambda f: f["attempts"] >= 3), "three attempts"
    )
    assert failing["forwarding"]["state"] == "pending"
    assert "ClientConnectorError" in failing["forwarding"]["last_error"]
    assert failing["forwarding"]["next_attempt_at"] is not None
    listed = await (await client.get(f"{TASKS}?status=pending")).json()
    assert [item["id"] for item in listed["items"]] == [task["id"]]

    await orchestrator.start()
    done = await eventually(
        forwarding_reaches(client, task["id"], lambda f: f["state"] == "done"), "forwarded"
    )
    assert done["forwarding"]["attempts"] > 3
    assert "ClientConnectorError" in done["forwarding"]["last_error"]
    assert orchestrator.ids() == [task["id"]]


async def test_server_errors_are_retried_and_refusals_are_not(restplug_client, orchestrator):
    await orchestrator.start()
    client = await restplug_client(env=forwarding_env(orchestrator.url), plugins=[AllowWrites()])
    orchestrator.answers = [503, 429]
    retried = await create(client)
    done = await eventually(
        forwarding_reaches(client, retried["id"], lambda f: f["state"] == "done"), "forwarded"
    )
    assert done["forwarding"]["attempts"] == 3
    assert done["forwarding"]["last_error"] == "the orchestrator answered HTTP 429"

    orchestrator.answers = [400]
    refused = await create(client)
    failed = await eventually(
        forwarding_reaches(client, refused["id"], lambda f: f["state"] == "failed"), "refused"
    )
    assert failed["forwarding"]["attempts"] == 1
    assert failed["forwarding"]["last_error"].startswith("the orchestrator answered HTTP 400")
    assert failed["status"] == "pending"  # the task itself stays, visible and patchable
    assert orchestrator.ids() == [retried["id"]] * 3 + [refused["id"]]


async def test_a_restart_resumes_the_pending_forwards(restplug_client, orchestrator):
    env = forwarding_env(orchestrator.url)
    first = await restplug_client(env=env, plugins=[AllowWrites()])
    tasks = [await create(first) for _ in range(3)]
    for task in tasks:
        await eventually(
            forwarding_reaches(first, task["id"], lambda f: f["attempts"] >= 1), "an attempt"
        )
    await first.close()

    await orchestrator.start()
    second = await restplug_client(env=env, plugins=[AllowWrites()])  # the same store files
    for task in tasks:
        await eventually(
            forwarding_reaches(second, task["id"], lambda f: f["state"] == "done"), "resumed"
        )
    assert sorted(orchestrator.ids()) == sorted(task["id"] for task in tasks)


async def test_stopping_mid_forward_is_clean_and_sends_again_after_the_restart(
    restplug_client, orchestrator
):
    """An interrupted forward cannot know whether it arrived: it is sent again (at least
    once), with the same Idempotency-Key for the orchestrator to dedupe."""
    await orchestrator.start()
    orchestrator.hold = asyncio.Event()
    env = forwarding_env(orchestrator.url, timeout_ms=30_000)
    first = await restplug_client(env=env, plugins=[AllowWrites()])
    task = await create(first)

    async def arrived() -> bool:
        return bool(orchestrator.received)

    await eventually(arrived, "the forward reached the orchestrator")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await first.close()
    assert loop.time() - started < 2, "shutdown waited for the orchestrator"

    orchestrator.hold = None
    second = await restplug_client(env=env, plugins=[AllowWrites()])
    done = await eventually(
        forwarding_reaches(second, task["id"], lambda f: f["state"] == "done"), "resumed"
    )
    assert done["forwarding"]["attempts"] == 1  # the interrupted attempt left no trace
    assert [key for _, key in orchestrator.received] == [task["id"], task["id"]]


class Told:
    """Records each ``documents_changed`` call: (resource, [(id, status, forwarding state)])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str, str]]]] = []

    @hookimpl
    def documents_changed(self, resource, changes):
        states = [(c.id, c.document["status"], c.document["forwarding"]["state"]) for c in changes]
        self.calls.append((resource.name, states))


async def test_every_task_write_renews_cached_reads_and_tells_the_plugins(
    restplug_client, orchestrator
):
    await orchestrator.start()
    told = Told()
    env = forwarding_env(orchestrator.url)
    client = await restplug_client(env=env, plugins=[AllowWrites(), told])
    task = await create(client)
    id = task["id"]
    # The forwarder writes in the background: the cached read shows it all the same.
    await eventually(forwarding_reaches(client, id, lambda f: f["state"] == "done"), "forwarded")
    for path in (f"{TASKS}/{id}", f"{TASKS}?status=pending"):
        await client.get(path)
        again = await client.get(path)
        assert again.headers["X-Cache"] == "HIT" and "no-store" in again.headers["Cache-Control"]
    await move(client, id, "running")
    detail = await client.get(f"{TASKS}/{id}")
    assert (detail.headers["X-Cache"], (await detail.json())["status"]) == ("MISS", "running")
    listed = await client.get(f"{TASKS}?status=pending")
    assert (listed.headers["X-Cache"], (await listed.json())["total"]) == ("MISS", 0)
    assert told.calls == [
        ("tasks", [(id, "pending", "pending")]),  # registered
        ("tasks", [(id, "pending", "done")]),  # forwarded
        ("tasks", [(id, "running", "done")]),  # claimed by a worker
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESTPLUG_ORCHESTRATOR_URL", "ftp://orchestrator"),
        ("RESTPLUG_ORCHESTRATOR_TIMEOUT_MS", "soon"),
        ("RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS", "0"),
        ("RESTPLUG_ORCHESTRATOR_CONCURRENCY", "-1"),
    ],
)
async def test_a_bad_orchestrator_setting_stops_start_up(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        await Restplug.configure(isolated_environ(tmp_path, {name: value}))


# -- permissions, OpenAPI, demo data ----------------------------------------------------------

SECRET = "tasks-test-secret-0123456789-0123456789-0123456789"


async def test_every_tasks_route_needs_the_backend_tasks_scope(restplug_client):
    client = await restplug_client(env={"RESTPLUG_AUTH_JWT_SECRET": SECRET})

    def bearer(*scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(SECRET, scopes, 600, 'worker')}"}

    allowed = bearer("backend/tasks")
    created = await client.post(TASKS, json=TASK, headers=allowed)
    assert created.status == 201
    item = created.headers["Location"]
    calls = [
        ("POST", TASKS, {"json": TASK}, 201),
        ("GET", TASKS, {}, 200),
        ("GET", item, {}, 200),
        ("PATCH", item, {"json": {"status": "running"}}, 200),
    ]
    for method, path, kwargs, success in calls:
        anonymous = await client.request(method, path, **kwargs)
        assert anonymous.status == 401, f"{method} {path} is open without a token"
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.request(method, path, headers=bearer("backend/create"), **kwargs)
        assert wrong.status == 403
        assert 'scope="backend/tasks"' in wrong.headers["WWW-Authenticate"]
        response = await client.request(method, path, headers=allowed, **kwargs)
        assert response.status == success, await response.text()
    wildcard = await client.get(TASKS, headers=bearer("backend/*"))
    assert wildcard.status == 200


async def test_openapi_describes_the_tasks_routes(client):
    document = await (await client.get("/openapi.json")).json()
    validate(document)
    operations = {
        ("post", TASKS),
        ("get", TASKS),
        ("get", f"{TASKS}/{{id}}"),
        ("patch", f"{TASKS}/{{id}}"),
    }
    for method, path in operations:
        operation = document["paths"][path][method]
        assert operation["security"] == [{"bearer": ["backend/tasks"]}]
        assert operation["tags"] == ["tasks"]
    assert {"Task", "TaskCreate", "TaskPatch", "TaskPage"} <= set(document["components"]["schemas"])
    parameters = {p["name"] for p in document["paths"][TASKS]["get"]["parameters"]}
    assert {"status", "type__in", "page", "cursor", "fields"} <= parameters
    assert "put" not in document["paths"][f"{TASKS}/{{id}}"]


async def test_demo_tasks_load_once(client):
    restplug = client.app[RESTPLUG]
    assert await load_demo_tasks(restplug, 5, seed=7) == 5
    await move(client, "demo-7-0", "running")
    assert await load_demo_tasks(restplug, 5, seed=7) == 0
    assert await load_demo_tasks(restplug, 6, seed=7) == 1
    listed = await (await client.get(f"{TASKS}?size=100")).json()
    assert sorted(task["id"] for task in listed["items"]) == [f"demo-7-{n}" for n in range(6)]
    assert (await (await client.get(f"{TASKS}/demo-7-0")).json())["status"] == "running"
