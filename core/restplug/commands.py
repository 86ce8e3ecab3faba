"""Helpers for the commands a plugin adds with the ``register_commands`` hook.

A command that needs the store, the cache or the search index runs its work inside
:func:`with_restplug`; one that needs only its plugin's settings reads them with
:func:`settings_from_environment`; either stops on a configuration error with :func:`fail`, the
one-line message and exit status every ``restplug`` command uses.
"""

from restplug.cli import fail, with_restplug
from restplug.config import settings_from_environment

__all__ = ["fail", "settings_from_environment", "with_restplug"]
