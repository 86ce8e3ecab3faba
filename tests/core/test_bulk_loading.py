"""``restplug.bulk_loading``: the cycle collector held back while it runs, and given back as it
was once the last of overlapping uses ends."""

from __future__ import annotations

import asyncio
import gc

from restplug import bulk_loading
from restplug.loading import BULK_GC_THRESHOLD


async def test_overlapping_uses_give_the_thresholds_back_when_the_last_ends() -> None:
    before = gc.get_threshold()
    first_in, second_out = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with bulk_loading():
            first_in.set()
            await second_out.wait()
            assert gc.get_threshold() == BULK_GC_THRESHOLD  # the other ended meanwhile

    async def second() -> None:
        await first_in.wait()
        with bulk_loading(), bulk_loading():
            assert gc.get_threshold() == BULK_GC_THRESHOLD
        second_out.set()

    await asyncio.gather(first(), second())
    assert gc.get_threshold() == before


def test_an_error_inside_gives_the_thresholds_back() -> None:
    before = gc.get_threshold()
    try:
        with bulk_loading():
            raise RuntimeError("a failed load")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
