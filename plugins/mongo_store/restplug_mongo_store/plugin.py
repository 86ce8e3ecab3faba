"""The plugin ``mongo_store``: registers :class:`MongoStore` for the ``mongodb`` and
``mongodb+srv`` schemes."""

from __future__ import annotations

from restplug import Backend, Settings, hookimpl
from restplug_mongo_store.store import ClientFactory, MongoStore, default_client


def build(
    url: str, settings: Settings, client_factory: ClientFactory = default_client
) -> MongoStore:
    """The store for ``RESTPLUG_STORE_URL``; ``client_factory`` is how tests swap the client
    (see :class:`MongoStore`)."""
    return MongoStore(url, timeout_ms=settings.query_timeout_ms, client_factory=client_factory)


@hookimpl
def register_backends() -> list[Backend]:
    return [Backend("store", ("mongodb", "mongodb+srv"), build)]
