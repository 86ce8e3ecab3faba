"""Where the MongoDB store's tests run: a real server when ``RESTPLUG_TEST_MONGO_URL`` is set,
else the stand-in of ``mongomock_async.py`` (mongomock behind PyMongo's async surface; not a
MongoDB server)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mongomock_async import StandInServer

from restplug import Backend, Settings, hookimpl
from restplug_mongo_store import ClientFactory, MongoStore
from restplug_mongo_store.plugin import build

REAL_URL = os.environ.get("RESTPLUG_TEST_MONGO_URL", "")
TARGET = "a real MongoDB server" if REAL_URL else "the mongomock stand-in"


@dataclass
class MongoTarget:
    """A database to run against; ``stand_in`` is None on a real server."""

    url: str
    client_factory: ClientFactory
    stand_in: StandInServer | None

    def store(self, **options: Any) -> MongoStore:
        return MongoStore(self.url, client_factory=self.client_factory, **options)

    def plugins(self) -> list[object]:
        """On the stand-in, the plugin's own factory given the stand-in's client, in place of
        ``mongo_store`` (disabled by :meth:`env`); nothing to add on a real server."""
        if self.stand_in is None:
            return []
        client_factory = self.client_factory

        class StandInBackend:
            @hookimpl
            def register_backends(self) -> list[Backend]:
                def factory(url: str, settings: Settings) -> MongoStore:
                    return build(url, settings, client_factory=client_factory)

                return [Backend("store", ("mongodb", "mongodb+srv"), factory)]

        return [StandInBackend()]

    def env(self) -> dict[str, str]:
        env = {"RESTPLUG_STORE_URL": self.url}
        if self.stand_in is not None:
            env["RESTPLUG_DISABLE_PLUGINS"] = "mongo_store"
        return env


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()
