"""The external programs some tests start (redis-server, chromium), and what a missing one means.

Locally a missing program skips its tests, saying how to get it.  Under CI (``CI`` set to a true
value: ``1``, ``true``, ``yes`` or ``on``, in any case) it fails them instead, so a CI run never
passes without having run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import NoReturn

import pytest

TRUE = frozenset({"1", "true", "yes", "on"})
REDIS_SERVER = shutil.which("redis-server")
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CI`` is set to a true value."""
    return environ.get("CI", "").strip().lower() in TRUE


def missing_service(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it under CI."""
    if in_ci():
        pytest.fail(f"{reason}; under CI the tests that need it must run", pytrace=False)
    pytest.skip(reason)


def require_redis_server() -> None:
    """Go on only where Debian's redis-server is installed (pytest-redis starts it)."""
    if REDIS_SERVER is None:
        missing_service(
            "redis-server is not installed (apt-get install redis-server, or `make test`)"
        )


def require_browser() -> None:
    """Go on only where Debian's chromium and chromium-driver are installed (the admin's
    browser tests drive them through Selenium)."""
    missing = [
        name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path
    ]
    if missing:
        missing_service(
            f"{' and '.join(missing)} not installed "
            "(apt-get install chromium chromium-driver, or `make test`)"
        )
