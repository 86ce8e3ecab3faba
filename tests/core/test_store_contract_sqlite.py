"""The store contract, run against the SQLite store and against the mongomock reference.

The reference passing the same suite is what shows the suite's expected answers are MongoDB's
(less the deviations mongomock is known for, which are strict xfails there).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mongomock
import pytest
from mongomock_reference import MONGOMOCK_DEVIATIONS, MongomockStore

from restplug.stores.contract import StoreContract
from restplug.stores.protocol import DocumentStore
from restplug.stores.sqlite import SQLiteStore


class TestSQLiteStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], DocumentStore]:
        return lambda: SQLiteStore(f"sqlite:///{tmp_path}/contract.db")


class TestMongomockReferenceContract(StoreContract):
    known_deviations = MONGOMOCK_DEVIATIONS

    @pytest.fixture
    def make_store(self) -> Callable[[], DocumentStore]:
        client = mongomock.MongoClient()
        return lambda: MongomockStore(client)


def test_both_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(SQLiteStore(f"sqlite:///{tmp_path}/x.db"), DocumentStore)
    assert isinstance(MongomockStore(), DocumentStore)
