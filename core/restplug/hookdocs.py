"""Writes the hook reference (``docs/hooks.md``) from the hookspecs' signatures and docstrings.

``python -m restplug.hookdocs > docs/hooks.md``; a test fails when the file is out of date.
"""

from __future__ import annotations

import inspect

from restplug import hookspecs

HEADER = """# Hook reference

Generated from `core/restplug/hookspecs.py` by `python -m restplug.hookdocs > docs/hooks.md`;
a test keeps the two identical. Implement a hook by decorating a function of your plugin
module (or a method of your plugin object) with `@restplug.hookimpl`; it may take any subset
of the arguments, and may be `async`. See [plugins.md](plugins.md) for a walk-through.
"""


def hook_names() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "restplug_spec")
    ]


def reference() -> str:
    parts = [HEADER]
    functions = [getattr(hookspecs, name) for name in hook_names()]
    functions.sort(key=lambda f: f.__code__.co_firstlineno)
    for function in functions:
        options = function.restplug_spec
        kind = "first result wins" if options.get("firstresult") else "every plugin answers"
        signature = str(inspect.signature(function)).replace("'", "")
        parts.append(
            f"## `{function.__name__}`\n\n"
            f"```python\n{function.__name__}{signature}\n```\n\n"
            f"*{kind}*\n\n{inspect.getdoc(function)}\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
