"""Redis and the search index taken away from a running server while requests flow.

Only what clients see is checked: the HTTP answers, what a read or a search finds afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pytest_redis.executor import RedisExecutor
from servers import Server, call, token

WRITER = token("backend/create")
LOAD_SECONDS = 30  # a bound on every load loop, whatever happens
OUTAGE = 1.5  # seconds each outage lasts


class Load:
    """A loop of writes (new apps, each with a word of its own) and reads in a thread, until
    stopped or ``LOAD_SECONDS``; ``read`` is what it asks after each write."""

    def __init__(self, server: Server, read: Callable[[int, str], str], first_id: int) -> None:
        self.server, self.read = server, read
        self.answers: list[tuple[str, int, str]] = []  # (what, status, content type)
        self.acknowledged: dict[int, str] = {}  # id -> its word
        self.next_id = first_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            id, self.next_id = self.next_id, self.next_id + 1
            word = f"chaosword{id}x"
            app = {"id": id, "name": f"Game {word}", "type": "game"}
            self._send("write", "/api/v1/apps", "POST", app, WRITER)
            if 200 <= self.answers[-1][1] < 300:
                self.acknowledged[id] = word
            self._send("read", self.read(id, word))
            time.sleep(0.01)

    def _send(self, what: str, path: str, method: str = "GET", body=None, auth="") -> None:
        status, headers, _ = call(self.server.url + path, method, body, token=auth, timeout=30)
        self.answers.append((what, status, headers.get("Content-Type", "")))

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        self._thread.start()
        try:
            time.sleep(0.3)
            yield self
            time.sleep(0.3)
        finally:
            self._stop.set()
            self._thread.join()

    def statuses(self, what: str) -> list[int]:
        return [status for kind, status, _ in self.answers if kind == what]


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def report(label: str, loads: list[Load], lost: int) -> None:
    answers = [answer for load in loads for answer in load.answers]
    unavailable = sum(1 for what, status, _ in answers if (what, status) == ("read", 503))
    errors = sum(1 for _, status, _ in answers if status >= 500) - unavailable
    print(
        f"\n{label}: {len(answers)} requests, {unavailable} searches answered 503, "
        f"{errors} other 5xx, {lost} acknowledged writes lost"
    )


# -- Redis ----------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_stopped(redis: RedisExecutor) -> Iterator[None]:
    redis.stop()
    try:
        yield
    finally:
        redis.start()


@contextlib.contextmanager
def redis_frozen(redis: RedisExecutor) -> Iterator[None]:
    """Redis hanging, as behind a network partition: connections open, no answers."""
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)


def test_redis_stopped_and_frozen_under_load(server_factory, rounds, outage_redis_server):
    url = f"redis://{outage_redis_server.host}:{outage_redis_server.port}/0"
    server = server_factory(RESTPLUG_CACHE_URL=url).start()
    loads: list[Load] = []
    lost = 0
    for _ in range(rounds):
        for outage in (redis_stopped, redis_frozen):
            first_id = loads[-1].next_id if loads else 1
            load = Load(server, lambda id, word: f"/api/v1/apps/{id}", first_id)
            with load.running(), outage(outage_redis_server):
                time.sleep(OUTAGE)
            loads.append(load)
            assert load.acknowledged and load.statuses("read")
            assert [s for _, s, _ in load.answers if s >= 500] == []
            for id, word in load.acknowledged.items():
                status, _, body = call(f"{server.url}/api/v1/apps/{id}")
                lost += status != 200 or word not in body["name"]
            assert lost == 0

            # Caching resumes (after the cache's circuit breaker closes again).
            def cached() -> bool:
                return call(f"{server.url}/api/v1/apps/1")[1].get("X-Cache") == "HIT"

            until(cached, 15, "X-Cache: HIT once Redis is back")
    report("redis stopped and frozen", loads, lost)


# -- the search index -----------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_locked(database: Path) -> Iterator[None]:
    """The SQLite file held by another process: its shared-memory locks (the WAL write lock
    and every reader slot) taken, as a stuck process would hold them.  The server's index
    calls wait on them, past its query time bound."""
    fd = os.open(f"{database}-shm", os.O_RDWR)
    try:
        # The server under load holds one of these locks now and then, for a moment.
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120, os.SEEK_SET)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the server never let go of its index"
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the locks


def test_search_index_locked_under_load(server_factory, rounds, tmp_path):
    server = server_factory(RESTPLUG_CACHE_URL="none://", RESTPLUG_QUERY_TIMEOUT_MS="500")
    server.start()
    assert call(f"{server.url}/api/v1/apps?search=anything")[0] == 200
    loads: list[Load] = []
    acknowledged: dict[int, str] = {}
    for _ in range(rounds):
        first_id = loads[-1].next_id if loads else 1
        load = Load(server, lambda id, word: f"/api/v1/apps?search={word}&count=none", first_id)
        with load.running(), sqlite_locked(tmp_path / "search.db"):
            # Longer than a write's wait for the index plus a search's time bound, so that some
            # search certainly starts and times out within the outage.
            time.sleep(2.5)
        loads.append(load)
        assert load.acknowledged
        assert set(load.statuses("write")) <= {201}
        searches = load.statuses("read")
        assert set(searches) <= {200, 503} and 503 in searches, searches
        assert all(
            kind == "read" and ctype.startswith("application/problem+json")
            for kind, status, ctype in load.answers
            if status >= 500
        )
        acknowledged.update(load.acknowledged)

        def searchable() -> bool:
            return all(found(server, id, word) for id, word in acknowledged.items())

        until(searchable, 40, "every acknowledged write searchable once the index is back")
    lost = sum(not found(server, id, word) for id, word in acknowledged.items())
    report("search index locked", loads, lost)


def found(server: Server, id: int, word: str) -> bool:
    status, _, body = call(f"{server.url}/api/v1/apps?search={word}&count=none")
    return status == 200 and id in [item["id"] for item in body["items"]]
