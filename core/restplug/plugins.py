"""Loading plugins: every plugin, builtin or not, is an entry point in the group ``restplug``."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from restplug import hookspecs
from restplug.errors import ConfigError

GROUP = "restplug"
log = logging.getLogger("restplug.plugins")
T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    enabled: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": list(self.hooks),
            "enabled": self.enabled,
        }


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus what restplug needs to list and disable plugins by name."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self._disabled: dict[str, metadata.EntryPoint] = {}

    def load(self, disabled: Iterable[str] = ()) -> None:
        """Register every installed plugin except the disabled ones.

        An unknown name in ``disabled`` is a configuration error: a typo must not leave on a
        plugin the deployer meant to switch off.
        """
        entry_points = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
        unknown = sorted(set(disabled) - set(entry_points) - set(self._names()))
        if unknown:
            raise ConfigError(
                f"RESTPLUG_DISABLE_PLUGINS names {', '.join(unknown)}, which is not installed; "
                f"installed plugins: {', '.join(sorted(entry_points) or ['none'])}"
            )
        for name in disabled:
            if name in entry_points:
                self._disabled[name] = entry_points[name]
            self.set_blocked(name)
        self.load_setuptools_entrypoints(GROUP)

    def _names(self) -> list[str]:
        return [name for name, _ in self.list_name_plugin() if name]

    def infos(self) -> list[PluginInfo]:
        """Every plugin, enabled or disabled, for ``restplug plugins`` and ``GET /-/plugins``."""
        dists = {id(plugin): dist for plugin, dist in self.list_plugin_distinfo()}
        rows = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            dist = dists.get(id(plugin))
            hooks = tuple(sorted(caller.name for caller in self.get_hookcallers(plugin) or []))
            rows.append(
                PluginInfo(
                    name=name,
                    distribution=dist.metadata["name"] if dist else _module_name(plugin),
                    version=dist.version if dist else "",
                    hooks=hooks,
                    enabled=True,
                )
            )
        for name, ep in self._disabled.items():
            dist = ep.dist
            rows.append(
                PluginInfo(
                    name=name,
                    distribution=dist.metadata["name"] if dist else "",
                    version=dist.version if dist else "",
                    hooks=(),
                    enabled=False,
                )
            )
        return sorted(rows, key=lambda row: row.name)


def _module_name(plugin: object) -> str:
    return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Hooks may be sync or async: await what needs awaiting."""
    if inspect.isawaitable(value):
        return await value
    return value


async def call_each(
    caller: pluggy.HookCaller, *, tolerant: bool = False, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call every implementation of a hook on its own, awaiting it: ``(plugin name, result)``
    pairs, for callers that must know who answered.  ``tolerant``: a failing plugin is logged
    and skipped instead of stopping the others."""
    results = []
    for impl in reversed(caller.get_hookimpls()):
        try:
            value = impl.function(*(kwargs[name] for name in impl.argnames))
            results.append((impl.plugin_name, await await_me_maybe(value)))
        except Exception:
            if not tolerant:
                raise
            log.exception("the %s hook of plugin %s failed", caller.name, impl.plugin_name)
    return results


async def first_result(caller: pluggy.HookCaller, **kwargs: Any) -> Any:
    """The first non-None answer of a firstresult hook, awaiting each plugin's answer before
    asking the next (pluggy alone would stop at the first coroutine, which is never None)."""
    for impl in reversed(caller.get_hookimpls()):
        value = await await_me_maybe(impl.function(*(kwargs[name] for name in impl.argnames)))
        if value is not None:
            return value
    return None


async def gather_lists(results: Iterable[Any]) -> list[Any]:
    """Concatenate the list answers of a hook, awaiting async implementations, skipping None."""
    combined: list[Any] = []
    for result in results:
        value = await await_me_maybe(result)
        if value:
            combined.extend(value)
    return combined


def new_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[object] = ()) -> PluginManager:
    """A manager with every installed, enabled plugin, plus ``extra`` plugin objects (tests).
    An extra plugin its entry point registered already stays registered once, under its
    plugin name: a plugin's tests pass its module whether or not it is installed."""
    pm = PluginManager()
    pm.load(disabled)
    for plugin in extra:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    return pm
