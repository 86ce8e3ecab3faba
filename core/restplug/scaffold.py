"""``restplug new-plugin NAME --kind KIND``: a working plugin distribution, written from the
templates under ``restplug/templates/`` (package data).

Each kind's folder holds its package (``package/``, renamed ``restplug_<name>``), its tests and
``usage.md`` (the README's part on using it); ``common/`` holds the packaging and the README they
share, ``client/`` the test fixture of the kinds tested through ``restplug_client``.  Files end in
``.tmpl`` (no tool mistakes them for the core's own code) and name what they need as
``{{placeholder}}``; every placeholder must be known, so a typo in a template fails its test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import restplug

#: A plugin name: what ``restplug plugins`` and ``RESTPLUG_DISABLE_PLUGINS`` show, a query
#: parameter for a filter, an ``order_by`` name for a sort.
NAME = re.compile(r"[a-z][a-z0-9_]*")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
SUFFIX = ".tmpl"


@dataclass(frozen=True)
class Kind:
    summary: str
    kit: str | None  # the contract kit its tests run, or None: tests through restplug_client


KINDS: dict[str, Kind] = {
    "filter": Kind(
        "A method filter: `?{{name}}=TEXT` keeps documents whose name starts with TEXT.", None
    ),
    "sort": Kind(
        "A sort method: `order_by={{name}}` sorts by score, documents without one last.", None
    ),
    "permission": Kind(
        "A permission rule: writes answer 503 while `RESTPLUG_{{NAME}}_READ_ONLY=1`.", None
    ),
    "cache": Kind(
        "A cache backend for `RESTPLUG_CACHE_URL={{scheme}}://`.", "CacheBackendContract"
    ),
    "store": Kind(
        "A document store for `RESTPLUG_STORE_URL={{scheme}}:///path.db`.", "StoreContract"
    ),
    "search": Kind(
        "A search index for `RESTPLUG_SEARCH_URL={{scheme}}://name`.", "SearchIndexContract"
    ),
}

TESTED_WITH_KIT = (
    "`tests/` runs restplug's contract kit `{{kit}}` (from `restplug.testing`) against the "
    "backend: every case the core relies on, races, deadlines and outages included, plus a test "
    "that the configured app picks the backend by its URL scheme."
)
TESTED_WITH_CLIENT = (
    "`tests/` uses the `restplug_client` fixture of `restplug.testing`: a test client of a fully "
    "configured app on temporary files, with every installed plugin and this one registered."
)


def new_plugin(name: str, kind: str, target: Path) -> list[Path]:
    """Write the distribution of plugin ``name`` of ``kind`` into ``target`` (which must be
    missing or empty); returns the files written.  ValueError for a bad name, kind or target."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a plugin name: lower-case letters, digits and _, "
            "starting with a letter"
        )
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choices: {', '.join(KINDS)}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} exists and is not an empty folder")
    templates = resources.files(restplug) / "templates"
    values = placeholders(name, kind, (templates / kind / "usage.md").read_text(encoding="utf-8"))
    written = []
    # Kinds without a kit share the client tests' fixture and resource.
    shared = ["common"] if KINDS[kind].kit else ["common", "client"]
    for folder in [templates / part for part in [*shared, kind]]:
        for source, relative in _walk(folder, ()):
            parts = [values["package"] if relative[0] == "package" else relative[0], *relative[1:]]
            parts[-1] = parts[-1].removesuffix(SUFFIX)
            path = target.joinpath(*(render(part, values) for part in parts))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(source.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(path)
    return written


def placeholders(name: str, kind: str, usage: str) -> dict[str, str]:
    """What the templates of plugin ``name`` of ``kind`` may name, the README's parts
    (``usage``: how a deployer uses it) included."""
    values = {
        "name": name,
        "NAME": name.upper(),
        "kind": kind,
        "package": f"restplug_{name}",
        "dist": "restplug-" + name.replace("_", "-"),
        "scheme": name.replace("_", "-"),  # a URL scheme has no "_"
        "Class": "".join(part.title() for part in name.split("_")),
        "restplug_version": restplug.__version__,
        "kit": KINDS[kind].kit or "",
    }
    values["summary"] = render(KINDS[kind].summary, values)
    values["testing"] = render(TESTED_WITH_KIT if KINDS[kind].kit else TESTED_WITH_CLIENT, values)
    values["usage"] = render(usage.strip(), values)
    return values


def render(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise KeyError(f"the template names an unknown placeholder {match[0]}")
        return values[match[1]]

    return PLACEHOLDER.sub(value, text)


def _walk(folder: Traversable, at: tuple[str, ...]) -> list[tuple[Traversable, tuple[str, ...]]]:
    """Every template file under ``folder`` with its path relative to it (``usage.md``, which
    the README includes, is no template file)."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                found += _walk(entry, (*at, entry.name))
        elif entry.name.endswith(SUFFIX):
            found.append((entry, (*at, entry.name)))
    return found
