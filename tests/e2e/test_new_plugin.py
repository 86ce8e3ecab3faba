"""``restplug new-plugin``: each kind's distribution, as generated, is clean, installs (not
editable), shows in ``restplug plugins`` and passes its own tests, none skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from servers import cli

from restplug.scaffold import KINDS

BIN = Path(sys.executable).parent


def run(*command: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={"PATH": str(BIN), "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_generated_plugin_installs_and_passes_its_tests(tmp_path: Path, kind: str) -> None:
    name, source, site = f"probe_{kind}", tmp_path / "source", tmp_path / "site"
    made = cli(tmp_path, "new-plugin", name, "--kind", kind, "--dir", str(source))
    assert made.returncode == 0, made.stderr
    # The generated code passes the linters as restplug's own does.
    run(BIN / "ruff", "check", "--isolated", "--line-length", "100",
        "--select", "E,F,W,I,B,UP,SIM,RUF", ".", cwd=source)  # fmt: skip
    run(BIN / "ruff", "format", "--isolated", "--line-length", "100", "--check", ".", cwd=source)

    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
        "--no-compile", "--target", site, source, cwd=tmp_path)  # fmt: skip
    # The tests can only import the installed copy now.
    shutil.rmtree(source / f"restplug_{name}")
    report = tmp_path / "report.xml"
    run(BIN / "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
        cwd=source, PYTHONPATH=str(site))  # fmt: skip
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] > 0 and counts["failures"] == counts["errors"] == 0
    assert counts["skipped"] == 0

    listed = cli(tmp_path, "plugins", PYTHONPATH=str(site))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    row = rows[name]
    assert row[1:3] == [f"restplug-probe-{kind}", "0.1.0"] and row[-1] == "enabled"


def test_the_folder_defaults_to_the_name(tmp_path: Path) -> None:
    made = cli(tmp_path, "new-plugin", "mine", "--kind", "filter")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "mine" / "restplug_mine" / "__init__.py").is_file()
    assert "restplug =\n    mine = restplug_mine" in (tmp_path / "mine" / "setup.cfg").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad-Name", "--kind", "filter"], "is not a plugin name"),
        (["1st", "--kind", "cache"], "is not a plugin name"),
        (["taken", "--kind", "cache"], "exists and is not an empty folder"),
        (["fine", "--kind", "widget"], "'widget' is not one of"),
    ],
)
def test_bad_arguments_stop_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").touch()
    made = cli(tmp_path, "new-plugin", *args)
    assert made.returncode == 2 and message in made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_the_guide_lists_every_kind() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    assert all(f"\n| `{kind}` |" in guide for kind in KINDS)
