"""Forwarding registered tasks to the orchestrator: in the background, with backoff, resumed
from the store after a restart; delivery at least once (``Idempotency-Key`` = task id)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import aiohttp

from restplug import FindQuery, Write, crash_point
from restplug.web import JSON, dumps
from restplug_catalog.demo import generate_tasks
from restplug_catalog.tasks.documents import (
    RETRYABLE_CLIENT_ERRORS,
    TASKS,
    new_task,
    timestamp,
    update_task,
    utc_now,
)

if TYPE_CHECKING:
    from restplug import Collection, Context, Settings

# -- forwarding -----------------------------------------------------------------------------


log = logging.getLogger("restplug.catalog.tasks")


@dataclass(frozen=True)
class Backoff:
    base: float
    maximum: float

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failed ones: doubling, capped by
        ``maximum`` (which wins over ``base``), with jitter, so the tasks an outage piled up do
        not all retry at the same instant."""
        capped = min(self.maximum, self.base * 2 ** min(failures - 1, 60))
        return capped / 2 + random.uniform(0, capped / 2)


class Forwarder:
    """POSTs pending tasks to the orchestrator, retrying with backoff, from a few background
    workers.  The tasks' collection is the queue: each attempt re-reads the task and records
    its outcome in ``forwarding`` (a write like any other: cached reads renew, plugins are
    told); the in-memory schedule only says when to look again."""

    def __init__(
        self, tasks: Collection, url: str, timeout: float, backoff: Backoff, workers: int
    ) -> None:
        self._tasks = tasks
        self._url = url
        self._timeout = timeout
        self._backoff = backoff
        self._worker_count = workers
        self._due: list[tuple[float, str]] = []  # heap of (loop time due, task id)
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, tasks: Collection, settings: Settings) -> Forwarder:
        backoff = Backoff(
            settings["RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS"] / 1000,
            settings["RESTPLUG_ORCHESTRATOR_RETRY_MAX_MS"] / 1000,
        )
        return cls(
            tasks,
            settings["RESTPLUG_ORCHESTRATOR_URL"],
            settings["RESTPLUG_ORCHESTRATOR_TIMEOUT_MS"] / 1000,
            backoff,
            settings["RESTPLUG_ORCHESTRATOR_CONCURRENCY"],
        )

    async def start(self) -> None:
        """Schedule every forward a previous run left pending, then start the workers."""
        pending = await self._tasks.find(FindQuery({"forwarding.state": {"$eq": "pending"}}))
        for stored in pending:
            self.schedule(stored.id, _seconds_until(stored.document["forwarding"]))
        if pending:
            log.info("resuming %d pending forwards to the orchestrator", len(pending))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._workers = [
            asyncio.create_task(self._work(), name=f"restplug-task-forwarder-{n}")
            for n in range(self._worker_count)
        ]

    async def stop(self) -> None:
        """Cancel the workers (an interrupted attempt stays pending and is resumed by the next
        start: at least once) and close the HTTP session."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._session is not None:
            await self._session.close()

    def schedule(self, id: str, delay: float = 0.0) -> None:
        heapq.heappush(self._due, (asyncio.get_running_loop().time() + delay, id))
        self._wakeup.set()

    async def _next_due(self) -> str:
        loop = asyncio.get_running_loop()
        while True:
            wait = None
            if self._due:
                due, id = self._due[0]
                wait = due - loop.time()
                if wait <= 0:
                    heapq.heappop(self._due)
                    return id
            # Set by schedule(): something new may be due before ``wait`` is over.
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def _work(self) -> None:
        while True:
            id = await self._next_due()
            try:
                await self._attempt(id)
            except Exception:
                # The store failed (or kept losing compare-and-set rounds): the task is still
                # pending in the store, so look again later rather than lose the worker.
                log.exception("forwarding task %s failed; retrying later", id)
                self.schedule(id, self._backoff.maximum)

    async def _attempt(self, id: str) -> None:
        stored = await self._tasks.get(id)
        if stored is None or stored.document["forwarding"]["state"] != "pending":
            return
        state, error = await self._send(stored.document)
        if state == "done":
            crash_point("task-forwarded")
        failures = stored.document["forwarding"]["attempts"] + 1
        delay = self._backoff.delay(failures) if state == "pending" else None

        def record(document: dict[str, Any]) -> dict[str, Any]:
            forwarding = document["forwarding"]
            due = None if delay is None else timestamp(utc_now() + timedelta(seconds=delay))
            return {
                **document,
                "forwarding": {
                    "state": state,
                    "attempts": forwarding["attempts"] + 1,
                    # Kept after a success: how the forward went stays on record.
                    "last_error": error or forwarding["last_error"],
                    "next_attempt_at": due,
                },
            }

        await update_task(self._tasks, id, record)
        if delay is not None:
            log.warning("forwarding task %s failed (%s); retry in %.1f s", id, error, delay)
            self.schedule(id, delay)
        elif state == "failed":
            log.error("the orchestrator refused task %s: %s", id, error)

    async def _send(self, task: dict[str, Any]) -> tuple[str, str | None]:
        """POST one task: the forwarding state it leads to, and the error if it failed.  A
        4xx other than 408/425/429 is a refusal of this very task (sending it again cannot
        help); everything else that is not a 2xx is worth retrying."""
        assert self._session is not None, "start() opens the session"
        body = {key: value for key, value in task.items() if key != "forwarding"}
        headers = {"Content-Type": JSON, "Idempotency-Key": task["id"]}
        try:
            async with self._session.post(
                self._url, data=dumps(body), headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return "done", None
                error = f"the orchestrator answered HTTP {response.status}"
                if 400 <= response.status < 500 and response.status not in RETRYABLE_CLIENT_ERRORS:
                    excerpt = (await response.content.read(200)).decode(errors="replace")
                    return "failed", f"{error}: {excerpt}"
                return "pending", error
        except TimeoutError:
            return "pending", f"no answer within {self._timeout * 1000:.0f} ms"
        except aiohttp.ClientError as exc:
            return "pending", f"{type(exc).__name__}: {exc}"


def _seconds_until(forwarding: dict[str, Any]) -> float:
    due = forwarding.get("next_attempt_at")
    if due is None:
        return 0.0
    return max(0.0, (datetime.fromisoformat(due) - utc_now()).total_seconds())


# One forwarder per started restplug with an orchestrator (tests run several in one process).
FORWARDERS: WeakKeyDictionary[Context, Forwarder] = WeakKeyDictionary()


async def register_task(
    restplug: Context, task_type: str, payload: dict[str, Any], id: str | None = None
) -> tuple[dict[str, Any], str]:
    """Store a new task, then hand it to the forwarder: stored first, so a crash before the
    forward leaves a pending forward to resume.  Raises Conflict when ``id`` is taken."""
    document = new_task(id or uuid.uuid4().hex, task_type, payload, forward=_forwards(restplug))
    etag = await restplug.collection(TASKS.name).insert(document["id"], document)
    _schedule(restplug, [document["id"]])
    return document, etag


async def load_demo_tasks(
    restplug: Context, count: int, seed: int, *, max_app_id: int = 100
) -> int:
    """Register the demo tasks of :func:`restplug_catalog.demo.generate_tasks` in one bulk
    write; returns how many were new.  Ids derive from the seed, so a re-run adds nothing and
    leaves the tasks already there (whose status may have moved on) alone."""
    forward = _forwards(restplug)
    documents = [
        new_task(f"demo-{seed}-{index}", task["type"], task["payload"], forward=forward)
        for index, task in enumerate(generate_tasks(count, seed, max_app_id=max_app_id))
    ]
    applied = await restplug.collection(TASKS.name).bulk(
        [Write(document["id"], document) for document in documents]
    )
    new = [document["id"] for document, ok in zip(documents, applied, strict=True) if ok]
    _schedule(restplug, new)
    return len(new)


def _forwards(restplug: Context) -> bool:
    return restplug.settings["RESTPLUG_ORCHESTRATOR_URL"] is not None


def _schedule(restplug: Context, ids: list[str]) -> None:
    """Hand stored tasks to the running forwarder (none: the next start finds them)."""
    forwarder = FORWARDERS.get(restplug)
    if forwarder is not None:
        for id in ids:
            forwarder.schedule(id)
