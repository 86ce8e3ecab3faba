"""The ``auth_oauth`` plugin: OAuth2 bearer tokens in, scope-based permission votes out.

``authenticate`` turns a bearer token into an Identity with the verifier the configuration
picks (HS256 secret, JWKS or introspection); ``permission`` votes on the requirement a route
declares.  With none of the three configured the plugin stays inert: it neither
authenticates nor votes, so writes stay closed by the core's default policy.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import click
from aiohttp import web

from restplug import ConfigError, Context, Denial, Identity, Requirement, Setting, Vote, hookimpl
from restplug.commands import fail, settings_from_environment
from restplug.web import header, problem_response
from restplug_auth_oauth.bearer import (
    bearer_token,
    insufficient_scope_challenge,
    missing_credentials_challenge,
)
from restplug_auth_oauth.dev_tokens import mint_token
from restplug_auth_oauth.introspection import Introspector
from restplug_auth_oauth.jwt_mode import JwksVerifier, SecretVerifier
from restplug_auth_oauth.settings import SETTINGS, AuthConfig

log = logging.getLogger("restplug.auth_oauth")


class Verifier(Protocol):
    async def identify(self, token: str) -> Identity:
        """The identity of a valid token; raises a 401 or 503 Problem otherwise."""
        ...

    async def close(self) -> None: ...


# One verifier per started restplug (tests run several in one process); absent while inert.
_verifiers: WeakKeyDictionary[Context, Verifier] = WeakKeyDictionary()


def _new_verifier(config: AuthConfig, restplug: Context) -> Verifier | None:
    if config.mode == "hs256":
        return SecretVerifier(config)
    if config.mode == "jwks":
        return JwksVerifier(config)
    if config.mode == "introspection":
        return Introspector(config, restplug.cache)
    return None


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
async def startup(restplug: Context) -> None:
    verifier = _new_verifier(AuthConfig.from_settings(restplug.settings), restplug)
    if verifier is None:
        log.warning(
            "none of RESTPLUG_AUTH_JWT_SECRET, RESTPLUG_AUTH_JWKS_URL, "
            "RESTPLUG_AUTH_INTROSPECTION_URL is set: bearer tokens are not checked and "
            "writes stay closed"
        )
        return
    _verifiers[restplug] = verifier
    log.info("bearer tokens are validated by %s", type(verifier).__name__)


@hookimpl
async def shutdown(restplug: Context) -> None:
    verifier = _verifiers.pop(restplug, None)
    if verifier is not None:
        await verifier.close()


@hookimpl
def describe_route(restplug: Context) -> dict[str, Any] | None:
    """Every route reads the caller's identity (reads too: their cache is per caller), so a
    bad token is a 401 anywhere once tokens are checked."""
    if AuthConfig.from_settings(restplug.settings).mode is None:
        return None
    challenge = {"WWW-Authenticate": header("the RFC 6750 challenge")}
    return {"responses": {"401": problem_response("missing or invalid bearer token", challenge)}}


@hookimpl
async def authenticate(restplug: Context, request: web.Request) -> Identity | None:
    """The identity behind a bearer token; None without one, which leaves the request to
    other authentication plugins."""
    verifier = _verifiers.get(restplug)
    token = bearer_token(request)
    if verifier is None or token is None:
        return None
    return await verifier.identify(token)


@hookimpl
def permission(
    restplug: Context, identity: Identity | None, requirement: Requirement | None
) -> Vote:
    """Allow when the identity meets what the route requires; otherwise deny with the
    RFC 6750 challenge and the reason (which part of a composed requirement failed)."""
    if requirement is None or restplug not in _verifiers:
        return None
    reason = requirement.unmet(identity)
    if reason is None:
        return True
    detail = f"{reason}; this route needs {requirement}"
    if identity is None:
        return Denial(401, detail, missing_credentials_challenge())
    return Denial(403, detail, insufficient_scope_challenge(requirement.scopes()))


def config_from_environment() -> AuthConfig:
    """The plugin's configuration from the environment and ``.env``, for commands that run
    without a server."""
    return AuthConfig.from_settings(settings_from_environment(SETTINGS))


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("token")
    @click.option(
        "--scopes",
        default="",
        help='space-separated scopes, e.g. "backend/create backend/update" or "backend/*"',
    )
    @click.option(
        "--ttl", default=3600, show_default=True, type=click.IntRange(min=1), help="seconds"
    )
    @click.option("--sub", default="dev", show_default=True, help="the token's subject")
    def token(scopes: str, ttl: int, sub: str) -> None:
        """Print a dev token (HS256, signed with RESTPLUG_AUTH_JWT_SECRET)."""
        try:
            config = config_from_environment()
            if config.jwt_secret is None:
                raise ConfigError(
                    "RESTPLUG_AUTH_JWT_SECRET is not set: dev tokens are signed with it "
                    "(make run generates one into var/)"
                )
        except ConfigError as error:
            fail(error)
            raise  # unreachable: fail() exits
        click.echo(
            mint_token(
                config.jwt_secret,
                scopes.split(),
                ttl,
                sub,
                issuer=config.issuer,
                audience=config.audience,
            )
        )
