"""Pytest fixtures for restplug and its plugins (loaded with ``-p restplug.testing``).

``restplug_client(env, plugins)`` builds a configured app on temporary SQLite files and returns
an aiohttp test client; ``AllowWrites`` is a throwaway permission plugin for tests that write
without the auth plugin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from restplug import hookimpl
from restplug.app import RESTPLUG, Restplug

ClientFactory = Callable[..., Awaitable[TestClient]]


class AllowWrites:
    """A permission plugin that allows everything: tests of the core without the auth plugin."""

    @hookimpl
    def permission(self) -> bool:
        return True


def isolated_environ(tmp_path: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment on temporary files, with nothing inherited from the real one."""
    return {
        "RESTPLUG_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{tmp_path}/search.db",
        **(env or {}),
    }


@pytest.fixture
def restplug_client(tmp_path: Path, aiohttp_client: Any) -> ClientFactory:
    """``await restplug_client(env={...}, plugins=[...])``: a test client of a configured app;
    ``client.app[RESTPLUG]`` is its Restplug."""

    async def make(
        env: Mapping[str, str] | None = None, plugins: Iterable[object] = ()
    ) -> TestClient:
        restplug = await Restplug.configure(isolated_environ(tmp_path, env), plugins)
        return await aiohttp_client(restplug.web_app())

    return make


__all__ = ["RESTPLUG", "AllowWrites", "isolated_environ", "restplug_client"]
