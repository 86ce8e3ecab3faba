"""docker-compose.yml starts each service after what it needs is healthy, and configures the
api only with settings some installed plugin (or the core) declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from restplug.config import CORE_SETTINGS
from restplug.plugins import call, new_plugin_manager

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def conditions(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "depends_on must give a condition for each dependency"
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def one_shots(services: dict[str, Any]) -> set[str]:
    """Services others wait for to complete successfully (init jobs)."""
    return {
        name
        for service in services.values()
        for name, condition in conditions(service).items()
        if condition == "service_completed_successfully"
    }


def test_every_service_is_health_checked_or_a_one_shot_waited_for(services: dict) -> None:
    for name, service in services.items():
        assert "healthcheck" in service or name in one_shots(services), name


def test_services_wait_for_healthy_dependencies(services: dict) -> None:
    for name, service in services.items():
        for dependency, condition in conditions(service).items():
            expected = (
                "service_completed_successfully"
                if dependency in one_shots(services)
                else "service_healthy"
            )
            assert condition == expected, f"{name} -> {dependency}: {condition}"
    # The api waits for every other service.
    assert set(conditions(services["api"])) == set(services) - {"api"}


async def test_every_restplug_variable_is_a_declared_setting(services: dict) -> None:
    declared = {s.name for s in CORE_SETTINGS}
    declared |= {s.name for s in await call(new_plugin_manager(), "register_settings")}
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        used = {key for key in environment if key.startswith("RESTPLUG_")}
        assert used <= declared, f"{name} sets undeclared settings: {sorted(used - declared)}"


def test_the_api_runs_two_workers_on_the_production_backends(services: dict) -> None:
    environment = services["api"]["environment"]
    assert environment["RESTPLUG_STORE_URL"].startswith("mongodb://mongo:27017/")
    assert "replicaSet=rs0" in environment["RESTPLUG_STORE_URL"]
    assert "--replSet" in services["mongo"]["command"]
    assert environment["RESTPLUG_SEARCH_URL"].startswith("elasticsearch://")
    assert environment["RESTPLUG_CACHE_URL"].startswith("redis://")
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert '"--workers", "2"' in dockerfile
