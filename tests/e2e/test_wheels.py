"""Every distribution as a deployer (or the Docker image) installs it: built wheels, installed
non-editable into a fresh virtual environment, run from outside the source tree."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from servers import Server, call, cli

ROOT = Path(__file__).resolve().parents[2]
# What the Docker image's build context leaves out too (.dockerignore), and build leftovers
# that could hide a file the metadata forgets.
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def distributions(source: Path) -> list[Path]:
    return [source, *sorted(p.parent for p in (source / "plugins").glob("*/setup.cfg"))]


def entry_point_names(distribution: Path) -> set[str]:
    config = configparser.ConfigParser()
    config.read(distribution / "setup.cfg")
    lines = config["options.entry_points"]["restplug"].splitlines()
    return {line.split("=")[0].strip() for line in lines if line.strip()}


def run(*command: str | Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_wheels_install_and_serve_outside_the_source_tree(tmp_path):
    # A copy, so that nothing the build writes lands in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SHIPPED)
    wheels, venv, deployment = tmp_path / "wheels", tmp_path / "venv", tmp_path / "deployment"
    deployment.mkdir()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, *distributions(source))  # fmt: skip
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == len(distributions(source))
    # The test's own pip installs into the new environment: quicker than bootstrapping one.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = str(venv / "bin" / "python")
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", *built)

    imported = subprocess.run(
        [python, "-c", "import restplug, restplug_catalog.tasks; print(restplug_catalog.__file__)"],
        capture_output=True,
        text=True,
        cwd=deployment,
    )
    assert imported.returncode == 0, imported.stderr
    assert Path(imported.stdout.strip()).is_relative_to(venv)

    listed = cli(deployment, "plugins", python=python)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[-1] for line in listed.stdout.splitlines()[1:]}
    expected = set().union(*map(entry_point_names, distributions(source)))
    assert {name: rows.get(name) for name in expected} == dict.fromkeys(expected, "enabled")

    # The templates of `new-plugin` are package data: the wheel must carry them.
    made = cli(deployment, "new-plugin", "probe", "--kind", "search", python=python)
    assert made.returncode == 0, made.stderr
    assert (deployment / "probe" / "restplug_probe" / "__init__.py").is_file()

    loaded = cli(deployment, "demo-data", "--count", "50", python=python)
    assert loaded.returncode == 0, loaded.stderr
    server = Server(deployment, python=python, RESTPLUG_CACHE_URL="none://").start()
    try:
        status, _, page = call(f"{server.url}/api/v1/apps?size=5")
        assert status == 200 and page["total"] == 50
        status, _, found = call(f"{server.url}/api/v1/apps?search=witcher")
        assert status == 200 and found["items"][0]["name"] == "The Witcher 3: Wild Hunt"
        for path in ("/docs", "/docs/static/swagger-ui-bundle.js"):
            with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as response:
                assert response.status == 200
        # The admin's templates and assets are package data: the wheel must carry them.
        with urllib.request.urlopen(f"{server.url}/admin/apps?search=witcher", timeout=10) as page:
            assert page.status == 200
            assert "The Witcher 3: Wild Hunt" in page.read().decode()
        with urllib.request.urlopen(f"{server.url}/admin/static/admin.css", timeout=10) as css:
            assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    finally:
        server.stop()
