"""restplug-mongo-store: the document store for ``mongodb://`` and ``mongodb+srv://`` URLs."""

from restplug_mongo_store.store import ClientFactory, MongoStore

__all__ = ["ClientFactory", "MongoStore"]
