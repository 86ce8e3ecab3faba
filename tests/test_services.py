"""Under CI a missing service fails its tests: a CI run never passes on skipped ones."""

from __future__ import annotations

import pytest
import services


def outcome_without_redis_server(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> str:
    """What a test needing redis-server does where it is missing: "failed" or "skipped"."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(services, "REDIS_SERVER", None)
    try:
        services.require_redis_server()
    except pytest.fail.Exception as exc:
        assert "redis-server is not installed" in str(exc)
        return "failed"
    except pytest.skip.Exception as exc:
        assert "apt-get install redis-server" in str(exc)
        return "skipped"
    return "ran"


@pytest.mark.parametrize("value", ["1", "true", "True", "TRUE", "yes", "YES", "on", " true "])
def test_a_missing_redis_server_fails_under_ci(monkeypatch, value):
    assert outcome_without_redis_server(monkeypatch, value) == "failed"


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_a_missing_redis_server_skips_elsewhere(monkeypatch, value):
    assert outcome_without_redis_server(monkeypatch, value) == "skipped"


def test_an_installed_redis_server_is_used_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr(services, "REDIS_SERVER", "/usr/bin/redis-server")
    services.require_redis_server()


@pytest.mark.parametrize(("ci", "expected"), [("true", "failed"), (None, "skipped")])
def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, expected):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(services, "CHROMEDRIVER", None)
    try:
        services.require_browser()
    except pytest.fail.Exception as exc:
        assert "chromedriver not installed" in str(exc)
        outcome = "failed"
    except pytest.skip.Exception as exc:
        assert "apt-get install chromium chromium-driver" in str(exc)
        outcome = "skipped"
    else:
        outcome = "ran"
    assert outcome == expected
