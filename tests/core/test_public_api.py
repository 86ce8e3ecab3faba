"""The public API is what plugins use, all of it is documented, and nothing else is.

- Every plugin of this repository (and the guide's example plugin) imports only public names:
  the public modules, and from them only what their ``__all__`` exports.
- ``docs/api.md`` lists every exported name, and names nothing that is not exported.
- Every exported name is importable.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import restplug

ROOT = Path(__file__).parents[2]
#: The modules whose ``__all__`` is the public API; every other module is the core's own.
PUBLIC_MODULES = (
    "restplug",
    "restplug.web",
    "restplug.commands",
    "restplug.redis",
    "restplug.testing",
)
#: Code written as a third party would: it may use the public API only.
PLUGIN_SOURCES = (ROOT / "plugins", ROOT / "tests" / "filters" / "example_on_sale")
#: A documented name: a list item at the start of a line, ``- `restplug.web.entry(body)`: ...``.
DOCUMENTED = re.compile(r"^- `(restplug(?:\.\w+)*)\.(\w+)[^`]*`", re.MULTILINE)
#: A member of ``Context``, documented as an item under it: ``  - `settings`: ...``.
CONTEXT_MEMBER = re.compile(r"^  - `(\w+)[^`]*`", re.MULTILINE)


def exported(module: str) -> list[str]:
    return list(importlib.import_module(module).__all__)


def private_imports(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each import of ``source`` reaching outside the public API."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "restplug" and alias.name not in PUBLIC_MODULES:
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "restplug":
                continue
            if node.module not in PUBLIC_MODULES:
                found.append((node.lineno, f"from {node.module} import ..."))
                continue
            allowed = {*exported(node.module), *PUBLIC_MODULES}
            for alias in node.names:
                if alias.name not in allowed and f"{node.module}.{alias.name}" not in allowed:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


def plugin_files() -> list[Path]:
    return sorted(path for folder in PLUGIN_SOURCES for path in folder.rglob("*.py"))


def test_plugins_import_only_the_public_api():
    files = plugin_files()
    assert len(files) > 20, "the plugin sources were not found"
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in files
        for line, what in private_imports(path.read_text())
    ]
    assert not offences, "plugins import non-public restplug names:\n" + "\n".join(offences)


@pytest.mark.parametrize(
    "source",
    [
        "from restplug.app import Restplug",
        "import restplug.query",
        "from restplug import views",
        "from restplug import Restplug",
        "from restplug.web import ResourceViews",
        "def f():\n    from restplug.stores.protocol import FindQuery",
    ],
)
def test_the_import_check_catches_each_way_to_reach_an_internal(source):
    assert len(private_imports(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import restplug",
        "import restplug.web",
        "from restplug import web, hookimpl",
        "from restplug.commands import fail",
        "from .sibling import helper",
        "import restplug_catalog.schemas",
    ],
)
def test_the_import_check_allows_public_and_own_names(source):
    assert private_imports(source) == []


def api_page() -> str:
    return (ROOT / "docs" / "api.md").read_text()


def test_the_api_page_lists_exactly_the_exported_names():
    documented = {f"{module}.{name}" for module, name in DOCUMENTED.findall(api_page())}
    public = {f"{module}.{name}" for module in PUBLIC_MODULES for name in exported(module)}
    assert sorted(public - documented) == [], "exported but missing from docs/api.md"
    assert sorted(documented - public) == [], "named in docs/api.md but not exported"


def test_the_api_page_describes_every_member_of_the_context():
    page = api_page()
    section = page.split("- `restplug.Context`", 1)[1].split("\n- ", 1)[0]
    members = {name for name in vars(restplug.Context) if not name.startswith("_")}
    assert set(CONTEXT_MEMBER.findall(section)) == members


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_exported_name_is_importable(module):
    names = exported(module)
    assert len(names) == len(set(names)), f"{module}.__all__ repeats a name"
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)
    assert [name for name in names if name not in namespace] == []
