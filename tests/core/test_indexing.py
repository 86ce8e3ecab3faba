"""The Indexer with the real SQLite store and index: changes reach the index, an index outage
loses nothing, pending changes survive a restart, a rebuild restores a wiped index."""

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

from restplug.errors import BackendUnavailable
from restplug.indexing import OUTBOX, Indexer
from restplug.resources import Resource
from restplug.search_sqlite import SQLiteSearchIndex
from restplug.stores.sqlite import SQLiteStore

APPS = Resource(name="apps", schema=Schema, search_fields={"name": 4.0, "short_description": 1.0})
TASKS = Resource(name="tasks", schema=Schema)  # nothing to search
RESOURCES = {"apps": APPS, "tasks": TASKS}
SECRET = "confidential-words"  # document content that must never reach a log


class Flaky:
    """The real index, except while ``down`` (every call fails as in an outage) or ``hung``
    (every call waits forever), and for upserts of ``refused`` ids.  ``calls`` counts the
    calls by method, failed ones included; ``before_upsert`` runs first in each upsert."""

    def __init__(self, index: SQLiteSearchIndex) -> None:
        self.index = index
        self.down = False
        self.hung = False
        self.calls: Counter[str] = Counter()
        self.refused: set[Any] = set()  # ids whose upsert fails as a bug would
        self.before_upsert: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.index, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    await store.prepare("apps", [])
    yield store
    await store.close()


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[Flaky]:
    index = SQLiteSearchIndex(f"sqlite:///{tmp_path}/search.db")
    await index.open()
    yield Flaky(index)
    await index.close()


@pytest.fixture
async def indexer(store: SQLiteStore, index: Flaky) -> AsyncIterator[Indexer]:
    indexer = Indexer(store, index, RESOURCES, timeout=0.5, retry_interval=3600)  # type: ignore[arg-type]
    await indexer.start()
    yield indexer
    await indexer.stop()


async def write(indexer: Indexer, id: Any, name: str | None, resource: Resource = APPS) -> None:
    """Write to the store as the core does, then tell the indexer; ``None`` deletes."""
    store = indexer.store
    current = await store.get(resource.name, id)
    if name is None:
        await store.delete(resource.name, id)
        await indexer.changed(resource, id, None)
        return
    document = {"name": name, "short_description": f"{SECRET} about {name}"}
    if current is None:
        await store.insert(resource.name, id, document, "e")
    else:
        await store.replace(resource.name, id, document, "e")
    await indexer.changed(resource, id, document)


async def found(indexer: Indexer, text: str) -> list[Any]:
    return sorted((id for id, _ in await indexer.index.search("apps", text, 1000)), key=str)


async def test_changes_reach_the_index(indexer: Indexer) -> None:
    await write(indexer, 1, "Hollow Knight")
    await write(indexer, "x", "Hollow Moon")
    assert await found(indexer, "hollow") == [1, "x"]
    await write(indexer, 1, "Silksong")
    assert await found(indexer, "hollow") == ["x"]
    await write(indexer, "x", None)
    assert await found(indexer, "hollow") == []
    assert await found(indexer, "silk") == [1]
    await indexer.store.prepare("tasks", [])
    await write(indexer, 7, "Not searchable", TASKS)  # no search fields: ignored
    assert await indexer.pending() == 0


async def test_an_outage_fails_no_change_and_loses_none(
    indexer: Indexer, index: Flaky, caplog: pytest.LogCaptureFixture
) -> None:
    await write(indexer, 1, "Stardew Valley")
    await write(indexer, 2, "Valley of Kings")
    index.down = True
    with caplog.at_level(logging.WARNING, "restplug.indexing"):
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
    indexer: Indexer, index: Flaky
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
    indexer = Indexer(store, index, RESOURCES, timeout=0.05, retry_interval=3600)  # type: ignore[arg-type]
    await indexer.start()
    index.hung = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    await write(indexer, 1, "Slow")
    assert loop.time() - start < 1
    assert await indexer.pending() == 1
    index.hung = False
    assert await indexer.retry_pending() == 1
    assert await found(indexer, "slow") == [1]
    await indexer.stop()


async def test_a_cancelled_caller_still_gets_its_change_recorded(
    store: SQLiteStore, index: Flaky
) -> None:
    indexer = Indexer(store, index, RESOURCES, timeout=0.05, retry_interval=3600)  # type: ignore[arg-type]
    await indexer.start()
    index.hung = True
    await store.insert("apps", 1, {"name": "Abandoned"}, "e")
    request = asyncio.create_task(indexer.changed(APPS, 1, {"name": "Abandoned"}))
    await asyncio.sleep(0.01)
    request.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await request
    await indexer.stop()  # waits for the change in flight
    assert await indexer.pending() == 1


async def test_a_failure_in_the_middle_of_a_drain_keeps_the_rest(
    indexer: Indexer, index: Flaky
) -> None:
    index.down = True
    for id in (1, 2, 3):
        await write(indexer, id, f"Game {id}")
    index.down = False

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
    indexer: Indexer, index: Flaky
) -> None:
    index.down = True
    for id in (1, 2, 3):
        await write(indexer, id, f"Game {id}")
    index.down, index.refused = False, {2}
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
    """Another process records a new failure for a document while this one retries it: the
    retry indexed the older version, so the entry must stay for the next round."""
    this = Indexer(store, index, RESOURCES, retry_interval=3600)  # type: ignore[arg-type]
    other_index = Flaky(index.index)
    other = Indexer(store, other_index, RESOURCES, retry_interval=3600)  # type: ignore[arg-type]
    await this.start()
    await other.start()
    other_index.down = True
    await write(other, 1, "Version Two")
    assert await this.pending() == 1

    async def meanwhile_in_the_other_process() -> None:
        index.before_upsert = None
        await write(other, 1, "Version Three")  # its index is still down: recorded again

    index.before_upsert = meanwhile_in_the_other_process
    assert await this.retry_pending() == 0
    assert await found(this, "two") == [1]  # what the retry had read
    assert await this.pending() == 1
    assert await this.retry_pending() == 1
    assert (await found(this, "three"), await found(this, "two")) == ([1], [])
    await this.stop()
    await other.stop()


async def test_pending_changes_survive_a_restart(tmp_path: Path, index: Flaky) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    indexer = Indexer(store, index, RESOURCES)  # type: ignore[arg-type]
    await indexer.start()
    index.down = True
    await write(indexer, 1, "Before The Crash")
    await write(indexer, "b", "Also Before")
    await indexer.stop()
    await store.close()

    index.down = False
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    restarted = Indexer(store, index, RESOURCES)  # type: ignore[arg-type]
    await restarted.start()
    assert await restarted.pending() == 2
    assert await restarted.retry_pending() == 2
    assert await found(restarted, "before") == [1, "b"]
    await restarted.stop()
    await store.close()


async def test_the_retry_task_backs_off_while_failing_then_catches_up(
    store: SQLiteStore, index: Flaky
) -> None:
    indexer = Indexer(store, index, RESOURCES, retry_interval=0.01, max_retry_interval=0.08)  # type: ignore[arg-type]
    await indexer.start()
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
    await indexer.stop()


async def test_an_index_down_at_start_is_prepared_later(store: SQLiteStore, index: Flaky) -> None:
    index.down = True
    indexer = Indexer(store, index, RESOURCES)  # type: ignore[arg-type]
    await indexer.start()  # does not fail: writes must go on
    await write(indexer, 1, "Early Bird")
    assert await indexer.pending() == 1
    index.down = False
    with pytest.raises(BackendUnavailable):  # never prepared so far
        await index.search("apps", "early", 10)
    assert await indexer.retry_pending() == 1
    assert await found(indexer, "early") == [1]
    await indexer.stop()


async def test_rebuild_restores_a_wiped_index_with_progress(
    tmp_path: Path, indexer: Indexer, index: Flaky
) -> None:
    ids: list[Any] = [*range(1, 1101), "s1", "s2"]  # three pages of numbers, then strings
    for id in ids:
        await indexer.store.insert("apps", id, {"name": f"Tycoon {id}"}, "e")
    index.down = True
    await write(indexer, 5, "Renamed Tycoon")  # pending: the rebuild settles it
    await indexer.changed(TASKS, 1, {})  # not searchable: no entry
    await indexer.store.insert(OUTBOX, "other:1", {"collection": "other", "id": 1}, "e")
    index.down = False

    wiped = SQLiteSearchIndex(f"sqlite:///{tmp_path}/wiped.db")
    await wiped.open()
    indexer.index = wiped
    bar = tqdm(total=len(ids), file=io.StringIO())
    assert await indexer.rebuild(APPS, bar) == len(ids)
    assert bar.n == len(ids)
    assert len(await wiped.search("apps", "tycoon", 2000)) == len(ids)
    assert [id for id, _ in await wiped.search("apps", "renamed", 10)] == [5]
    assert [id for id, _ in await wiped.search("apps", "s2", 10)] == ["s2"]
    assert await indexer.pending() == 1  # only the other collection's entry is left
    with pytest.raises(ValueError):
        await indexer.rebuild(TASKS)
    await wiped.close()


async def test_stop_is_clean_and_idempotent(store: SQLiteStore, index: Flaky) -> None:
    indexer = Indexer(store, index, RESOURCES, retry_interval=0.01)  # type: ignore[arg-type]
    await indexer.start()
    await asyncio.sleep(0.05)
    await indexer.stop()
    await indexer.stop()


def test_no_resource_may_take_the_outbox_name(store: SQLiteStore, index: Flaky) -> None:
    clash = Resource(name=OUTBOX, schema=Schema)
    with pytest.raises(ValueError):
        Indexer(store, index, {OUTBOX: clash})  # type: ignore[arg-type]
