"""The embedded search index beyond the search contract (tests/core/test_search_contract_sqlite.py):
its ranking, prefixes, diacritics, rebuilds and hostile text in detail, its tables and files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from restplug.errors import BackendUnavailable
from restplug.search.protocol import SearchIndex
from restplug.search.sqlite import SQLiteSearchIndex, register_backends

# The catalogue's fields and weights (plugins/catalog), without depending on that plugin.
FIELDS = {"name": 4.0, "short_description": 1.0, "developers": 2.0, "publishers": 1.5}


def app(name: str, description: str = "", developers: Iterable[str] = ()) -> dict[str, Any]:
    return {"name": name, "short_description": description, "developers": list(developers)}


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[SQLiteSearchIndex]:
    index = SQLiteSearchIndex(f"sqlite:///{tmp_path}/search.db")
    await index.open()
    await index.prepare("apps", FIELDS)
    yield index
    await index.close()


async def ids(index: SQLiteSearchIndex, text: str, collection: str = "apps") -> list[Any]:
    return [id for id, _ in await index.search(collection, text, 100)]


async def add(index: SQLiteSearchIndex, documents: Mapping[Any, dict[str, Any]]) -> None:
    for id, document in documents.items():
        await index.upsert("apps", id, document)


async def stream(
    documents: Mapping[Any, dict[str, Any]], pause: asyncio.Event | None = None
) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """The documents as a rebuild reads them; with ``pause``, waits for it halfway."""
    for n, (id, document) in enumerate(documents.items()):
        if pause is not None and n == len(documents) // 2:
            await pause.wait()
        yield id, document


def test_is_a_search_index(tmp_path: Path) -> None:
    assert isinstance(SQLiteSearchIndex(f"sqlite:///{tmp_path}/s.db"), SearchIndex)


async def test_the_search_file_holds_the_index_s_tables_alone(
    index: SQLiteSearchIndex, tmp_path: Path
) -> None:
    """The index opens its file itself, not through the store: no store table in it."""
    await add(index, {1: app("Hades"), "x": app("Celeste")})
    await index.rebuild("apps", stream({1: app("Hades")}))
    with contextlib.closing(sqlite3.connect(tmp_path / "search.db")) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "apps.fts" in tables and "apps.ids" in tables
    assert all(name.startswith(("apps.", "sqlite_autoindex_apps.")) for name in tables), tables


async def test_exact_name_match_ranks_above_a_description_mention(
    index: SQLiteSearchIndex,
) -> None:
    await add(
        index,
        {
            1: app("Celeste Tales", "A game about a mountain."),
            2: app("Mountain Climber", "Inspired by Celeste, a hard platformer."),
            3: app("Celeste", "A hard platformer."),
            4: app("Unrelated", "Nothing to see."),
        },
    )
    found = await index.search("apps", "celeste", 10)
    assert [id for id, _ in found] == [3, 1, 2]
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


async def test_prefixes_match_as_you_type(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("The Witcher 3: Wild Hunt"), 2: app("Wild Hearts")})
    assert await ids(index, "witch") == [1]
    assert sorted(await ids(index, "wi")) == [1, 2]
    assert await ids(index, "w") != []
    assert await ids(index, "wild hu") == [1]
    assert await ids(index, "witcher 3") == [1]


async def test_diacritics_and_case_fold_both_ways(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Pokémon Café"), 2: app("CAFE RACER"), 3: app("Zürich Nights")})
    assert await ids(index, "pokemon") == [1]
    assert await ids(index, "POKÉMON") == [1]
    assert await ids(index, "Poke\u0301mon") == [1]  # decomposed: e + combining acute
    assert sorted(await ids(index, "cafe")) == [1, 2]
    assert sorted(await ids(index, "café")) == [1, 2]
    assert await ids(index, "zurich") == [3]


async def test_weights_decide_the_order(index: SQLiteSearchIndex) -> None:
    documents = {1: app("Harbor", "A calm game."), 2: app("Calm", "Set in a harbor town.")}
    await add(index, documents)
    assert await ids(index, "harbor") == [1, 2]
    # The same columns with other weights: the table stays, the weights apply at once.
    await index.prepare("apps", {**FIELDS, "name": 0.1, "short_description": 10.0})
    assert await ids(index, "harbor") == [2, 1]


async def test_list_and_nested_fields(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Cyberpunk 2077", developers=["Red Moon Studios", "CD Projekt"])})
    await index.upsert("apps", 2, {"name": "Other", "publishers": ["Projektor Media"]})
    assert sorted(await ids(index, "projekt")) == [1, 2]
    assert await ids(index, "moon studios") == [1]
    await index.prepare("credits", {"staff.name": 1.0, "year": 1.0})
    await index.upsert(
        "credits", "c", {"staff": [{"name": "Ada"}, {"name": "Linus"}], "year": 1991}
    )
    assert await ids(index, "linus 1991", collection="credits") == ["c"]


async def test_int_and_str_ids_stay_apart(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Portal"), "1": app("Portal Knights"), "abc": app("Portal Maker")})
    assert sorted(await ids(index, "portal"), key=str) == [1, "1", "abc"]
    await index.delete("apps", 1)
    assert sorted(await ids(index, "portal")) == ["1", "abc"]
    with pytest.raises(TypeError):
        await index.upsert("apps", 1.5, app("Float"))


@pytest.mark.parametrize(
    "text",
    ['"', "*", "AND", "NEAR(", "-", ":", "witcher AND", 'wit"cher', "name:witcher", "NEAR(a b)",
     "-witcher", "witcher*", "(witcher", "^witcher", "witcher OR NOT hunt", "{name}: x", "'; DROP"],
)  # fmt: skip
async def test_query_syntax_in_user_text_is_harmless(index: SQLiteSearchIndex, text: str) -> None:
    await add(index, {1: app("The Witcher 3"), 2: app("Near and Far", "AND OR NOT")})
    found = await ids(index, text)
    assert set(found) <= {1, 2}
    assert await ids(index, "witcher") == [1]  # and the index is intact


@pytest.mark.parametrize("text", ["", "   ", '"*-:()', "___"])
async def test_text_without_words_finds_nothing(index: SQLiteSearchIndex, text: str) -> None:
    await add(index, {1: app("Anything")})
    assert await index.search("apps", text, 10) == []


async def test_special_characters_split_words(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Counter-Strike 2"), 2: app("Director's Cut")})
    assert await ids(index, "counter-strike") == [1]
    assert await ids(index, "strike") == [1]
    assert await ids(index, "director's") == [2]


async def test_rebuild_swaps_atomically(index: SQLiteSearchIndex, tmp_path: Path) -> None:
    await add(index, {1: app("Old Harbor"), 2: app("Old Mill")})
    new = {n: app(f"New Town {n}") for n in range(1, 1201)}  # several batches
    pause = asyncio.Event()
    rebuild = asyncio.create_task(index.rebuild("apps", stream(new, pause)))
    while not _tables(tmp_path, ".new."):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the first batches are in the new table by now
    # Searches keep answering from the old table while the new one fills.
    assert sorted(await ids(index, "old")) == [1, 2]
    assert await ids(index, "new town") == []
    pause.set()
    assert await rebuild == 1200
    assert await ids(index, "old") == []
    assert len(await index.search("apps", "new town", 2000)) == 1200
    assert not _tables(tmp_path, ".new.")


async def test_changes_during_a_rebuild_survive_it(index: SQLiteSearchIndex) -> None:
    """The rebuild's stream was read before these changes: their versions win."""
    await add(index, {1: app("Alpha"), 2: app("Beta"), 3: app("Gamma")})
    stale = {1: app("Alpha"), 2: app("Beta"), 3: app("Gamma"), 4: app("Delta")}
    pause = asyncio.Event()
    rebuild = asyncio.create_task(index.rebuild("apps", stream(stale, pause)))
    await asyncio.sleep(0.05)
    await index.upsert("apps", 3, app("Gamma Prime"))  # not yet streamed: stale copy follows
    await index.delete("apps", 4)  # deleted before the stream reaches it
    await index.upsert("apps", 5, app("Epsilon"))  # created after the stream's read
    pause.set()
    assert await rebuild == 4
    assert await ids(index, "prime") == [3]
    assert await ids(index, "delta") == []
    assert await ids(index, "epsilon") == [5]
    assert [await ids(index, name) for name in ("alpha", "beta", "gamma")] == [[1], [2], [3]]


async def test_many_changes_apply_in_order_in_one_call(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Alpha"), 2: app("Beta")})
    changes = [(1, None), (2, app("Beta Prime")), ("3", app("Gamma")), ("3", app("Delta"))]
    await index.update_many("apps", changes)
    assert await ids(index, "alpha") == []
    assert await ids(index, "prime") == [2]
    assert await ids(index, "gamma") == []
    assert await ids(index, "delta") == ["3"]


async def test_many_changes_during_a_rebuild_survive_it(index: SQLiteSearchIndex) -> None:
    await add(index, {1: app("Alpha"), 2: app("Beta")})
    pause = asyncio.Event()
    stale = {1: app("Alpha"), 2: app("Beta"), 3: app("Gamma")}
    rebuild = asyncio.create_task(index.rebuild("apps", stream(stale, pause)))
    await asyncio.sleep(0.05)
    await index.update_many("apps", [(2, app("Beta Prime")), (3, None), (4, app("Delta"))])
    pause.set()
    assert await rebuild == 3
    assert await ids(index, "prime") == [2]
    assert await ids(index, "gamma") == []
    assert await ids(index, "delta") == [4]


async def test_a_failed_rebuild_keeps_the_old_index(
    index: SQLiteSearchIndex, tmp_path: Path
) -> None:
    await add(index, {1: app("Old Harbor")})

    async def broken() -> AsyncIterator[tuple[Any, dict[str, Any]]]:
        yield 2, app("New Harbor")
        raise BackendUnavailable("the store went away")

    with pytest.raises(BackendUnavailable):
        await index.rebuild("apps", broken())
    assert await ids(index, "harbor") == [1]
    assert not _tables(tmp_path, ".new.")
    await index.upsert("apps", 3, app("Other Harbor"))  # no double write into a dead table
    assert await index.rebuild("apps", stream({4: app("Fresh")})) == 1
    assert await ids(index, "harbor") == []


async def test_changed_fields_empty_the_index(
    index: SQLiteSearchIndex, caplog: pytest.LogCaptureFixture
) -> None:
    await add(index, {1: app("Hades")})
    with caplog.at_level(logging.WARNING, "restplug.search"):
        await index.prepare("apps", {"name": 1.0, "tags": 1.0})
    assert "restplug reindex apps" in caplog.text
    assert await ids(index, "hades") == []
    await index.upsert("apps", 1, {"name": "Hades", "tags": ["roguelike"]})
    assert await ids(index, "roguelike") == [1]


async def test_unprepared_collection_is_unavailable(index: SQLiteSearchIndex) -> None:
    with pytest.raises(BackendUnavailable):
        await index.search("games", "x", 10)
    with pytest.raises(BackendUnavailable):
        await index.upsert("games", 1, {"name": "x"})


@pytest.mark.parametrize(
    "fields",
    [{}, {"_id": 1.0}, {"rank": 1.0}, {'na"me': 1.0}, {"name": 0.0}, {"a": 1, "A": 1}],
)
async def test_bad_fields_are_refused(index: SQLiteSearchIndex, fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        await index.prepare("other", fields)


async def test_a_closed_index_is_unavailable(index: SQLiteSearchIndex) -> None:
    await index.ping()
    await index.close()
    with pytest.raises(BackendUnavailable):
        await index.ping()
    with pytest.raises(BackendUnavailable):
        await index.upsert("apps", 1, app("x"))


async def test_builtin_plugin_builds_from_a_relative_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [backend] = register_backends()
    assert (backend.kind, backend.schemes) == ("search", ("sqlite",))
    index = backend.factory("sqlite:///var/deep/search.db", SimpleNamespace(query_timeout_ms=50))
    assert isinstance(index, SQLiteSearchIndex) and index.timeout_ms == 50
    await index.open()
    try:
        assert (tmp_path / "var" / "deep" / "search.db").is_file()
    finally:
        await index.close()


def _tables(folder: Path, part: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(folder / "search.db")) as db:
        rows = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    return [name for (name,) in rows if part in name]
