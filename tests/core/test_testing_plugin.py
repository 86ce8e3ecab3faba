"""restplug.testing as a plugin author meets it: a project of their own, no conftest, no ``-p``,
pytest-asyncio in strict mode or in auto mode."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# The fixture with a plugin module that its entry point registers already (the builtin
# memory cache), and each contract kit against a builtin backend.
PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        asyncio_default_fixture_loop_scope = "function"
    """,
    "test_client.py": """
        import pytest
        import restplug.caches.memory
        from restplug.testing import AllowWrites

        @pytest.mark.asyncio
        async def test_an_installed_plugin_can_be_passed_again(restplug_client):
            client = await restplug_client(plugins=[restplug.caches.memory, AllowWrites()])
            plugins = await (await client.get("/-/plugins")).json()
            assert [p["name"] for p in plugins].count("memory_cache") == 1
            assert (await client.get("/health/ready")).status == 200
    """,
    "test_kits.py": """
        import pytest
        from restplug.caches.memory import MemoryCache
        from restplug.search.sqlite import SQLiteSearchIndex
        from restplug.stores.sqlite import SQLiteStore
        from restplug.testing import CacheBackendContract, SearchIndexContract, StoreContract

        class TestStore(StoreContract):
            @pytest.fixture
            def make_store(self, tmp_path):
                return lambda: SQLiteStore(f"sqlite:///{tmp_path}/store.db")

        class TestCache(CacheBackendContract):
            @pytest.fixture
            def make_backend(self):
                return MemoryCache

        class TestSearch(SearchIndexContract):
            @pytest.fixture
            def make_index(self, tmp_path):
                return lambda: SQLiteSearchIndex(f"sqlite:///{tmp_path}/search.db")
    """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plugin-project")
    for name, text in PROJECT.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_fixture_and_every_kit_pass_in_both_asyncio_modes(project: Path, mode: str) -> None:
    report = project / f"{mode}.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
         f"asyncio_mode={mode}", f"--junitxml={report}"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] > 150 and counts["failures"] == counts["errors"] == 0
    assert counts["skipped"] == 0, result.stdout
    cases = {case.get("classname").rsplit(".", 1)[-1] for case in suite.iter("testcase")}
    assert {"test_client", "TestStore", "TestCache", "TestSearch"} <= cases
