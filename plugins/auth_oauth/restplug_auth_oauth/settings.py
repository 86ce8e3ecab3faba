"""The plugin's environment variables, and the validated configuration they add up to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from restplug import ConfigError, Setting, http_url, non_negative_int, optional, positive_int

Mode = Literal["hs256", "jwks", "introspection"]

# Below this an HS256 secret can be brute-forced offline from any token it signed.
MIN_SECRET_LENGTH = 32


def _jwt_secret(raw: str) -> str:
    if len(raw) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"must be at least {MIN_SECRET_LENGTH} characters (make run generates one into var/)"
        )
    return raw


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "RESTPLUG_AUTH_JWT_SECRET",
        None,
        optional(_jwt_secret),
        "HS256 secret: validate (and `restplug token` mint) self-signed JWTs",
        secret=True,
    ),
    Setting(
        "RESTPLUG_AUTH_JWKS_URL",
        None,
        optional(http_url),
        "validate JWTs with the keys an OAuth2 server publishes (JWKS)",
    ),
    Setting("RESTPLUG_AUTH_ISSUER", None, optional(str), "required `iss` of every token"),
    Setting("RESTPLUG_AUTH_AUDIENCE", None, optional(str), "required `aud` of every token"),
    Setting(
        "RESTPLUG_AUTH_INTROSPECTION_URL",
        None,
        optional(http_url),
        "validate tokens by RFC 7662 introspection at this endpoint",
    ),
    Setting(
        "RESTPLUG_AUTH_CLIENT_ID", None, optional(str), "client id for the introspection endpoint"
    ),
    Setting(
        "RESTPLUG_AUTH_CLIENT_SECRET",
        None,
        optional(str),
        "client secret for the introspection endpoint",
        secret=True,
    ),
    Setting(
        "RESTPLUG_AUTH_TIMEOUT_MS",
        2000,
        positive_int,
        "longest wait for the authorization server (JWKS, introspection), ms",
    ),
    Setting("RESTPLUG_AUTH_LEEWAY", 30, non_negative_int, "clock skew allowed on exp/nbf, s"),
    Setting(
        "RESTPLUG_AUTH_CACHE_MAX_TTL",
        300,
        positive_int,
        "longest time an active introspection answer is cached, s",
    ),
    Setting("RESTPLUG_AUTH_INACTIVE_TTL", 30, positive_int, "time an inactive answer is cached, s"),
    Setting("RESTPLUG_AUTH_JWKS_TTL", 600, positive_int, "time fetched JWKS keys are used, s"),
    Setting(
        "RESTPLUG_AUTH_JWKS_MIN_REFRESH",
        30,
        positive_int,
        "least time between JWKS fetches caused by unknown key ids or failures, s",
    ),
)

# Each mode is chosen by the one setting that names where keys or answers come from.
_MODE_SETTINGS: tuple[tuple[Mode, str], ...] = (
    ("hs256", "RESTPLUG_AUTH_JWT_SECRET"),
    ("jwks", "RESTPLUG_AUTH_JWKS_URL"),
    ("introspection", "RESTPLUG_AUTH_INTROSPECTION_URL"),
)


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are validated; ``mode`` is None when nothing is configured (plugin inert)."""

    mode: Mode | None
    jwt_secret: str | None
    jwks_url: str | None
    introspection_url: str | None
    client_id: str | None
    client_secret: str | None
    issuer: str | None
    audience: str | None
    timeout: float
    leeway: int
    cache_max_ttl: int
    inactive_ttl: int
    jwks_ttl: int
    jwks_min_refresh: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AuthConfig:
        """Check the settings fit together; a contradiction raises one clear ConfigError."""
        chosen = [(mode, name) for mode, name in _MODE_SETTINGS if settings[name]]
        if len(chosen) > 1:
            names = " and ".join(name for _, name in chosen)
            raise ConfigError(f"{names} are set together: set only one way to validate tokens")
        mode = chosen[0][0] if chosen else None
        if mode == "introspection" and not (
            settings["RESTPLUG_AUTH_CLIENT_ID"] and settings["RESTPLUG_AUTH_CLIENT_SECRET"]
        ):
            raise ConfigError(
                "RESTPLUG_AUTH_INTROSPECTION_URL needs RESTPLUG_AUTH_CLIENT_ID and "
                "RESTPLUG_AUTH_CLIENT_SECRET (the client credentials for HTTP Basic)"
            )
        return cls(
            mode=mode,
            jwt_secret=settings["RESTPLUG_AUTH_JWT_SECRET"],
            jwks_url=settings["RESTPLUG_AUTH_JWKS_URL"],
            introspection_url=settings["RESTPLUG_AUTH_INTROSPECTION_URL"],
            client_id=settings["RESTPLUG_AUTH_CLIENT_ID"],
            client_secret=settings["RESTPLUG_AUTH_CLIENT_SECRET"],
            issuer=settings["RESTPLUG_AUTH_ISSUER"],
            audience=settings["RESTPLUG_AUTH_AUDIENCE"],
            timeout=settings["RESTPLUG_AUTH_TIMEOUT_MS"] / 1000,
            leeway=settings["RESTPLUG_AUTH_LEEWAY"],
            cache_max_ttl=settings["RESTPLUG_AUTH_CACHE_MAX_TTL"],
            inactive_ttl=settings["RESTPLUG_AUTH_INACTIVE_TTL"],
            jwks_ttl=settings["RESTPLUG_AUTH_JWKS_TTL"],
            jwks_min_refresh=settings["RESTPLUG_AUTH_JWKS_MIN_REFRESH"],
        )
