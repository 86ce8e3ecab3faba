"""The search contract, run against the builtin SQLite FTS5 index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from restplug.search.sqlite import SQLiteSearchIndex
from restplug.testing import SearchIndexContract


class TestSQLiteSearchIndexContract(SearchIndexContract):
    @pytest.fixture
    def make_index(self, tmp_path: Path) -> Callable[[], SQLiteSearchIndex]:
        return lambda: SQLiteSearchIndex(f"sqlite:///{tmp_path}/search.db")
