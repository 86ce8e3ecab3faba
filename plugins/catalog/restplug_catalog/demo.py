"""Deterministic, realistic-looking demo data for the game catalogue.

Every app document is derived from its own RNG seeded with ``f"{seed}:{app_id}"`` (string seeds
are hashed with SHA-512 by :mod:`random`, so they do not depend on ``PYTHONHASHSEED``).  App ``k``
is therefore identical whether 100 or 10,000 apps are generated.  Nothing reads the clock: when
``now`` is not given, :data:`DEFAULT_NOW` is used.

Making an app costs about as much CPU as storing it, so ``restplug demo-data`` makes them in a
process of its own (:func:`generate_apps_ahead`): on one process the two share one core (the
GIL), and the writer waits for the generator at every turn of it.
"""

from __future__ import annotations

import collections
import multiprocessing
import random
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
EARLIEST_RELEASE = date(2003, 1, 1)

WELL_KNOWN: dict[int, tuple[str, bool]] = {  # id -> (name, is_free)
    1: ("The Witcher 3: Wild Hunt", False),
    2: ("Cyberpunk 2077", False),
    3: ("Hollow Knight", False),
    4: ("Stardew Valley", False),
    5: ("Portal 2", False),
    6: ("Counter-Strike 2", True),
    7: ("Terraria", False),
    8: ("Hades", False),
    9: ("Celeste", False),
    10: ("Disco Elysium", False),
}

APP_TYPES = ("game", "dlc", "demo", "soundtrack", "software", "video")
APP_TYPE_WEIGHTS = (70, 15, 5, 5, 3, 2)

GENRES = (
    "Action", "Adventure", "RPG", "Strategy", "Simulation", "Indie", "Casual",
    "Sports", "Racing", "Puzzle", "Horror", "Platformer", "Shooter",
)  # fmt: skip
CATEGORIES = (
    "Single-player", "Multi-player", "Co-op", "Online PvP", "Steam Achievements",
    "Full controller support", "Cloud Saves", "VR Support",
)  # fmt: skip

ADJECTIVES = (
    "Stellar", "Crimson", "Shadow", "Iron", "Silent", "Hollow", "Eternal", "Broken", "Neon",
    "Frozen", "Savage", "Ancient", "Cursed", "Golden", "Lost", "Wild", "Forgotten", "Burning",
    "Hidden", "Last", "Dark", "Infinite", "Quantum", "Rusty", "Electric", "Sacred", "Fallen",
    "Phantom", "Radiant", "Twisted", "Velvet", "Obsidian", "Emerald", "Lunar", "Solar", "Arcane",
    "Feral", "Midnight", "Scarlet", "Silver", "Tiny", "Mighty", "Brave", "Rogue", "Pixel",
    "Cosmic", "Hyper", "Grim", "Bitter", "Distant", "Glass", "Sunken", "Restless", "Boundless",
    "Clockwork", "Atomic", "Wandering", "Endless", "Spectral", "Thunder", "Ember", "Jade",
    "Copper", "Hollowed",
)  # fmt: skip
NOUNS = (
    "Drift", "Legends", "Tide", "Knight", "Frontier", "Kingdom", "Protocol", "Horizon", "Empire",
    "Odyssey", "Requiem", "Dungeon", "Harvest", "Outpost", "Echoes", "Souls", "Rebellion",
    "Colony", "Circuit", "Voyage", "Siege", "Saga", "Reign", "Abyss", "Garden", "Arena",
    "Citadel", "Wasteland", "Descent", "Uprising", "Chronicles", "Tactics", "Racers", "Tycoon",
    "Survivors", "Heroes", "Realms", "Tales", "Hunters", "Machines", "Islands", "Depths",
    "Skies", "Storm", "Legacy", "Dominion", "Nexus", "Valley", "Crown", "Oath", "Labyrinth",
    "Station", "Expedition", "Covenant", "Vanguard", "Wanderer", "Bastion", "Rift", "Harbor",
    "Engine", "Frontline", "Paradox", "Sanctum", "Grove",
)  # fmt: skip
PLACES = (
    "Sea", "Moon", "North", "Void", "Forest", "Mountain", "Sands", "Stars", "Deep", "Spire",
    "Marsh", "Desert", "Tundra", "Archipelago", "Underworld", "Highlands",
)  # fmt: skip
NUMERALS = ("II", "III", "IV", "V", "VI", "VII", "VIII", "IX")
EDITIONS = (
    "Remastered", "Definitive Edition", "Deluxe", "Reloaded", "Anniversary Edition",
    "Director's Cut", "Gold Edition", "HD", "Redux", "Enhanced Edition",
)  # fmt: skip
DLC_SUFFIXES = (
    "Season Pass", "Expansion Pass", "Deluxe Upgrade", "Cosmetic Pack", "Digital Artbook",
    "Soundtrack & Artbook Bundle", "Supporter Pack", "Character Pack",
)  # fmt: skip
SOFTWARE_NOUNS = ("Studio", "Paint", "Engine", "Editor", "Recorder", "Wallpaper", "Mixer", "Maker")

MOODS = (
    "cozy", "brutal", "atmospheric", "fast-paced", "hand-crafted", "relaxing", "challenging",
    "darkly comic", "story-rich", "minimalist",
)  # fmt: skip
SETTINGS = (
    "a post-apocalyptic wasteland", "a sprawling fantasy kingdom", "a neon-lit megacity",
    "the depths of space", "a haunted Victorian manor", "a sleepy seaside village",
    "a café-filled Parisian quarter", "the frozen north", "a crumbling orbital station",
    "the streets of São Paulo", "a forgotten underground city",
)  # fmt: skip
FEATURES = (
    "procedurally generated levels", "4-player online co-op", "over 100 hours of content",
    "a branching story with multiple endings", "full mod support", "a dynamic day-night cycle",
    "Pokémon-style creature collecting", "a cozy café run by a naïve android",
    "déjà vu time loops", "über-hard boss fights", "hand-drawn art with a naïve charm",
    "a soundtrack recorded in a Montréal café",
)  # fmt: skip
TYPE_LEADS = {
    "dlc": "New content for {base}.",
    "demo": "Play the opening chapter of {base} for free.",
    "soundtrack": "The original soundtrack of {base}, featuring {tracks} tracks.",
    "video": "A behind-the-scenes documentary about the making of {base}.",
    "software": "A creative tool for makers of {genre} games. Exports to every major engine.",
}

STUDIO_WORDS = (
    "Red Moon", "Pixel Forge", "Northlight", "Blue Fox", "Iron Oak", "Starfall", "Tiny Lantern",
    "Night Owl", "Copper Crow", "Paper Tiger", "Åsgard", "Café Noir", "Mélange", "Kōbō",
    "Brave Wolf", "Glass Cannon", "Lucky Penny", "Grey Harbor", "Quiet Storm", "Hexagon",
)  # fmt: skip
STUDIO_SUFFIXES = (
    "Studios", "Games", "Interactive", "Entertainment", "Softworks", "Labs", "Works", "Collective",
)  # fmt: skip
PUBLISHERS = (
    "Bright Harbor Publishing", "Moonlit Media", "Northwind Digital", "Grand Arc",
    "Cobalt Publishing", "Señor Pixel", "Kite & Key", "Evergreen Games", "Monolith Partners",
    "Zürich Digital",
)  # fmt: skip

COUNTRY_CURRENCIES = {
    "US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "RU": "RUB", "BR": "BRL", "JP": "JPY",
    "CN": "CNY", "TR": "TRY", "PL": "PLN", "KZ": "KZT", "UA": "UAH", "IN": "INR", "CA": "CAD",
    "AU": "AUD",
}  # fmt: skip
USD_RATES = {  # rough regional-pricing rates, not market rates
    "USD": 1.0, "GBP": 0.8, "EUR": 0.92, "RUB": 45.0, "BRL": 2.9, "JPY": 140.0, "CNY": 4.3,
    "TRY": 17.0, "PLN": 2.6, "KZT": 230.0, "UAH": 18.0, "INR": 40.0, "CAD": 1.3, "AUD": 1.45,
}  # fmt: skip
WHOLE_CURRENCIES = frozenset({"JPY", "KZT", "INR"})
GAME_USD_PRICES = (4.99, 9.99, 14.99, 19.99, 24.99, 29.99, 39.99, 49.99, 59.99, 69.99)
ADDON_USD_PRICES = (4.99, 5.99, 7.99, 9.99, 14.99)
DISCOUNTS = (10, 15, 20, 25, 30, 33, 40, 50, 60, 66, 75, 80, 85, 90)
LONG_HISTORY_EVERY = 97

TASK_TYPES = ("scrape_app", "scrape_prices", "scrape_reviews")

#: Apps made per call in the generating process, and calls kept in flight ahead of the reader.
AHEAD_CHUNK = 500
AHEAD_CHUNKS = 4
#: Fewer apps than this are made in the caller's process: starting another costs more.
AHEAD_MIN = 5_000


def generate_apps(count: int, seed: int = 0, *, now: datetime | None = None) -> Iterator[dict]:
    """Yield `count` app documents, ids 1..count, identical for the same (count, seed, now).

    A naive ``now`` is taken as UTC; ``None`` means :data:`DEFAULT_NOW`.
    """
    now = _checked_now(now)
    for app_id in range(1, count + 1):
        yield _app(app_id, random.Random(f"{seed}:{app_id}"), now)


def generate_apps_ahead(
    count: int, seed: int = 0, *, now: datetime | None = None
) -> Iterator[dict]:
    """The apps of :func:`generate_apps`, the same ones in the same order, made in a process of
    its own a few chunks ahead of the reader (below :data:`AHEAD_MIN` apps, in this one)."""
    now = _checked_now(now)
    if count < AHEAD_MIN:
        yield from generate_apps(count, seed, now=now)
        return
    # spawn, not fork: the caller runs threads (the store's), which a fork would copy mid-step.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        starts = iter(range(1, count + 1, AHEAD_CHUNK))
        chunks: collections.deque[Future[list[dict]]] = collections.deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                stop = min(start + AHEAD_CHUNK, count + 1)
                chunks.append(pool.submit(_apps_between, start, stop, seed, now))

        for _ in range(AHEAD_CHUNKS):
            submit()
        while chunks:
            apps = chunks.popleft().result()
            submit()
            yield from apps
    finally:
        pool.shutdown(cancel_futures=True)


def _apps_between(start: int, stop: int, seed: int, now: datetime) -> list[dict]:
    """Apps ``start`` to ``stop - 1``: one chunk, in the generating process."""
    return [_app(app_id, random.Random(f"{seed}:{app_id}"), now) for app_id in range(start, stop)]


def as_scraped(app: dict, price_change: float = 0.0) -> dict:
    """A demo app as a scraper worker sends it in a package: its latest price per country,
    raised by ``price_change`` (to make every app of a package an update)."""
    prices = {
        country: {
            "currency": value["currency"],
            "price": round(value["price_story"][0]["price"] + price_change, 2),
            "initial_price": value["price_story"][0]["initial_price"],
            "discount": value["price_story"][0]["discount"],
            "is_available": value["is_available"],
        }
        for country, value in app["prices"].items()
    }
    return {**app, "prices": prices}


def generate_tasks(count: int, seed: int = 0, *, max_app_id: int = 100) -> Iterator[dict]:
    """Yield `count` scraping tasks for apps 1..max_app_id; task i is independent of `count`."""
    for index in range(count):
        rng = random.Random(f"task:{seed}:{index}")
        countries = rng.sample(list(COUNTRY_CURRENCIES), rng.randint(1, 5))
        yield {
            "type": rng.choice(TASK_TYPES),
            "payload": {"app_id": rng.randint(1, max_app_id), "countries": sorted(countries)},
        }


def _checked_now(now: datetime | None) -> datetime:
    now = _as_utc(now)
    if now.date() <= EARLIEST_RELEASE:
        raise ValueError(f"now must be after {EARLIEST_RELEASE}")
    return now


def _as_utc(now: datetime | None) -> datetime:
    if now is None:
        return DEFAULT_NOW
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _app(app_id: int, rng: random.Random, now: datetime) -> dict:
    if app_id in WELL_KNOWN:
        name, is_free = WELL_KNOWN[app_id]
        base = name
        app_type, recommendations = "game", rng.randint(100_000, 1_000_000)
    else:
        app_type = rng.choices(APP_TYPES, APP_TYPE_WEIGHTS)[0]
        base = _title(rng)
        name = _name(rng, app_type, base)
        is_free = app_type == "demo" or rng.random() < 0.05
        recommendations = int(rng.lognormvariate(4.0, 2.2))
    genres = rng.sample(GENRES, rng.randint(1, 3))
    release = _release_date(rng, now)
    developers = _studios(rng)
    return {
        "id": app_id,
        "name": name,
        "type": app_type,
        "is_free": is_free,
        "short_description": _description(rng, app_type, base, genres[0]),
        "developers": developers,
        "publishers": _publishers(rng, developers),
        "genres": genres,
        "categories": _subset(rng, CATEGORIES, 1, 4),
        "platforms": _platforms(rng),
        "release_date": release.isoformat(),
        "total_recommendations": recommendations,
        "prices": _prices(rng, app_id, app_type, is_free, release, now),
    }


def _title(rng: random.Random) -> str:
    adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
    pattern = rng.random()
    if pattern < 0.45:
        return f"{adjective} {noun}: {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    if pattern < 0.65:
        return f"{adjective} {noun} {rng.choice(NUMERALS)}"
    if pattern < 0.80:
        return f"{adjective} {noun} {rng.choice(EDITIONS)}"
    if pattern < 0.95:
        return f"{noun} of the {adjective} {rng.choice(PLACES)}"
    return f"{adjective} {noun}"


def _name(rng: random.Random, app_type: str, base: str) -> str:
    """The store name of an app of `app_type` derived from (or, for software, instead of) `base`."""
    if app_type == "software":
        return f"{rng.choice(ADJECTIVES)} {rng.choice(SOFTWARE_NOUNS)} {rng.randint(2, 12)}"
    if app_type == "dlc":
        return f"{base} - {rng.choice(DLC_SUFFIXES)}"
    if app_type == "demo":
        return f"{base} Demo"
    if app_type == "soundtrack":
        return f"{base} Original Soundtrack"
    if app_type == "video":
        return f"The Making of {base}"
    return base


def _description(rng: random.Random, app_type: str, base: str, genre: str) -> str:
    genre_word = genre if genre == "RPG" else genre.lower()
    if app_type == "software":
        return TYPE_LEADS["software"].format(genre=genre_word)
    sentences = [f"This {rng.choice(MOODS)} {genre_word} game is set in {rng.choice(SETTINGS)}."]
    if app_type in TYPE_LEADS:
        sentences.insert(0, TYPE_LEADS[app_type].format(base=base, tracks=rng.randint(8, 40)))
    if rng.random() < 0.5:
        sentences.append(f"Features {rng.choice(FEATURES)}.")
    return " ".join(sentences)


def _studios(rng: random.Random) -> list[str]:
    names = (
        f"{rng.choice(STUDIO_WORDS)} {rng.choice(STUDIO_SUFFIXES)}"
        for _ in range(rng.choice((1, 1, 1, 2)))
    )
    return list(dict.fromkeys(names))  # drop an (unlikely) duplicate, keep order


def _publishers(rng: random.Random, developers: list[str]) -> list[str]:
    if rng.random() < 0.4:  # self-published
        return developers[:1]
    return rng.sample(PUBLISHERS, rng.choice((1, 1, 1, 2)))


def _subset(rng: random.Random, items: tuple[str, ...], low: int, high: int) -> list[str]:
    chosen = set(rng.sample(items, rng.randint(low, high)))
    return [item for item in items if item in chosen]


def _platforms(rng: random.Random) -> dict[str, bool]:
    mac, linux = rng.random() < 0.3, rng.random() < 0.2
    return {"windows": rng.random() < 0.98 or not (mac or linux), "mac": mac, "linux": linux}


def _release_date(rng: random.Random, now: datetime) -> date:
    """A date in [EARLIEST_RELEASE, now's date - 1 day], skewed towards recent years."""
    span = (now.date() - EARLIEST_RELEASE).days
    return EARLIEST_RELEASE + timedelta(days=min(int(span * rng.betavariate(2, 1)), span - 1))


def _prices(
    rng: random.Random, app_id: int, app_type: str, is_free: bool, release: date, now: datetime
) -> dict[str, dict]:
    usd = (
        0.0 if is_free else rng.choice(GAME_USD_PRICES if app_type == "game" else ADDON_USD_PRICES)
    )
    timeline = _timeline(rng, app_id, is_free, release, now)
    prices = {}
    for country in _countries(rng):
        currency = COUNTRY_CURRENCIES[country]
        initial = _local_price(usd, currency)
        prices[country] = {
            "currency": currency,
            "is_available": rng.random() < 0.92,
            "price_story": [
                {
                    "price": round(initial * (100 - discount) / 100, 2),
                    "initial_price": initial,
                    "discount": discount,
                    "timestamp": timestamp,
                }
                for timestamp, discount in timeline
            ],
        }
    return prices


def _countries(rng: random.Random) -> list[str]:
    count = rng.randint(3, 10)
    others = [country for country in COUNTRY_CURRENCIES if country != "US"]
    if rng.random() < 0.95:
        chosen = {"US", *rng.sample(others, count - 1)}
    else:
        chosen = set(rng.sample(others, count))
    return [country for country in COUNTRY_CURRENCIES if country in chosen]


def _local_price(usd: float, currency: str) -> float:
    if usd == 0:
        return 0.0
    amount = usd * USD_RATES[currency]
    if currency in WHOLE_CURRENCIES:
        return float(round(amount, -1))
    return max(round(round(amount) - 0.01, 2), 0.99)


def _timeline(
    rng: random.Random, app_id: int, is_free: bool, release: date, now: datetime
) -> list[tuple[str, int]]:
    """(timestamp, discount) pairs shared by all countries, newest first.

    Read oldest first, the story starts at full price, then each change either starts a sale,
    ends it or changes its discount, so consecutive entries differ.  Free apps never change: one
    entry, or a long run of zeros for long-history ids.
    """
    if app_id % LONG_HISTORY_EVERY == 0:
        size = rng.randint(60, 120)
    else:
        size = 1 if is_free else rng.randint(1, 8)
    start = int(datetime(release.year, release.month, release.day, tzinfo=UTC).timestamp())
    stamps = sorted(rng.sample(range(start, int(now.timestamp()) + 1), size))
    discounts = [0]
    for _ in range(size - 1):
        if is_free or (discounts[-1] and rng.random() < 0.7):
            discounts.append(0)
        else:
            discounts.append(rng.choice([d for d in DISCOUNTS if d != discounts[-1]]))
    return [
        (time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(stamp)), discount)
        for stamp, discount in zip(reversed(stamps), reversed(discounts), strict=True)
    ]
