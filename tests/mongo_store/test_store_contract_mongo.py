"""The store contract on the MongoDB store, on a real server or the stand-in (see conftest)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mongo_targets import REAL_URL, MongoTarget
from mongomock_reference import MONGOMOCK_DEVIATIONS

from restplug import DocumentStore
from restplug.testing import StoreContract


class TestMongoStoreContract(StoreContract):
    # mongomock's own deviations from MongoDB, as for the reference store built on it.
    known_deviations = {} if REAL_URL else MONGOMOCK_DEVIATIONS

    @pytest.fixture
    def make_store(self, mongo: MongoTarget) -> Callable[[], DocumentStore]:
        return mongo.store


def test_the_store_satisfies_the_protocol(mongo: MongoTarget) -> None:
    assert isinstance(mongo.store(), DocumentStore)
