"""restplug: a plugin-based REST framework on aiohttp and pluggy."""

from pluggy import HookimplMarker

__version__ = "0.1.0"

hookimpl = HookimplMarker("restplug")
"""Decorate a plugin's hook implementations with ``@hookimpl``."""

__all__ = ["__version__", "hookimpl"]
