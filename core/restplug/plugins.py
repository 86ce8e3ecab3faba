"""Loading plugins (every plugin, builtin or not, is an entry point in the group ``restplug``)
and calling their hooks: :func:`call`, by the combination rule each hookspec carries."""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from restplug import hookspecs
from restplug.errors import ConfigError
from restplug.hookspecs import Combine

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


def rule_of(caller: pluggy.HookCaller) -> Combine:
    """The combination rule the hook's spec carries (see :func:`restplug.hookspecs.hookspec`)."""
    rule = getattr(caller.spec.function, "restplug_combine", None) if caller.spec else None
    if not isinstance(rule, Combine):
        raise TypeError(f"the hook {caller.name} declares no combination rule")
    return rule


async def call(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call the hook ``name`` through pluggy (``pm.hook.<name>``: wrappers and tracing
    included), await each answer that needs it, and combine the answers by the hook's rule.

    The result by rule: CONCATENATE, a list; CONCATENATE_BY_PLUGIN, ``(plugin name, item)``
    pairs; ANSWERS, the answers that are not None; VOTES, the first denial, else True if any
    plugin allowed, else None; FIRST_ANSWER, the answer or None; EACH and EACH_TOLERANT, None.
    """
    caller: pluggy.HookCaller = getattr(pm.hook, name)
    rule = rule_of(caller)
    if not rule.one_plugin_at_a_time:
        return _combine(rule, await _awaited(caller(**kwargs)))
    if rule is Combine.FIRST_ANSWER:
        for _, turn in _turns(pm, caller):
            answer = await _first_answer(turn(**kwargs))
            if answer is not None:
                return answer
        return None
    if rule is Combine.EACH_TOLERANT:
        for plugin, turn in _turns(pm, caller):
            try:
                await _awaited(turn(**kwargs))
            except Exception:
                log.exception("the %s hook of plugin %s failed", name, plugin)
        return None
    assert rule is Combine.CONCATENATE_BY_PLUGIN
    return [
        (plugin, item)
        for plugin, turn in _turns(pm, caller)
        for answer in await _awaited(turn(**kwargs))
        for item in answer or ()
    ]


def call_sync(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """:func:`call` for a hook that runs outside the event loop (``register_commands``): an
    async implementation of it is a plugin error."""
    caller: pluggy.HookCaller = getattr(pm.hook, name)
    rule = rule_of(caller)
    if rule.one_plugin_at_a_time:
        raise TypeError(f"the hook {name} cannot be called outside the event loop")
    answers = caller(**kwargs)
    if any(inspect.isawaitable(answer) for answer in answers):
        _close(iter(answers))
        raise TypeError(f"an implementation of the hook {name} is async, where it must not be")
    return _combine(rule, answers)


def _combine(rule: Combine, answers: list[Any]) -> Any:
    """The rules that take the answers of one call of the hook, awaited."""
    answers = [answer for answer in answers if answer is not None]
    if rule is Combine.CONCATENATE:
        return [item for answer in answers for item in answer]
    if rule is Combine.ANSWERS:
        return answers
    if rule is Combine.VOTES:
        denials = [vote for vote in answers if vote is not True]
        return denials[0] if denials else (True if answers else None)
    assert rule is Combine.EACH
    return None


#: Per manager and hook: the implementations the turns were made for, and the turns.
_TURNS: weakref.WeakKeyDictionary[
    pluggy.PluginManager, dict[str, tuple[tuple[Any, ...], list[tuple[str, pluggy.HookCaller]]]]
] = weakref.WeakKeyDictionary()


def _turns(
    pm: pluggy.PluginManager, caller: pluggy.HookCaller
) -> list[tuple[str, pluggy.HookCaller]]:
    """For each plugin implementing the hook, in call order: its name and a caller of the hook
    with every other plugin's (non-wrapper) implementation left out, so that each plugin is
    asked on its own, inside every wrapper, through pluggy.  The implementations are read
    for their plugins and names only.  Hooks such as ``authenticate`` run on every request:
    the turns are made again only when the hook's implementations change."""
    impls = tuple(
        impl for impl in reversed(caller.get_hookimpls()) if not (impl.wrapper or impl.hookwrapper)
    )
    known = _TURNS.setdefault(pm, {})
    made = known.get(caller.name)
    if made is not None and made[0] == impls:
        return made[1]
    turns = [
        (
            impl.plugin_name,
            pm.subset_hook_caller(
                caller.name, [other.plugin for other in impls if other is not impl]
            ),
        )
        for impl in impls
    ]
    known[caller.name] = (impls, turns)
    return turns


async def _awaited(answers: list[Any]) -> list[Any]:
    """Every answer awaited, in call order.  When one fails, the coroutines after it are
    closed without running: the call failed, and Python would warn of them otherwise."""
    pending = iter(answers)
    values = []
    try:
        for answer in pending:
            values.append(await await_me_maybe(answer))
    except BaseException:
        _close(pending)
        raise
    return values


async def _first_answer(answers: list[Any]) -> Any:
    """The first answer of one plugin's turn that is not None, awaited (a wrapper may have
    added answers to the turn); the coroutines after it are closed without running."""
    pending = iter(answers)
    try:
        for answer in pending:
            value = await await_me_maybe(answer)
            if value is not None:
                return value
    finally:
        _close(pending)
    return None


def _close(answers: Iterator[Any]) -> None:
    for answer in answers:
        if inspect.iscoroutine(answer):
            answer.close()


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
