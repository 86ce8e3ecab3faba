"""What the admin shows and edits of the catalogue's apps besides their fields: prices per
country, their history as a table and a chart, and a form that records a new price.

An app is recognised by the API's own links to its price histories (``_links.price_history``,
one per country), so these extras follow the catalogue's HTTP API, not its code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The document key of the prices per country, each with its ``price_story`` newest first.
PRICES = "prices"
#: The inputs of the new-price form: the values of a price entry a user sets.
PRICE_INPUTS = ("price", "initial_price", "discount")
CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 360, 120, 8


def history_links(document: Any) -> dict[str, str]:
    """Country -> the API path of its price history, when the document is an app."""
    links = document.get("_links", {}) if isinstance(document, dict) else {}
    found = links.get("price_history") if isinstance(links, dict) else None
    return dict(sorted(found.items())) if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Chart:
    """A price history drawn as an SVG step line: the points and the axis labels."""

    points: str
    low: float
    high: float
    first: str
    last: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def chart(story: list[dict[str, Any]]) -> Chart | None:
    """The chart of a price story (newest first, as the API gives it); None without prices."""
    entries = [e for e in reversed(story) if isinstance(e.get("price"), int | float)]
    if not entries:
        return None
    times = [parse_time(e["timestamp"]) for e in entries]
    prices = [float(e["price"]) for e in entries]
    start, end = times[0], max(times[-1], datetime.now(UTC))
    low, high = min(prices), max(prices)
    span = (end - start).total_seconds() or 1.0
    spread = (high - low) or 1.0
    inner_w = CHART_WIDTH - 2 * CHART_MARGIN
    inner_h = CHART_HEIGHT - 2 * CHART_MARGIN

    def x(moment: datetime) -> float:
        return CHART_MARGIN + inner_w * (moment - start).total_seconds() / span

    def y(price: float) -> float:
        return CHART_MARGIN + inner_h * (1 - (price - low) / spread)

    # A price holds until the next one: a step line, ending now.
    points = []
    for index, (moment, price) in enumerate(zip(times, prices, strict=True)):
        until = times[index + 1] if index + 1 < len(times) else end
        points += [(x(moment), y(price)), (x(until), y(price))]
    return Chart(
        " ".join(f"{px:.1f},{py:.1f}" for px, py in points),
        low,
        high,
        times[0].date().isoformat(),
        times[-1].date().isoformat(),
    )


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_entry(form: dict[str, str]) -> dict[str, Any]:
    """A price entry from the new-price form, stamped now; values that do not parse are sent
    as typed, for the API to name what is wrong."""
    entry: dict[str, Any] = {}
    for name in PRICE_INPUTS:
        raw = form.get(name, "").strip()
        try:
            entry[name] = int(raw) if name == "discount" else float(raw)
        except ValueError:
            entry[name] = raw
    entry["timestamp"] = datetime.now(UTC).isoformat()
    return entry


def price_errors(errors: dict[str, list[str]], country: str) -> dict[str, list[str]]:
    """The API's messages about the new entry of ``country``, by input; the others of that
    country under ``_schema``."""
    prefix = f"{PRICES}.{country}."
    found: dict[str, list[str]] = {}
    for path, messages in errors.items():
        if not path.startswith(prefix):
            continue
        last = path.rsplit(".", 1)[-1]
        key = last if f"price_story.0.{last}" in path and last in PRICE_INPUTS else "_schema"
        found.setdefault(key, []).extend(messages)
    return found
