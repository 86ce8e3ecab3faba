"""The fault suite: real processes killed, backends stopped under load, then checked.

``make test`` runs a short version; ``make chaos`` (``RESTPLUG_CHAOS=full``) runs each scenario
with more rounds and load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_helpers import (  # noqa: F401 (fixtures)
    outage_redis_proc,
    outage_redis_server,
    redis_server,
    shared_redis_proc,
)
from servers import Server

FULL = os.environ.get("RESTPLUG_CHAOS", "") == "full"


@pytest.fixture
def rounds() -> int:
    """How many times a scenario repeats: 1 in ``make test``, 5 in ``make chaos``."""
    return 5 if FULL else 1


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """``server_factory(*serve_args, **env)``: a :class:`Server`, not started; every one is
    killed at the end of the test.  Rate limiting is off unless ``env`` says otherwise."""
    made: list[Server] = []

    def make(*args: str, **env: str) -> Server:
        # The load loops send from one address far more than a client's default budget.
        env = {"RESTPLUG_DISABLE_PLUGINS": "ratelimit", **env}
        server = Server(tmp_path, *args, **env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
