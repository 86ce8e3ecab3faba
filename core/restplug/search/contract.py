"""The contract every search index passes: a pytest suite a search plugin imports and runs.

The core hands an index each searchable document's text and asks it for ids, best first (the
:class:`~restplug.search.protocol.SearchIndex` protocol).  What users notice is encoded here
once, so the builtin SQLite FTS5 index and every plugin are held to the same cases: words match
as prefixes (type-ahead), without case or diacritics, every word must match; field weights
decide the order; list fields and dotted paths are searched; integer and string ids stay apart;
user text is never query syntax; a rebuild swaps the index at once, answering from the old one
until it is complete; documents survive closing and opening.  And what the core relies on under
load and in outages: concurrent writes all land; a call cut short by the core's deadline
(``asyncio.timeout``) leaves the index answering; an index that cannot be reached raises
:class:`~restplug.errors.BackendUnavailable` at once, never hangs.

Use it from a plugin's tests (``pip install restplug[testing]``; the cases are marked for
pytest-asyncio, so they run in its strict and auto modes alike)::

    import pytest
    from restplug.testing import SearchIndexContract

    class TestMyIndex(SearchIndexContract):
        @pytest.fixture
        def make_index(self, tmp_path):
            # each call: a new, not yet opened index over the same storage
            return lambda: MyIndex(f"myindex:///{tmp_path}/index")

An index whose server can be unreachable overrides ``unavailable_index`` too (by default, an
index opened and closed again), for instance with one pointed at a closed port.

This module imports pytest: import it from tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from restplug.errors import BackendUnavailable
from restplug.kits import DEADLINES, fails_within
from restplug.search.protocol import SearchIndex

COLLECTION = "things"
FIELDS = {"name": 4.0, "description": 1.0, "makers": 2.0}
# Text no document below contains, for cases that need one miss.
NOWHERE = "zyxxyzzy"


def thing(name: str, description: str = "", makers: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "description": description, "makers": makers or []}


async def stream(
    documents: Mapping[Any, Mapping[str, Any]], pause: asyncio.Event | None = None
) -> AsyncIterator[tuple[Any, Mapping[str, Any]]]:
    """The documents as a rebuild reads them from the store; with ``pause``, waits for it
    halfway."""
    for n, item in enumerate(documents.items()):
        if pause is not None and n == len(documents) // 2:
            await pause.wait()
        yield item


class SearchIndexContract:
    """Subclass it as ``Test...`` and provide the ``make_index`` fixture."""

    pytestmark = pytest.mark.asyncio
    #: Seconds an unreachable index may take to say so: far above any connect timeout, far
    #: below "hangs".
    unavailable_within: ClassVar[float] = 10.0

    @pytest.fixture
    def make_index(self) -> Callable[[], SearchIndex]:
        raise NotImplementedError("a SearchIndexContract subclass provides the make_index fixture")

    @pytest_asyncio.fixture
    async def index(self, make_index: Callable[[], SearchIndex]) -> AsyncIterator[Any]:
        """An open index with the collection ``things`` prepared."""
        index = make_index()
        await index.open()
        try:
            await index.prepare(COLLECTION, FIELDS)
            yield index
        finally:
            await index.close()

    @pytest_asyncio.fixture
    async def unavailable_index(
        self, make_index: Callable[[], SearchIndex]
    ) -> AsyncIterator[SearchIndex]:
        """An index that cannot be reached: by default one opened, prepared and closed."""
        index = make_index()
        await index.open()
        await index.prepare(COLLECTION, FIELDS)
        await index.close()
        yield index

    async def test_implements_the_protocol(self, make_index: Callable[[], SearchIndex]) -> None:
        assert isinstance(make_index(), SearchIndex)

    async def test_ping(self, index: Any) -> None:
        await index.ping()

    # -- matching -------------------------------------------------------------------------

    async def test_words_match_as_prefixes(self, index: Any) -> None:
        await add(index, {1: thing("The Witcher 3: Wild Hunt"), 2: thing("Wild Hearts")})
        assert await ids(index, "witch") == [1]
        assert sorted(await ids(index, "wild")) == [1, 2]
        assert await ids(index, "wild hu") == [1]
        assert await ids(index, NOWHERE) == []

    async def test_every_word_must_match(self, index: Any) -> None:
        await add(index, {1: thing("Dark Souls"), 2: thing("Dark Forest"), 3: thing("Souls")})
        assert await ids(index, "dark souls") == [1]
        assert sorted(await ids(index, "souls")) == [1, 3]

    async def test_case_and_diacritics_fold_both_ways(self, index: Any) -> None:
        await add(index, {1: thing("Pokémon Café"), 2: thing("CAFE RACER")})
        assert await ids(index, "pokemon") == [1]
        assert await ids(index, "POKÉMON") == [1]
        assert sorted(await ids(index, "café")) == [1, 2]

    async def test_heavier_fields_rank_first_and_scores_descend(self, index: Any) -> None:
        await add(
            index,
            {
                1: thing("Harbor Lights", "A calm game."),
                2: thing("Calm", "Set in a harbor town."),
                3: thing("Lights Out", makers=["Harbor Studio"]),
            },
        )
        found = await index.search(COLLECTION, "harbor", 10)
        assert [id for id, _ in found] == [1, 3, 2]  # name 4, makers 2, description 1
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)

    async def test_list_fields_and_dotted_paths_are_searched(self, index: Any) -> None:
        await add(index, {1: thing("Cyberpunk", makers=["Red Moon Studios", "CD Projekt"])})
        assert await ids(index, "projekt") == [1]
        await index.prepare("credits", {"staff.name": 1.0, "year": 1.0})
        staff = {"staff": [{"name": "Ada"}, {"name": "Linus"}], "year": 1991}
        await index.upsert("credits", "c", staff)
        assert await ids(index, "linus 1991", "credits") == ["c"]

    async def test_int_and_string_ids_stay_apart(self, index: Any) -> None:
        await add(index, {1: thing("Portal"), "1": thing("Portal Knights"), "a": thing("Portal")})
        assert sorted(await ids(index, "portal"), key=repr) == sorted([1, "1", "a"], key=repr)
        await index.delete(COLLECTION, 1)
        assert sorted(await ids(index, "portal")) == ["1", "a"]

    @pytest.mark.parametrize(
        "text", ['"', "*", "AND", "NEAR(", "-", ":", "witcher AND", 'wit"cher', "name:witcher",
                 "(witcher", "witcher OR NOT hunt", "'; DROP", "{}", "\\", "%_"],
    )  # fmt: skip
    async def test_user_text_is_never_query_syntax(self, index: Any, text: str) -> None:
        await add(index, {1: thing("The Witcher 3"), 2: thing("Near and Far", "AND OR NOT")})
        assert set(await ids(index, text)) <= {1, 2}
        assert await ids(index, "witcher") == [1]  # and the index is intact

    @pytest.mark.parametrize("text", ["", "   ", '"*-:()'])
    async def test_text_without_words_finds_nothing(self, index: Any, text: str) -> None:
        await add(index, {1: thing("Anything")})
        assert await index.search(COLLECTION, text, 10) == []

    async def test_limit(self, index: Any) -> None:
        await add(index, {n: thing(f"Tycoon {n}") for n in range(1, 21)})
        assert len(await index.search(COLLECTION, "tycoon", 5)) == 5
        assert await index.search(COLLECTION, "tycoon", 0) == []

    async def test_collections_are_apart(self, index: Any) -> None:
        await index.prepare("others", {"name": 1.0})
        await index.upsert("others", 1, {"name": "Elsewhere"})
        await add(index, {1: thing("Here")})
        assert await ids(index, "elsewhere") == []
        assert await ids(index, "elsewhere", "others") == [1]

    # -- writes ---------------------------------------------------------------------------

    async def test_upsert_replaces_and_delete_removes(self, index: Any) -> None:
        await add(index, {1: thing("Stardew Valley"), 2: thing("Valley of Kings")})
        await index.upsert(COLLECTION, 1, thing("Moonlight Farm"))
        assert await ids(index, "stardew") == []
        assert await ids(index, "moonlight") == [1]
        await index.delete(COLLECTION, 2)
        await index.delete(COLLECTION, 2)  # absent: not an error
        await index.delete(COLLECTION, 99)
        assert await ids(index, "valley") == []
        await index.upsert(COLLECTION, 2, thing("Valley of Kings"))  # back after a delete
        assert await ids(index, "valley") == [2]

    async def test_prepare_twice_keeps_documents(self, index: Any) -> None:
        await add(index, {1: thing("Kept")})
        await index.prepare(COLLECTION, FIELDS)
        assert await ids(index, "kept") == [1]

    async def test_documents_survive_close_and_open(
        self, make_index: Callable[[], SearchIndex]
    ) -> None:
        first = make_index()
        await first.open()
        await first.prepare(COLLECTION, FIELDS)
        await first.upsert(COLLECTION, 1, thing("Durable"))
        await first.close()
        second = make_index()
        await second.open()
        try:
            await second.prepare(COLLECTION, FIELDS)
            assert await ids(second, "durable") == [1]
        finally:
            await second.close()

    async def test_rebuild_replaces_the_index(self, index: Any) -> None:
        await add(index, {1: thing("Old Harbor"), 2: thing("Old Mill")})
        assert await index.rebuild(COLLECTION, stream({3: thing("New Town")})) == 1
        assert await ids(index, "old") == []
        assert await ids(index, "new town") == [3]
        assert await index.rebuild(COLLECTION, stream({})) == 0
        assert await ids(index, "new") == []

    async def test_searches_answer_from_the_old_index_during_a_rebuild(self, index: Any) -> None:
        await add(index, {1: thing("Old Harbor"), 2: thing("Old Mill")})
        new = {n: thing(f"New Town {n}") for n in range(1, 101)}
        halfway = asyncio.Event()
        rebuild = asyncio.create_task(index.rebuild(COLLECTION, stream(new, halfway)))
        try:
            await asyncio.sleep(0.05)  # the rebuild has read half of the documents
            assert sorted(await ids(index, "old")) == [1, 2]
            assert await ids(index, "town") == []
        finally:
            halfway.set()
            assert await rebuild == 100
        assert await ids(index, "old") == []
        assert len(await index.search(COLLECTION, "town", 200)) == 100

    async def test_a_failed_rebuild_keeps_the_old_index(self, index: Any) -> None:
        await add(index, {1: thing("Old Harbor")})

        async def broken() -> AsyncIterator[tuple[Any, Mapping[str, Any]]]:
            yield 2, thing("New Harbor")
            raise BackendUnavailable("the store went away")

        with pytest.raises(BackendUnavailable):
            await index.rebuild(COLLECTION, broken())
        assert await ids(index, "harbor") == [1]

    # -- concurrency, deadlines, outages --------------------------------------------------

    async def test_concurrent_writes_all_land(self, index: Any) -> None:
        await asyncio.gather(*(index.upsert(COLLECTION, n, thing(f"Racer {n}")) for n in range(50)))
        assert sorted(await ids(index, "racer")) == list(range(50))
        await asyncio.gather(*(index.delete(COLLECTION, n) for n in range(0, 50, 2)))
        assert sorted(await ids(index, "racer")) == list(range(1, 50, 2))

    async def test_calls_cut_short_by_a_deadline_leave_the_index_whole(self, index: Any) -> None:
        # The core bounds index calls with asyncio.timeout; a call cancelled anywhere must
        # leave no lost connection or stuck lock behind.
        for deadline in DEADLINES:
            calls = [
                call
                for n in range(10)
                for call in (
                    index.upsert(COLLECTION, n, thing(f"Cut {n}")),
                    index.search(COLLECTION, "cut", 10),
                )
            ]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline):
                    await asyncio.gather(*calls)
        await index.ping()
        await index.upsert(COLLECTION, "after", thing("Afterwards"))
        assert await ids(index, "afterwards") == ["after"]
        assert set(await ids(index, "cut")) <= set(range(10))

    async def test_an_unreachable_index_says_so_at_once(self, unavailable_index: Any) -> None:
        index = unavailable_index
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "ping": index.ping,
            "prepare": lambda: index.prepare(COLLECTION, FIELDS),
            "upsert": lambda: index.upsert(COLLECTION, 1, thing("x")),
            "delete": lambda: index.delete(COLLECTION, 1),
            "search": lambda: index.search(COLLECTION, "x", 10),
            "rebuild": lambda: index.rebuild(COLLECTION, stream({1: thing("x")})),
        }
        for name, call in calls.items():
            await fails_within(call, BackendUnavailable, self.unavailable_within, name)


async def add(index: SearchIndex, documents: Mapping[Any, Mapping[str, Any]]) -> None:
    for id, document in documents.items():
        await index.upsert(COLLECTION, id, document)


async def ids(index: SearchIndex, text: str, collection: str = COLLECTION) -> list[Any]:
    return [id for id, _ in await index.search(collection, text, 100)]
