"""restplug's pytest plugin and contract kits, for restplug itself and for plugin authors.

Installed with ``pip install restplug[testing]`` (pytest, pytest-asyncio, pytest-aiohttp), it is
loaded by pytest's ``pytest11`` entry point: nothing to configure.  It works in both
``asyncio_mode`` settings of pytest-asyncio: in ``strict`` mode mark your async tests with
``@pytest.mark.asyncio`` (the contract kits mark their own); in ``auto`` mode nothing is needed.

- ``restplug_client(env={...}, plugins=[...])``: a fixture building a test client of a fully
  configured app on temporary SQLite files, with every installed plugin loaded and ``plugins``
  registered on top (an object, a module, or a module that is installed too);
  ``client.app[RESTPLUG]`` is the app's ``restplug``.
- :class:`AllowWrites`: a permission plugin for tests that write without an auth plugin.
- The contract kits, one per backend kind: subclass :class:`StoreContract`,
  :class:`CacheBackendContract` or :class:`SearchIndexContract` as a ``Test...`` class and
  provide its factory fixture; every case of the kit then runs against your backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

# The kits' assertions are their report to a plugin author: rewritten, they show the values.
pytest.register_assert_rewrite(
    "restplug.caches.contract", "restplug.search.contract", "restplug.stores.contract"
)

from restplug import hookimpl  # noqa: E402
from restplug.app import RESTPLUG, Restplug  # noqa: E402
from restplug.caches.contract import CacheBackendContract  # noqa: E402
from restplug.search.contract import SearchIndexContract  # noqa: E402
from restplug.stores.contract import StoreContract  # noqa: E402

ClientFactory = Callable[..., Awaitable[TestClient]]


class AllowWrites:
    """A permission plugin that allows everything: tests of the core without the auth plugin."""

    @hookimpl
    def permission(self) -> bool:
        return True


def isolated_environ(tmp_path: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment on temporary files, with nothing inherited from the real one and nothing
    written outside ``tmp_path`` (the cursor key is one per folder, as ``var/`` holds one)."""
    return {
        "RESTPLUG_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{tmp_path}/search.db",
        "RESTPLUG_CURSOR_SECRET": hashlib.sha256(str(tmp_path).encode()).hexdigest(),
        **(env or {}),
    }


@pytest.fixture
def restplug_client(tmp_path: Path, aiohttp_client: Any) -> ClientFactory:
    """``await restplug_client(env={...}, plugins=[...])``: a test client of a configured app;
    ``client.app[RESTPLUG]`` is its restplug.  A plain fixture handing out a coroutine
    function, so it serves async tests in strict and auto mode alike."""

    async def make(
        env: Mapping[str, str] | None = None, plugins: Iterable[object] = ()
    ) -> TestClient:
        restplug = await Restplug.configure(isolated_environ(tmp_path, env), plugins)
        return await aiohttp_client(restplug.web_app())

    return make


__all__ = [
    "RESTPLUG",
    "AllowWrites",
    "CacheBackendContract",
    "ClientFactory",
    "SearchIndexContract",
    "StoreContract",
    "isolated_environ",
    "restplug_client",
]
