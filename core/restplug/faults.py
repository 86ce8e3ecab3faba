"""Crash points: a test-only knob that makes the process die at a named point, as ``kill -9``.

``RESTPLUG_CRASH_AT=<point>`` (or ``<point>:<n>``, the n-th time the point is reached) makes
the process send itself SIGKILL there: no cleanup, no flush, exactly what a power cut or the
OOM killer leaves behind.  The fault tests (``tests/chaos``) use it to check that no write a
client was told succeeded is ever lost.  Never set it in a deployment.

The points (more may be added where a crash matters):

- ``after-commit``: a write is committed in the store, none of its side effects ran yet;
- ``after-index``: the side effects ran (cache, search index, ``documents_changed``), the
  outbox entries saying they are due are not removed yet;
- ``mid-effects``: after one more document's side effects (``mid-effects:100`` dies after the
  100th document of a package);
- ``task-forwarded``: the orchestrator accepted a task, the store does not record it yet.

An unset point costs one comparison per call.
"""

from __future__ import annotations

import os
import re
import signal

_POINT = re.compile(r"[a-z][a-z-]*(:[1-9][0-9]*)?")
_armed: str | None = None
_countdown = 0


def crash_spec(raw: str) -> str:
    """Parse ``RESTPLUG_CRASH_AT``: ``<point>`` or ``<point>:<n>``."""
    if not _POINT.fullmatch(raw):
        raise ValueError("expected <point> or <point>:<n>, e.g. after-commit or mid-effects:100")
    return raw


def arm(spec: str | None) -> None:
    """Die at ``spec`` from now on (None: never)."""
    global _armed, _countdown
    if spec is None:
        _armed = None
        return
    name, _, count = spec.partition(":")
    _armed, _countdown = name, int(count or 1)


def crash_point(name: str) -> None:
    """Die here by SIGKILL when ``RESTPLUG_CRASH_AT`` names this point (and its count is
    reached); else return at once."""
    global _countdown
    if _armed != name:
        return
    _countdown -= 1
    if _countdown <= 0:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["arm", "crash_point", "crash_spec"]
