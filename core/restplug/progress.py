"""Progress bars for the commands that walk many documents (demo-data, reindex)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(total: int | None, description: str) -> tqdm:
    """A progress bar on stderr, so that stdout stays clean for data."""
    return tqdm(total=total, desc=description, unit=" docs", file=sys.stderr, dynamic_ncols=True)
