"""Bulk work in one process: the cycle collector held back while many documents are in flight.

A load (``upsert_all``, ``restplug demo-data``) or a package keeps thousands of documents in
memory at once, each a tree of hundreds of dicts, lists and floats.  At Python's default
thresholds the collector's passes over them took a seventh of a 100,000-app load and of a
package, and found nothing: documents hold no cycles.  Inside :func:`bulk_loading` it runs
rarely; the thresholds come back when the last use ends, however the uses nest or overlap
(concurrent requests each entering it).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: The cycle collector's thresholds inside :func:`bulk_loading`.
BULK_GC_THRESHOLD = (50_000, 20, 100)

_lock = threading.Lock()
_depth = 0
_before: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def bulk_loading() -> Iterator[None]:
    """Run the block with the cycle collector at :data:`BULK_GC_THRESHOLD`."""
    global _depth, _before
    with _lock:
        if _depth == 0:
            _before = gc.get_threshold()
            gc.set_threshold(*BULK_GC_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_before)


__all__ = ["BULK_GC_THRESHOLD", "bulk_loading"]
