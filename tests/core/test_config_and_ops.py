"""Configuration, the disable switch, plugin listings, health, OpenAPI and Swagger UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

from restplug import hookimpl
from restplug.app import Restplug
from restplug.errors import ConfigError
from restplug.testing import isolated_environ


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RESTPLUG_PORT", "eighty", "RESTPLUG_PORT='eighty': must be a whole number"),
        ("RESTPLUG_PORT", "70000", "RESTPLUG_PORT='70000': must be a port number"),
        ("RESTPLUG_CACHE_TTL", "-5", "RESTPLUG_CACHE_TTL='-5': must be greater than 0"),
        ("RESTPLUG_LOG_FORMAT", "xml", "must be one of text, json"),
        ("RESTPLUG_MAIN_COUNTRY", "USA", "ISO 3166"),
        ("RESTPLUG_REQUIRE_IF_MATCH", "perhaps", "must be 1 or 0"),
        ("RESTPLUG_STORE_URL", "nowhere", "must be a URL"),
        (
            "RESTPLUG_STORE_URL",
            "postgres://db/x",
            "no installed, enabled plugin answers the scheme",
        ),
        ("RESTPLUG_CACHE_URL", "memcached://x", "choices: memory://"),
        ("RESTPLUG_DISABLE_PLUGINS", "catalogue", "names catalogue, which is not installed"),
    ],
)
async def test_bad_configuration_stops_with_one_clear_line(tmp_path, variable, value, message):
    with pytest.raises(ConfigError) as error:
        await Restplug.configure(isolated_environ(tmp_path, {variable: value}))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def run_cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **isolated_environ(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-m", "restplug.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )


def test_cli_reports_bad_configuration_in_one_line(tmp_path):
    result = run_cli(tmp_path, "serve", RESTPLUG_STORE_URL="postgres://db/x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RESTPLUG_STORE_URL" in lines[0] and "sqlite://" in lines[0]


def test_cli_plugins_table(tmp_path):
    result = run_cli(tmp_path, "plugins", RESTPLUG_DISABLE_PLUGINS="memory_cache")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert {"sqlite_store", "memory_cache", "default_permissions", "catalog"} <= set(rows)
    assert rows["memory_cache"].endswith("disabled")
    assert "restplug-catalog" in rows["catalog"] and "register_resources" in rows["catalog"]
    assert rows["sqlite_store"].endswith("enabled")


def test_cli_openapi(tmp_path):
    result = run_cli(tmp_path, "openapi")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"] == "3.1.0" and "/api/v1/apps" in document["paths"]


async def test_disabling_a_plugin_removes_what_it_adds(restplug_client):
    client = await restplug_client(
        env={"RESTPLUG_DISABLE_PLUGINS": "catalog, memory_cache", "RESTPLUG_CACHE_URL": "none://"}
    )
    assert (await client.get("/api/v1/apps")).status == 404
    plugins = {p["name"]: p for p in await (await client.get("/-/plugins")).json()}
    assert plugins["catalog"]["enabled"] is False and plugins["catalog"]["hooks"] == []
    assert plugins["sqlite_store"]["enabled"] is True
    assert plugins["sqlite_store"]["distribution"] == "restplug"
    assert "register_backends" in plugins["sqlite_store"]["hooks"]
    ready = await (await client.get("/health/ready")).json()
    assert "cache" not in ready["checks"]


async def test_disabling_default_permissions_closes_reads(restplug_client):
    client = await restplug_client(env={"RESTPLUG_DISABLE_PLUGINS": "default_permissions"})
    assert (await client.get("/api/v1/apps")).status == 403
    assert (await client.get("/health/live")).status == 200


async def test_health(restplug_client):
    client = await restplug_client()
    assert await (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status == 200
    checks = (await ready.json())["checks"]
    assert checks["store"] == "ok" and checks["cache"] == "ok"
    assert set(checks.values()) == {"ok"}


async def test_openapi_document_is_valid_and_complete(restplug_client):
    client = await restplug_client()
    document = await (await client.get("/openapi.json")).json()
    validate(document)
    apps = document["paths"]["/api/v1/apps"]
    names = {p["name"] for p in apps["get"]["parameters"]}
    assert {"page", "size", "cursor", "order_by", "fields", "count", "type__in"} <= names
    assert {"get", "post"} <= set(apps)
    assert set(document["paths"]["/api/v1/apps/{id}"]) == {"get", "put", "patch", "delete"}
    assert "App" in document["components"]["schemas"]


async def test_swagger_ui_is_served_locally(restplug_client):
    client = await restplug_client()
    page = await client.get("/docs")
    assert page.status == 200 and "/openapi.json" in await page.text()
    assert "http" not in (await page.text()).replace("http-equiv", "")  # no CDN
    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status == 200 and len(await script.read()) > 100_000


class DenyAll:
    """A permission plugin that says no to everything."""

    @hookimpl
    def permission(self) -> bool:
        return False


OPERATIONS = ["/-/plugins", "/openapi.json", "/docs", "/docs/static/swagger-ui.css"]


async def test_operation_routes_pass_the_permission_votes(restplug_client):
    open_client = await restplug_client()
    for path in OPERATIONS:
        assert (await open_client.get(path)).status == 200, path
    assert (await open_client.get("/docs/static/nothing.js")).status == 404

    closed = await restplug_client(plugins=[DenyAll()])
    for path in OPERATIONS:
        response = await closed.get(path)
        assert response.status == 403, path
        assert response.content_type == "application/problem+json"
    # Health probes answer whatever the permission plugins say: orchestrators probe without
    # credentials.
    assert (await closed.get("/health/live")).status == 200
    assert (await closed.get("/health/ready")).status == 200
