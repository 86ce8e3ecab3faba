"""Configuration from the environment (and an optional ``.env``), validated at start-up."""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from restplug.errors import ConfigError
from restplug.faults import crash_spec

log = logging.getLogger("restplug.config")
PREFIX = "RESTPLUG_"


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, parser and a line of help.

    ``parse`` turns the raw string into the value and raises ``ValueError`` with a message a
    deployer understands.  ``secret`` values are never printed.
    """

    name: str
    default: Any
    parse: Callable[[str], Any] = str
    help: str = ""
    secret: bool = False


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An empty value means unset (None), so ``VAR=`` in a ``.env`` file switches it off."""

    def parse_or_none(raw: str) -> Any:
        return parse(raw) if raw.strip() else None

    return parse_or_none


def http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw


def port(raw: str) -> int:
    value = positive_int(raw)
    if value > 65535:
        raise ValueError("must be a port number, 1..65535")
    return value


def boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be 1 or 0 (true/false)")


def name_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return raw

    return parse


def url(raw: str) -> str:
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", raw):
        raise ValueError("must be a URL such as scheme://...")
    return raw


def country(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", raw):
        raise ValueError("must be an ISO 3166 alpha-2 country code such as US")
    return raw.upper()


def positive_number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not 0 < value < float("inf"):
        raise ValueError("must be greater than 0")
    return value


#: Below this a MAC key can be guessed offline from the values it signed.
MIN_SECRET_LENGTH = 32


def long_secret(raw: str) -> str:
    if len(raw) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    return raw


def generated_secret(path: Path) -> str:
    """The secret kept in ``path``, generated there on first use.  Processes starting at once
    (``serve --workers N``) agree on one: each writes a candidate to its own file and links
    it into place, which only the first one does; the others read the winner's."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return path.read_text().strip()


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("RESTPLUG_HOST", "127.0.0.1", str, "listen address"),
    Setting("RESTPLUG_PORT", 8080, port, "listen port"),
    Setting("RESTPLUG_STORE_URL", "sqlite:///var/restplug.db", url, "document store"),
    Setting("RESTPLUG_CACHE_URL", "memory://", url, "cache backend"),
    Setting("RESTPLUG_SEARCH_URL", "sqlite:///var/search.db", url, "full-text search index"),
    Setting("RESTPLUG_CACHE_TTL", 600, positive_int, "cache entry lifetime, seconds"),
    Setting("RESTPLUG_DISABLE_PLUGINS", (), name_list, "plugins to leave off although installed"),
    Setting("RESTPLUG_LOG_FORMAT", "text", choice("text", "json"), "log line format"),
    Setting("RESTPLUG_MAIN_COUNTRY", "US", country, "country whose prices sorts use"),
    Setting("RESTPLUG_MAX_BODY", 10 * 1024 * 1024, positive_int, "largest request body, bytes"),
    Setting("RESTPLUG_QUERY_TIMEOUT_MS", 5000, positive_int, "longest store query, ms"),
    Setting("RESTPLUG_REQUIRE_IF_MATCH", False, boolean, "writes must send If-Match"),
    Setting("RESTPLUG_CACHE_CLIENT_BYPASS", False, boolean, "honour Cache-Control: no-cache"),
    Setting(
        "RESTPLUG_OUTBOX_RETRY_MS",
        5000,
        positive_int,
        "how often pending side effects (search updates) and index rebuilds are checked, ms",
    ),
    Setting(
        "RESTPLUG_CRASH_AT",
        None,
        optional(crash_spec),
        "TEST ONLY: SIGKILL this process at a named point (see restplug.faults)",
    ),
    Setting("RESTPLUG_BODY_TIMEOUT", 30.0, positive_number, "longest wait for a request body, s"),
    Setting(
        "RESTPLUG_CURSOR_SECRET",
        None,
        optional(long_secret),
        "key that signs list cursors (unset: generated once into var/cursor-secret)",
        secret=True,
    ),
)


class Settings(Mapping[str, Any]):
    """Parsed settings.  ``settings["RESTPLUG_PORT"]`` or ``settings.port`` (prefix dropped)."""

    def __init__(self, values: Mapping[str, Any], declared: Iterable[Setting]) -> None:
        self._values = dict(values)
        self.declared = {s.name: s for s in declared}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, attribute: str) -> Any:
        try:
            return self._values[PREFIX + attribute.upper()]
        except KeyError:
            raise AttributeError(attribute) from None

    def public(self) -> dict[str, Any]:
        """The settings with secrets masked, safe to print or serve."""
        return {
            name: "***" if self.declared[name].secret and value else value
            for name, value in self._values.items()
        }


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over the ``.env`` file of the working directory; an explicit
    ``environ`` (tests, embedding) is taken whole, with no ``.env`` mixed in."""
    if environ is not None:
        return dict(environ)
    values = {k: v for k, v in dotenv_values(Path(".env")).items() if v is not None}
    values.update(os.environ)
    return values


def settings_from_environment(declared: Iterable[Setting]) -> Settings:
    """Only the ``declared`` settings, parsed from the environment and ``.env``: for a plugin's
    command that runs without a server.  A bad value raises ConfigError; the variables of
    other plugins are not this caller's business and are neither parsed nor warned about."""
    return parse_settings(declared, read_environment(), complete=False)


def parse_settings(
    declared: Iterable[Setting], raw: Mapping[str, str], *, complete: bool = True
) -> Settings:
    """Parse every declared setting; the first bad value raises one clear ConfigError.

    ``complete``: ``declared`` holds every enabled plugin's settings, so a ``RESTPLUG_``
    variable outside it is worth a warning (a typo, or a plugin left disabled)."""
    declared = list(declared)
    values: dict[str, Any] = {}
    for setting in declared:
        if setting.name in raw:
            try:
                values[setting.name] = setting.parse(raw[setting.name])
            except ValueError as exc:
                # A value that does not parse may be a URL too broken to find its password in.
                hidden = setting.secret or "@" in raw[setting.name]
                shown = "***" if hidden else repr(raw[setting.name])
                raise ConfigError(f"{setting.name}={shown}: {exc}") from None
        else:
            values[setting.name] = setting.default
    known = {s.name for s in declared}
    for name in sorted(raw) if complete else ():
        if name.startswith(PREFIX) and name not in known and not name.startswith("RESTPLUG_TEST_"):
            log.warning("%s is set but no enabled plugin reads it", name)
    return Settings(values, declared)
