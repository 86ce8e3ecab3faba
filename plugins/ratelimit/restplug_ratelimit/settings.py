"""The plugin's environment variables: where budgets are counted, how large they are, and
which proxies may say who the client is."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from restplug import Setting, scheme_of, url

SCHEMES = ("memory", "redis", "rediss")
PERIODS = {"second": 1, "minute": 60, "hour": 3600}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds."""

    limit: int
    period: int
    unit: str

    def __str__(self) -> str:
        return f"{self.limit}/{self.unit}"


def rate(raw: str) -> Rate:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour)\s*", raw)
    if not match or int(match[1]) == 0:
        raise ValueError(
            "must be a positive number of requests per second, minute or hour, such as 600/minute"
        )
    return Rate(int(match[1]), PERIODS[match[2]], match[2])


def counter_url(raw: str) -> str:
    url(raw)
    if scheme_of(raw) not in SCHEMES:
        raise ValueError(f"choices: {', '.join(s + '://' for s in SCHEMES)}")
    return raw


def networks(raw: str) -> tuple[Network, ...]:
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"{part!r} is not an IP address or network such as 10.0.0.0/8"
            ) from None
    return tuple(found)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "RESTPLUG_RATELIMIT_URL",
        "memory://",
        counter_url,
        "where budgets are counted: memory:// (per process) or redis://host:port/db (shared)",
    ),
    Setting("RESTPLUG_RATELIMIT_READS", rate("3000/minute"), rate, "GET and HEAD requests"),
    Setting("RESTPLUG_RATELIMIT_SEARCHES", rate("600/minute"), rate, "GETs with search="),
    Setting("RESTPLUG_RATELIMIT_WRITES", rate("600/minute"), rate, "other methods"),
    Setting(
        "RESTPLUG_RATELIMIT_TRUSTED_PROXIES",
        (),
        networks,
        "proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed",
    ),
)
