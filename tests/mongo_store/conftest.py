"""Where the MongoDB store's tests run: a real server when ``RESTPLUG_TEST_MONGO_URL`` is set
(a database of its own per test, dropped afterwards), else the stand-in of
``mongomock_async.py`` (mongomock behind PyMongo's async surface; not a MongoDB server)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from mongo_targets import REAL_URL, MongoTarget, with_database
from mongomock_async import StandInServer
from pymongo import AsyncMongoClient

from restplug.app import Restplug
from restplug.testing import ClientFactory as AppFactory
from restplug.testing import isolated_environ


@pytest.fixture
async def mongo() -> AsyncIterator[MongoTarget]:
    if not REAL_URL:
        server = StandInServer()
        yield MongoTarget("mongodb://stand-in/restplug", server.client, server)
        return
    name = f"restplug_test_{uuid.uuid4().hex[:12]}"
    yield MongoTarget(with_database(REAL_URL, name), AsyncMongoClient, None)
    client: AsyncMongoClient[Any] = AsyncMongoClient(REAL_URL)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
def client_on(tmp_path: Path, aiohttp_client: Any) -> Callable[..., Awaitable[TestClient]]:
    """``await client_on(target, env={...}, plugins=[...])``: a test client of an app whose
    store is the MongoDB store on ``target``."""

    async def make(
        target: MongoTarget, env: Mapping[str, str] | None = None, plugins: Iterable[object] = ()
    ) -> TestClient:
        environ = isolated_environ(tmp_path, {**target.env(), **(env or {})})
        restplug = await Restplug.configure(environ, [*target.plugins(), *plugins])
        return await aiohttp_client(restplug.web_app())

    return make


@pytest.fixture
def restplug_client(
    client_on: Callable[..., Awaitable[TestClient]], mongo: MongoTarget
) -> AppFactory:
    """``restplug.testing``'s fixture, on the MongoDB store: the catalogue's tests run unchanged
    (every client of one test shares the database, as processes of one deployment do)."""
    return functools.partial(client_on, mongo)
