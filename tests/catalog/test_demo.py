import json
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from servers import cli

from restplug_catalog.demo import (
    AHEAD_CHUNK,
    AHEAD_MIN,
    APP_TYPES,
    CATEGORIES,
    COUNTRY_CURRENCIES,
    DEFAULT_NOW,
    GENRES,
    TASK_TYPES,
    WHOLE_CURRENCIES,
    generate_apps,
    generate_apps_ahead,
    generate_tasks,
)
from restplug_catalog.schemas import AppSchema

KEYS = {
    "id", "name", "type", "is_free", "short_description", "developers", "publishers", "genres",
    "categories", "platforms", "release_date", "total_recommendations", "prices",
}  # fmt: skip
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S+00:00"


@pytest.fixture(scope="module")
def apps() -> list[dict]:
    return list(generate_apps(1000, seed=7))


def _str_list(value: object, low: int, high: int) -> bool:
    return (
        isinstance(value, list)
        and low <= len(value) <= high
        and all(isinstance(item, str) and item for item in value)
    )


def _check_app(app: dict, now: datetime = DEFAULT_NOW) -> None:
    assert set(app) == KEYS
    assert isinstance(app["name"], str) and app["name"]
    assert app["type"] in APP_TYPES
    assert isinstance(app["is_free"], bool)
    assert isinstance(app["short_description"], str) and app["short_description"].endswith(".")
    assert _str_list(app["developers"], 1, 2)
    assert _str_list(app["publishers"], 1, 2)
    assert len(set(app["developers"])) == len(app["developers"])
    assert len(set(app["publishers"])) == len(app["publishers"])
    assert 1 <= len(app["genres"]) <= 3 and set(app["genres"]) <= set(GENRES)
    assert len(set(app["genres"])) == len(app["genres"])
    assert 1 <= len(app["categories"]) <= 4 and set(app["categories"]) <= set(CATEGORIES)
    assert len(set(app["categories"])) == len(app["categories"])
    assert set(app["platforms"]) == {"windows", "mac", "linux"}
    assert all(isinstance(flag, bool) for flag in app["platforms"].values())
    assert any(app["platforms"].values())
    release = date.fromisoformat(app["release_date"])
    assert date(2003, 1, 1) <= release <= now.date()
    recommendations = app["total_recommendations"]
    assert isinstance(recommendations, int) and recommendations >= 0

    assert 3 <= len(app["prices"]) <= 10 and set(app["prices"]) <= set(COUNTRY_CURRENCIES)
    release_start = datetime(release.year, release.month, release.day, tzinfo=UTC)
    for country, offer in app["prices"].items():
        assert set(offer) == {"currency", "is_available", "price_story"}
        assert offer["currency"] == COUNTRY_CURRENCIES[country]
        assert isinstance(offer["is_available"], bool)
        story = offer["price_story"]
        expected_size = (60, 120) if app["id"] % 97 == 0 else (1, 8)
        assert expected_size[0] <= len(story) <= expected_size[1]
        stamps = []
        for entry in story:
            assert set(entry) == {"price", "initial_price", "discount", "timestamp"}
            assert isinstance(entry["price"], float) and isinstance(entry["initial_price"], float)
            assert isinstance(entry["discount"], int) and 0 <= entry["discount"] <= 90
            initial = entry["initial_price"]
            assert entry["price"] == round(initial * (100 - entry["discount"]) / 100, 2)
            if app["is_free"]:
                assert initial == entry["price"] == 0.0 and entry["discount"] == 0
            else:
                assert initial > 0
                if offer["currency"] in WHOLE_CURRENCIES:
                    assert initial == int(initial)
                else:
                    assert f"{initial:.2f}".endswith(".99")
            stamp = datetime.strptime(entry["timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            assert release_start <= stamp <= now
            stamps.append(stamp)
        assert all(newer > older for newer, older in pairwise(stamps))


def test_count_and_ids() -> None:
    assert [app["id"] for app in generate_apps(25)] == list(range(1, 26))
    assert list(generate_apps(0)) == []


def test_same_arguments_give_same_output() -> None:
    assert list(generate_apps(200, seed=3)) == list(generate_apps(200, seed=3))
    assert list(generate_tasks(20, seed=3)) == list(generate_tasks(20, seed=3))


def test_app_does_not_depend_on_count(apps: list[dict]) -> None:
    assert list(generate_apps(100, seed=7)) == apps[:100]


def test_apps_made_in_another_process_are_the_same_apps() -> None:
    # Past the threshold, so a process of its own makes them; a last chunk cut short.
    count = AHEAD_MIN + AHEAD_CHUNK // 2
    later = datetime(2027, 6, 1, tzinfo=UTC)
    assert list(generate_apps_ahead(count, seed=3, now=later)) == list(
        generate_apps(count, seed=3, now=later)
    )
    assert list(generate_apps_ahead(40, seed=3)) == list(generate_apps(40, seed=3))


def test_seed_and_now_change_output(apps: list[dict]) -> None:
    assert list(generate_apps(50, seed=8)) != apps[:50]
    later = datetime(2027, 6, 1, tzinfo=UTC)
    assert list(generate_apps(50, seed=7, now=later)) != apps[:50]


def test_default_now_is_fixed() -> None:
    assert list(generate_apps(30)) == list(generate_apps(30, now=DEFAULT_NOW))
    naive = datetime(2026, 11, 1)
    shifted = datetime(2026, 11, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert list(generate_apps(30, now=naive)) == list(generate_apps(30))
    assert list(generate_apps(30, now=shifted)) == list(generate_apps(30))


def test_documents_have_the_documented_shape(apps: list[dict]) -> None:
    for app in apps:
        _check_app(app)


def test_custom_now_bounds_dates() -> None:
    now = datetime(2010, 3, 15, 12, 30, tzinfo=UTC)
    for app in generate_apps(300, seed=1, now=now):
        _check_app(app, now)


def test_now_before_catalogue_start_is_rejected() -> None:
    with pytest.raises(ValueError):
        next(generate_apps(1, now=datetime(2003, 1, 1, 12, tzinfo=UTC)))


def test_documents_are_plain_json(apps: list[dict]) -> None:
    assert json.loads(json.dumps(apps)) == apps


def test_documents_are_in_the_schema_s_own_form(apps: list[dict]) -> None:
    # demo-data writes them without validating again (upsert_all's validated=True).
    schema = AppSchema()
    for app in apps:
        assert schema.dump(schema.load(app)) == app


def test_well_known_names() -> None:
    names = [app["name"] for app in generate_apps(10, seed=123)]
    assert names == [
        "The Witcher 3: Wild Hunt",
        "Cyberpunk 2077",
        "Hollow Knight",
        "Stardew Valley",
        "Portal 2",
        "Counter-Strike 2",
        "Terraria",
        "Hades",
        "Celeste",
        "Disco Elysium",
    ]


def test_distributions(apps: list[dict]) -> None:
    types = Counter(app["type"] for app in apps)
    assert types["game"] > len(apps) / 2
    assert types.most_common(1)[0][0] == "game" and types["dlc"] > types["video"]
    assert 0.05 < sum(app["is_free"] for app in apps) / len(apps) < 0.15
    recommendations = Counter(app["total_recommendations"] for app in apps)
    assert any(n > 1 for n in recommendations.values())  # ties
    assert max(recommendations) > 100 * sorted(recommendations.elements())[len(apps) // 2]
    assert 0.9 < sum("US" in app["prices"] for app in apps) / len(apps) < 1
    long_histories = [
        app for app in apps if len(next(iter(app["prices"].values()))["price_story"]) >= 60
    ]
    assert len(long_histories) == len(apps) // 97
    assert len({app["name"] for app in apps}) > 0.98 * len(apps)
    assert any(not app["short_description"].isascii() for app in apps)  # diacritics demo


def test_tasks() -> None:
    tasks = list(generate_tasks(30, seed=2, max_app_id=50))
    assert len(tasks) == 30
    assert list(generate_tasks(5, seed=2, max_app_id=50)) == tasks[:5]
    for task in tasks:
        assert set(task) == {"type", "payload"} and task["type"] in TASK_TYPES
        assert set(task["payload"]) == {"app_id", "countries"}
        assert 1 <= task["payload"]["app_id"] <= 50
        countries = task["payload"]["countries"]
        assert countries and set(countries) <= set(COUNTRY_CURRENCIES)
    assert len({task["type"] for task in tasks}) == len(TASK_TYPES)


def stored(tmp_path) -> dict[str, int]:
    """How many documents each collection of the store file holds."""
    with sqlite3.connect(tmp_path / "store.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        return {
            name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in ("apps", "tasks")
            if name in tables
        }


def test_demo_data_loads_apps_without_the_tasks_plugin(tmp_path):
    loaded = cli(tmp_path, "demo-data", "--count", "20", RESTPLUG_DISABLE_PLUGINS="catalog_tasks")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "loaded 20 apps"
    assert stored(tmp_path).get("tasks", 0) == 0


def test_demo_data_loads_each_plugin_s_data_once(tmp_path):
    loaded = cli(tmp_path, "demo-data", "--count", "20", "--seed", "4")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "loaded 20 apps, 20 tasks"
    assert stored(tmp_path) == {"apps": 20, "tasks": 20}
    # The same arguments again: the same documents, nothing written.
    again = cli(tmp_path, "demo-data", "--count", "20", "--seed", "4")
    assert again.stdout.strip() == "loaded 0 apps, 0 tasks"
    # --if-empty leaves a resource with documents alone, and fills the empty ones.
    more = cli(tmp_path, "demo-data", "--count", "30", "--if-empty")
    assert more.stdout.strip() == "loaded 0 apps, 0 tasks"
    assert stored(tmp_path) == {"apps": 20, "tasks": 20}


def test_demo_data_without_any_plugin_that_has_some_says_so(tmp_path):
    failed = cli(tmp_path, "demo-data", RESTPLUG_DISABLE_PLUGINS="catalog,catalog_tasks")
    assert failed.returncode == 2
    assert "no enabled plugin has demo data" in failed.stderr
