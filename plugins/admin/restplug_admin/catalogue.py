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
ENTRY_INPUTS = ("price", "initial_price", "discount")
#: Its inputs about the country: what the messages of the API are shown next to.
COUNTRY_INPUTS = ("country", "currency", "is_available")
CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 360, 120, 8


def history_links(document: Any) -> dict[str, str] | None:
    """Country -> the API path of its price history when the document is an app (none for an
    app without prices yet); None for any other document."""
    links = document.get("_links") if isinstance(document, dict) else None
    found = links.get("price_history") if isinstance(links, dict) else None
    return dict(sorted(found.items())) if isinstance(found, dict) else None


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


def country_prices(form: dict[str, str], story: list[dict[str, Any]]) -> dict[str, Any]:
    """A country's prices from the new-price form: its currency and availability, and a new
    newest entry of its price ``story``, stamped now.  Values that do not parse are sent as
    typed, for the API to name what is wrong."""
    entry: dict[str, Any] = {}
    for name in ENTRY_INPUTS:
        raw = form.get(name, "").strip()
        try:
            entry[name] = int(raw) if name == "discount" else float(raw)
        except ValueError:
            entry[name] = raw
    entry["timestamp"] = datetime.now(UTC).isoformat()
    return {
        "currency": form.get("currency", "").strip(),
        "is_available": form.get("is_available") == "true",
        "price_story": [entry, *story],
    }


def price_errors(errors: dict[str, list[str]], country: str) -> dict[str, list[str]]:
    """The API's messages about the prices of ``country``, by input of the new-price form
    (``_schema`` for the others)."""
    prefix = f"{PRICES}.{country}."
    found: dict[str, list[str]] = {}
    for path, messages in errors.items():
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        if rest == "key":
            key = "country"
        elif rest.startswith("value.price_story.0.") and rest.rsplit(".", 1)[-1] in ENTRY_INPUTS:
            key = rest.rsplit(".", 1)[-1]
        elif rest.removeprefix("value.") in COUNTRY_INPUTS:
            key = rest.removeprefix("value.")
        else:
            key = "_schema"
        found.setdefault(key, []).extend(messages)
    return found
