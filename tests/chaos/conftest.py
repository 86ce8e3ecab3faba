"""The fault suite: real processes killed, backends stopped under load, then checked.

``make test`` runs a short version; ``make chaos`` (``RESTPLUG_CHAOS=full``) runs each scenario
with more rounds and load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from servers import Server
from services import REDIS_SERVER, require_redis_server

FULL = os.environ.get("RESTPLUG_CHAOS", "") == "full"


@pytest.fixture
def rounds() -> int:
    """How many times a scenario repeats: 1 in ``make test``, 5 in ``make chaos``."""
    return 5 if FULL else 1


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """``server_factory(*serve_args, **env)``: a :class:`Server`, not started; every one is
    killed at the end of the test."""
    made: list[Server] = []

    def make(*args: str, **env: str) -> Server:
        server = Server(tmp_path, *args, **env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


# A Redis of this suite's own: its tests stop and freeze it.
chaos_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)


@pytest.fixture
def chaos_redis(request: pytest.FixtureRequest) -> RedisExecutor:
    require_redis_server()
    return request.getfixturevalue("chaos_redis_proc")
