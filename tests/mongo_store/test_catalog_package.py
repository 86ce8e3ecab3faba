"""Every case of tests/catalog/test_package.py, on the MongoDB store (see conftest: a real
server when ``RESTPLUG_TEST_MONGO_URL`` is set, else the mongomock stand-in)."""

from catalog.test_package import *  # noqa: F403
