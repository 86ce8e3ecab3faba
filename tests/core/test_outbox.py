"""The outbox with the real SQLite store and index: every write's side effects (search index,
cache, ``documents_changed``) happen, an index outage loses nothing, what a crash leaves pending
is settled at the next start, a rebuild restores a wiped index and reaches other processes'
caches."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema
from tqdm import tqdm

from restplug import hookimpl
from restplug.app import Restplug
from restplug.caches.manager import CacheManager
from restplug.caches.memory import MemoryCache
from restplug.collection import Change
from restplug.errors import BackendUnavailable, ConfigError
from restplug.outbox import OUTBOX, Outbox, OutboxStore
from restplug.resources import Resource
from restplug.search.indexing import Indexer
from restplug.search.sqlite import SQLiteSearchIndex
from restplug.stores.protocol import Write
from restplug.stores.sqlite import SQLiteStore
from restplug.testing import isolated_environ

APPS = Resource(name="apps", schema=Schema, search_fields={"name": 4.0, "short_description": 1.0})
TASKS = Resource(name="tasks", schema=Schema)  # nothing to search
RESOURCES = {"apps": APPS, "tasks": TASKS}
SECRET = "confidential-words"  # document content that must never reach a log


class Flaky:
    """The real index, except while ``down`` (every call fails as in an outage) or ``hung``
    (every call waits forever), and for upserts of ``refused`` ids.  ``calls`` counts the
    calls by method, failed ones included; ``before_upsert`` runs first in each upsert; a call
    of a method named in ``held`` waits for its event."""

    def __init__(self, index: SQLiteSearchIndex) -> None:
        self.index = index
        self.down = False
        self.hung = False
        self.calls: Counter[str] = Counter()
        self.refused: set[Any] = set()  # ids whose upsert fails as a bug would
        self.before_upsert: Callable[[], Awaitable[None]] | None = None
        self.held: dict[str, asyncio.Event] = {}

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.index, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name in self.held:
                await self.held[name].wait()
            if name == "upsert" and self.before_upsert is not None:
                await self.before_upsert()
            if self.down:
                raise BackendUnavailable("the search index is down")
            if self.hung:
                await asyncio.sleep(3600)
            if name == "upsert" and args[1] in self.refused:
                raise ValueError("this document cannot be indexed")
            return await method(*args, **kwargs)

        return call


class Counted:
    """The real store, counting bulk writes by collection."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.bulk: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def bulk_write(self, collection: str, writes: Any) -> list[bool]:
        self.bulk[collection] += 1
        return await self.store.bulk_write(collection, writes)


class Process:
    """What one restplug process runs: an outbox over the shared store and index, its own
    cache, a record of the ``documents_changed`` calls; ``store`` is what it writes through."""

    def __init__(
        self, store: Any, index: Any, *, timeout: float = 0.5, retry_interval: float = 3600
    ) -> None:
        self.changes: list[tuple[str, Any, Any]] = []
        self.batches: list[tuple[str, int]] = []  # (resource, changes) per call
        self.cache = CacheManager(MemoryCache())
        self.indexer = Indexer(store, index, RESOURCES, timeout=timeout)
        self.outbox = Outbox(
            store, RESOURCES, self.cache, self.notify, retry_interval=retry_interval,
            max_retry_interval=max(retry_interval * 8, 0.08),
        )  # fmt: skip
        self.outbox.indexer = self.indexer
        self.store = OutboxStore(store, self.outbox)

    async def notify(self, resource: Resource, changes: list[Change]) -> None:
        self.batches.append((resource.name, len(changes)))
        for change in changes:
            document = change.document
            self.changes.append((resource.name, change.id, document and document["name"]))

    async def start(self) -> Process:
        await self.store.prepare("apps", [])
        await self.store.prepare("tasks", [])
        await self.indexer.prepare()
        await self.outbox.start()
        return self

    async def pending(self) -> int:
        return await self.outbox.pending()

    async def retry_pending(self) -> int:
        return await self.outbox.retry_pending()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[Flaky]:
    index = SQLiteSearchIndex(f"sqlite:///{tmp_path}/search.db")
    await index.open()
    yield Flaky(index)
    await index.close()


@pytest.fixture
async def indexer(store: SQLiteStore, index: Flaky) -> AsyncIterator[Process]:
    process = await Process(store, index).start()
    yield process
    await process.outbox.stop()


async def write_while_down(process: Process, index: Flaky, games: int) -> None:
    """Games 1 to ``games`` written while the index is down, so each waits in the outbox."""
    index.down = True
    for id in range(1, games + 1):
        await write(process, id, f"Game {id}")
    index.down = False


async def write(process: Process, id: Any, name: str | None, resource: Resource = APPS) -> None:
    """Write through the process's store as the core does; ``None`` deletes."""
    store = process.store
    current = await store.get(resource.name, id)
    if name is None:
        await store.delete(resource.name, id)
        return
    document = {"name": name, "short_description": f"{SECRET} about {name}"}
    if current is None:
        await store.insert(resource.name, id, document, "e")
    else:
        await store.replace(resource.name, id, document, "e")


async def found(process: Process, text: str) -> list[Any]:
    return sorted((id for id, _ in await process.indexer.index.search("apps", text, 1000)), key=str)


async def test_changes_reach_the_index(indexer: Process) -> None:
    await write(indexer, 1, "Hollow Knight")
    await write(indexer, "x", "Hollow Moon")
    assert await found(indexer, "hollow") == [1, "x"]
    await write(indexer, 1, "Silksong")
    assert await found(indexer, "hollow") == ["x"]
    await write(indexer, "x", None)
    assert await found(indexer, "hollow") == []
    assert await found(indexer, "silk") == [1]
    await write(indexer, 7, "Not searchable", TASKS)  # no search fields: settled all the same
    assert await indexer.pending() == 0
    assert indexer.changes == [
        ("apps", 1, "Hollow Knight"),
        ("apps", "x", "Hollow Moon"),
        ("apps", 1, "Silksong"),
        ("apps", "x", None),
        ("tasks", 7, "Not searchable"),
    ]
    assert all(size == 1 for _, size in indexer.batches)  # a single write: a list of one


async def test_an_outage_fails_no_change_and_loses_none(
    indexer: Process, index: Flaky, caplog: pytest.LogCaptureFixture
) -> None:
    await write(indexer, 1, "Stardew Valley")
    await write(indexer, 2, "Valley of Kings")
    index.down = True
    with caplog.at_level(logging.WARNING):
        await write(indexer, 1, "Moonlight Farm")
        await write(indexer, 1, "Moonlight Farm Deluxe")  # several changes, one entry
        await write(indexer, 2, None)
        await write(indexer, 3, "Harvest Moon")
        await write(indexer, 4, "Short-lived")
        await write(indexer, 4, None)  # created and deleted during the outage
    assert "apps 1" in caplog.text and "the search index is down" in caplog.text
    assert SECRET not in caplog.text and "Moonlight" not in caplog.text
    assert await indexer.pending() == 4
    assert await indexer.retry_pending() == 0  # still down: everything stays
    assert await indexer.pending() == 4

    index.down = False
    assert await indexer.retry_pending() == 4
    assert await indexer.pending() == 0
    assert await found(indexer, "valley") == []
    assert await found(indexer, "moonlight deluxe") == [1]
    assert await found(indexer, "moon") == [1, 3]
    assert await found(indexer, "short") == []


async def test_after_a_failure_changes_skip_the_index_until_a_retry_succeeds(
    indexer: Process, index: Flaky
) -> None:
    index.down = True
    await write(indexer, 1, "First")
    index.down = False
    calls = index.calls["upsert"]
    await write(indexer, 2, "Second")  # recorded straight away: no timeout per write
    assert (index.calls["upsert"], await indexer.pending()) == (calls, 2)
    assert await indexer.retry_pending() == 2
    await write(indexer, 3, "Third")  # indexed directly again
    assert await indexer.pending() == 0
    assert await found(indexer, "first second third") == []
    assert await found(indexer, "third") == [3]


async def test_a_hung_index_is_given_up_on_in_bounded_time(
    store: SQLiteStore, index: Flaky
) -> None:
    indexer = await Process(store, index, timeout=0.05).start()
    index.hung = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    await write(indexer, 1, "Slow")
    assert loop.time() - start < 1
    assert await indexer.pending() == 1
    index.hung = False
    assert await indexer.retry_pending() == 1
    assert await found(indexer, "slow") == [1]
    await indexer.outbox.stop()


async def test_a_cancelled_caller_still_gets_its_change_recorded(
    store: SQLiteStore, index: Flaky
) -> None:
    indexer = await Process(store, index, timeout=0.05).start()
    index.hung = True
    request = asyncio.create_task(indexer.store.insert("apps", 1, {"name": "Abandoned"}, "e"))
    while not index.calls["upsert"]:
        await asyncio.sleep(0.005)
    request.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await request
    await indexer.outbox.stop()  # waits for the side effects in flight
    assert await indexer.pending() == 1
    assert indexer.changes == [("apps", 1, "Abandoned")]


async def test_a_failure_in_the_middle_of_a_drain_keeps_the_rest(
    indexer: Process, index: Flaky
) -> None:
    await write_while_down(indexer, index, 3)

    async def fail_after_the_first() -> None:
        index.down = index.calls["upsert"] > 1

    index.calls.clear()
    index.before_upsert = fail_after_the_first
    assert await indexer.retry_pending() == 1
    assert await indexer.pending() == 2
    index.down, index.before_upsert = False, None
    assert await indexer.retry_pending() == 2
    assert await found(indexer, "game") == [1, 2, 3]


async def test_one_document_failing_blocks_neither_the_others_nor_direct_updates(
    indexer: Process, index: Flaky
) -> None:
    await write_while_down(indexer, index, 3)
    index.refused = {2}
    assert await indexer.retry_pending() == 2
    assert await indexer.pending() == 1
    await write(indexer, 2, "Game 2 again")  # fails, kept pending...
    await write(indexer, 4, "Game 4")  # ...but is no outage: the next change goes through
    assert (await indexer.pending(), await found(indexer, "game")) == (1, [1, 3, 4])
    index.refused = set()
    assert await indexer.retry_pending() == 1
    assert await found(indexer, "again") == [2]


async def test_a_change_recorded_while_its_entry_is_retried_is_kept(
    store: SQLiteStore, index: Flaky
) -> None:
    """Another process writes a document again while this one retries it: the retry read
    the older version, so the entry must stay for the next round, and the index gets the
    newer version at once (the removal that failed says the document moved on)."""
    this = await Process(store, index).start()
    other_index = Flaky(index.index)
    other = await Process(store, other_index).start()
    other_index.down = True
    await write(other, 1, "Version Two")
    assert await this.pending() == 1

    async def meanwhile_in_the_other_process() -> None:
        index.before_upsert = None
        await write(other, 1, "Version Three")  # its index is still down: recorded again

    index.before_upsert = meanwhile_in_the_other_process
    assert await this.retry_pending() == 0
    assert await this.pending() == 1
    assert (await found(this, "three"), await found(this, "two")) == ([1], [])
    assert await this.retry_pending() == 1
    assert await this.pending() == 0
    await this.outbox.stop()
    await other.outbox.stop()


async def test_pending_changes_survive_a_restart(tmp_path: Path, index: Flaky) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    indexer = await Process(store, index).start()
    index.down = True
    await write(indexer, 1, "Before The Crash")
    await write(indexer, "b", "Also Before")
    await indexer.outbox.stop()
    await store.close()

    index.down = False
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    restarted = Process(store, index)
    assert await restarted.pending() == 2
    await restarted.start()  # settles them before it serves
    assert await restarted.pending() == 0
    assert await found(restarted, "before") == [1, "b"]
    assert sorted(restarted.changes, key=lambda change: str(change[1])) == [
        ("apps", 1, "Before The Crash"),
        ("apps", "b", "Also Before"),
    ]
    assert restarted.batches == [("apps", 2)]  # caught up as one batch
    await restarted.outbox.stop()
    await store.close()


async def test_the_retry_task_backs_off_while_failing_then_catches_up(
    store: SQLiteStore, index: Flaky
) -> None:
    indexer = await Process(store, index, retry_interval=0.01).start()
    index.down = True
    await write(indexer, 1, "Eventually")
    index.calls.clear()
    await asyncio.sleep(0.4)
    # Waits of 0.01, 0.02, 0.04, 0.08, 0.08...: some 7 tries, not 40.
    assert 3 <= index.calls["upsert"] <= 12
    index.down = False
    for _ in range(100):
        if not await indexer.pending():
            break
        await asyncio.sleep(0.02)
    assert await found(indexer, "eventually") == [1]
    await indexer.outbox.stop()


async def test_an_index_down_at_start_is_prepared_later(store: SQLiteStore, index: Flaky) -> None:
    index.down = True
    indexer = await Process(store, index).start()  # does not fail: writes must go on
    await write(indexer, 1, "Early Bird")
    assert await indexer.pending() == 1
    index.down = False
    with pytest.raises(BackendUnavailable):  # never prepared so far
        await index.search("apps", "early", 10)
    assert await indexer.retry_pending() == 1
    assert await found(indexer, "early") == [1]
    await indexer.outbox.stop()


async def test_rebuild_restores_a_wiped_index_with_progress(
    tmp_path: Path, indexer: Process, index: Flaky
) -> None:
    ids: list[Any] = [*range(1, 1101), "s1", "s2"]  # three pages of numbers, then strings
    raw = indexer.outbox.store
    for id in ids:
        await raw.insert("apps", id, {"name": f"Tycoon {id}"}, "e")
    index.down = True
    await write(indexer, 5, "Renamed Tycoon")  # pending: owes more than the index
    index.down = False

    wiped = SQLiteSearchIndex(f"sqlite:///{tmp_path}/wiped.db")
    await wiped.open()
    indexer.indexer.index = wiped
    bar = tqdm(total=len(ids), file=io.StringIO())
    assert await indexer.indexer.rebuild(APPS, bar) == len(ids)
    assert bar.n == len(ids)
    assert len(await wiped.search("apps", "tycoon", 2000)) == len(ids)
    assert [id for id, _ in await wiped.search("apps", "renamed", 10)] == [5]
    assert [id for id, _ in await wiped.search("apps", "s2", 10)] == ["s2"]
    assert await indexer.pending() == 1
    with pytest.raises(ValueError):
        await indexer.indexer.rebuild(TASKS)
    await wiped.close()


async def test_a_rebuild_drops_every_process_cached_lists(store: SQLiteStore, index: Flaky) -> None:
    """``restplug reindex`` runs apart from the servers: its own cache is renewed at once, a
    server's per-process cache at its next retry interval."""
    server = await Process(store, index, retry_interval=0.01).start()
    cli = await Process(store, index).start()
    cached = [await p.cache.generations(["restplug:apps:gen"]) for p in (server, cli)]
    await cli.outbox.mark_rebuilt("apps")
    assert await cli.cache.generations(["restplug:apps:gen"]) != cached[1]
    for _ in range(100):
        if await server.cache.generations(["restplug:apps:gen"]) != cached[0]:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the server kept its cached lists after the rebuild")
    await server.outbox.stop()
    await cli.outbox.stop()


async def test_a_bulk_write_settles_in_one_round_trip(store: SQLiteStore, index: Flaky) -> None:
    counted = Counted(store)
    process = await Process(counted, index).start()
    writes = [Write(id, {"name": f"Bulk {id}"}, "e") for id in range(1000)]
    assert all(await process.store.bulk_write("apps", writes))
    assert counted.bulk == {"apps": 1, OUTBOX: 1}
    assert index.calls["update_many"] == 1 and not index.calls["upsert"]
    assert await process.pending() == 0
    assert len(await found(process, "bulk")) == 1000
    assert len(process.changes) == 1000
    assert process.batches == [("apps", 1000)]  # the plugins are told once, of every document
    await process.outbox.stop()


async def test_a_retry_leaves_a_write_still_settling_here_to_it(
    store: SQLiteStore, index: Flaky
) -> None:
    process = await Process(store, index).start()
    index.held["update_many"] = asyncio.Event()
    writes = [Write(id, {"name": f"Bulk {id}"}, "e") for id in (1, 2)]
    writing = asyncio.ensure_future(process.store.bulk_write("apps", writes))
    while not index.calls["update_many"]:
        await asyncio.sleep(0.01)
    assert await process.pending() == 2
    assert await process.retry_pending() == 0  # the write's own settle does it
    index.held["update_many"].set()
    assert await writing == [True, True]
    assert await process.pending() == 0
    assert await found(process, "bulk") == [1, 2]
    # Indexed and told once, by the write's settle.
    assert (index.calls["update_many"], index.calls["upsert"]) == (1, 0)
    assert process.batches == [("apps", 2)]
    await process.outbox.stop()


async def test_a_crash_between_write_and_side_effects_is_caught_up(
    store: SQLiteStore, index: Flaky
) -> None:
    """The entry is in the write's transaction: a process that dies right after the commit
    (here: the write made without settling, as the store left it) owes nothing to chance."""
    dead = Process(store, index)
    await dead.store.prepare("apps", [])
    entry = dead.outbox.entry("apps", 1)
    await store.insert("apps", 1, {"name": "Survivor"}, "e", outbox=entry)
    restarted = await Process(store, index).start()
    assert await found(restarted, "survivor") == [1]
    assert restarted.changes == [("apps", 1, "Survivor")]
    assert await restarted.pending() == 0
    await restarted.outbox.stop()


async def test_stop_is_clean_and_idempotent(store: SQLiteStore, index: Flaky) -> None:
    process = await Process(store, index, retry_interval=0.01).start()
    await asyncio.sleep(0.05)
    await process.outbox.stop()
    await process.outbox.stop()


class ClaimsTheOutbox:
    @hookimpl
    def register_resources(self) -> list[Resource]:
        return [Resource(name=OUTBOX, schema=Schema)]


async def test_no_resource_may_take_the_outbox_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=OUTBOX):
        await Restplug.configure(isolated_environ(tmp_path), [ClaimsTheOutbox()])
