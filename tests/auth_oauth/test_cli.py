"""``restplug token``: mints an HS256 dev token the app accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from oauth_helpers import AUDIENCE, HS256_ENV, ISSUER, SECRET, app_document, bearer

from restplug.cli import main

RESTPLUG = Path(sys.executable).with_name("restplug")


@pytest.fixture
def runner(tmp_path, monkeypatch) -> CliRunner:
    """Runs in an empty directory, so no developer's ``.env`` leaks in."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RESTPLUG_"):
            monkeypatch.delenv(name)
    return CliRunner()


def mint(runner: CliRunner, *args: str, env: dict[str, str] = HS256_ENV) -> str:
    result = runner.invoke(main, ["token", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


async def test_minted_token_is_accepted_by_the_app(runner, hs256_client):
    token = mint(runner, "--scopes", "backend/create backend/update")
    client = await hs256_client()
    assert (
        await client.post("/api/v1/apps", json=app_document(), headers=bearer(token))
    ).status == 201
    response = await client.delete("/api/v1/apps/10", headers=bearer(token))
    assert response.status == 403
    assert response.headers["WWW-Authenticate"].endswith('scope="backend/delete"')


def test_claims_follow_the_options_and_configuration(runner):
    token = mint(runner, "--scopes", "backend/*", "--ttl", "60", "--sub", "worker-7")
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert decoded["sub"] == "worker-7"
    assert decoded["scope"] == "backend/*"
    assert decoded["exp"] - decoded["iat"] == 60


def test_missing_secret_is_a_one_line_error(runner):
    result = runner.invoke(main, ["token", "--scopes", "backend/*"], env={})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "restplug: configuration error: RESTPLUG_AUTH_JWT_SECRET is not set: dev tokens are "
        "signed with it (make run generates one into var/)"
    ]


def test_bad_ttl_is_a_usage_error(runner):
    result = runner.invoke(main, ["token", "--ttl", "0"], env=HS256_ENV)
    assert result.exit_code == 2


def test_the_installed_command_prints_only_the_token(tmp_path):
    result = subprocess.run(
        [str(RESTPLUG), "token", "--scopes", "backend/*"],
        env={"PATH": os.environ["PATH"], "RESTPLUG_AUTH_JWT_SECRET": SECRET},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["scope"] == "backend/*"
