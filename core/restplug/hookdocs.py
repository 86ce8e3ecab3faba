"""Writes the hook reference (``docs/hooks.md``) from the hookspecs' signatures and docstrings.

``python -m restplug.hookdocs > docs/hooks.md``; a test fails when the file is out of date.
"""

from __future__ import annotations

import inspect

from restplug import hookspecs
from restplug.hookspecs import Combine

HEADER = """# Hook reference

Generated from `core/restplug/hookspecs.py` by `python -m restplug.hookdocs > docs/hooks.md`;
a test keeps the two identical. Implement a hook by decorating a function of your plugin
module (or a method of your plugin object) with `@restplug.hookimpl`; it may take any subset
of the arguments, and may be `async`. See [plugins.md](plugins.md) for a walk-through.

## How the core calls a hook

Every hook is called through pluggy, `pm.hook.<name>(...)`, and each answer that is awaitable
is awaited. pluggy calls the implementations in *call order*: the plugin registered last
first, `@hookimpl(tryfirst=True)` / `trylast=True` moving an implementation to either end. A
plain function runs there and then; an `async def` implementation returns a coroutine, which
the core awaits once pluggy's call has returned, in call order. So where every plugin is called
in one go, the plain implementations run before the first async one starts.

Each hook combines its plugins' answers by one rule, named under its heading below. The code
that calls the hook combines them by that very rule (`restplug.plugins.call` reads it from the
hookspec), so what this page says is what runs:

{rules}

A rule marked *one plugin at a time* calls the hook once per implementing plugin, through
pluggy still (`pm.subset_hook_caller` leaves the other plugins out of each call): that is how
it can stop at the first answer, go on past a failing plugin, or tell which plugin answered.
No hook is a pluggy `firstresult` hook: pluggy would stop at the first coroutine, since a
coroutine is never None.

**Wrappers.** `@hookimpl(wrapper=True)` (and the older `hookwrapper=True`) implementations run
around the call: a wrapper is a generator that yields once and receives the answers as the
implementations returned them, a list for every hook (an async implementation's answer is
still a coroutine there, and None answers are already left out). It may return a changed list
(add an answer, drop one, wrap a coroutine in another) and the hook's rule combines what it
returns. For a hook combined one plugin at a time, a wrapper runs around each plugin's call
and sees that plugin's answer; with no plugin implementing the hook, it is not called.

**Tracing.** `pm.trace.root.setwriter(print)` and `pm.enable_tracing()` (pluggy's own) show
every hook call the core makes, with its arguments and results.
"""


def hook_names() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "restplug_spec")
    ]


def rule_line(rule: Combine) -> str:
    manner = " (one plugin at a time)" if rule.one_plugin_at_a_time else ""
    return f"`{rule.name}`{manner}: {rule.value}"


def reference() -> str:
    rules = "\n".join(f"- {rule_line(rule)}" for rule in Combine)
    parts = [HEADER.format(rules=rules)]
    functions = [getattr(hookspecs, name) for name in hook_names()]
    functions.sort(key=lambda f: f.__code__.co_firstlineno)
    for function in functions:
        signature = str(inspect.signature(function)).replace("'", "")
        parts.append(
            f"## `{function.__name__}`\n\n"
            f"```python\n{function.__name__}{signature}\n```\n\n"
            f"*Combination:* {rule_line(function.restplug_combine)}\n\n"
            f"{inspect.getdoc(function)}\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
