"""The docs cannot drift from the code: the hook reference is the hookspecs' own text."""

from __future__ import annotations

from pathlib import Path

from restplug.hookdocs import hook_names, reference

ROOT = Path(__file__).parents[2]


def test_hook_reference_matches_the_hookspecs():
    written = (ROOT / "docs" / "hooks.md").read_text()
    assert written == reference(), "run: python -m restplug.hookdocs > docs/hooks.md"


def test_every_hookspec_is_documented_with_its_combination_rule():
    written = (ROOT / "docs" / "hooks.md").read_text()
    for name in hook_names():
        section = written.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        assert "Called" in section, f"{name}: say when it is called"
        assert "Return" in section or "return" in section, f"{name}: say what it returns"
