"""A client generated from the served OpenAPI document with openapi-python-client, as most API
consumers make one: it generates without warnings and a whole scenario runs through its code
only, every answer parsed into its models, errors into Problem."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from servers import Server, cli, token

PACKAGE = "restplug_generated"


def generate(tmp_path: Path, url: str) -> None:
    (tmp_path / "openapi.json").write_bytes(httpx.get(f"{url}/openapi.json").content)
    bin_dir = Path(sys.executable).parent
    generator = shutil.which("openapi-python-client", path=str(bin_dir))
    assert generator, "openapi-python-client is not installed (pip install -e '.[test]')"
    run = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        # The generator formats its output with ruff, found on PATH.
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "Warning" not in output, output


def test_a_generated_client_drives_the_whole_api(tmp_path: Path) -> None:
    assert cli(tmp_path, "demo-data", "--count", "60").returncode == 0
    server = Server(tmp_path).start()
    sys.path.insert(0, str(tmp_path))
    try:
        generate(tmp_path, server.url)
        scenario(server.url)
    finally:
        server.stop()
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def scenario(url: str) -> None:
    get = importlib.import_module
    models = get(f"{PACKAGE}.models")
    client_module = get(PACKAGE)
    reader = client_module.Client(base_url=url)
    writer = client_module.AuthenticatedClient(base_url=url, token=token("backend/*"))
    list_apps = get(f"{PACKAGE}.api.apps.get_api_v1_apps")
    app_detail = get(f"{PACKAGE}.api.apps.get_api_v1_apps_id")
    create_app = get(f"{PACKAGE}.api.apps.post_api_v1_apps")
    patch_app = get(f"{PACKAGE}.api.apps.patch_api_v1_apps_id")
    delete_app = get(f"{PACKAGE}.api.apps.delete_api_v1_apps_id")
    history = get(f"{PACKAGE}.api.apps.get_api_v1_apps_id_prices_country")
    package = get(f"{PACKAGE}.api.package.post_api_v1_package")
    tasks = {name: get(f"{PACKAGE}.api.tasks.{name}_api_v1_tasks") for name in ("get", "post")}
    task_item = {n: get(f"{PACKAGE}.api.tasks.{n}_api_v1_tasks_id") for n in ("get", "patch")}

    # A list with one filter: only matching items, and some of them.
    dlc = list_apps.sync(client=reader, type_=models.GetApiV1AppsType.DLC)
    assert isinstance(dlc, models.AppPage) and dlc.total and dlc.items
    assert {item.type_.value for item in dlc.items} == {"dlc"}
    # A list-valued filter, which the generated code sends as one parameter per value.
    either = list_apps.sync(
        client=reader,
        type_in=[models.GetApiV1AppsTypeInItem.DLC, models.GetApiV1AppsTypeInItem.DEMO],
    )
    assert isinstance(either, models.AppPage), either
    assert {item.type_.value for item in either.items} == {"dlc", "demo"}

    # Three cursor pages, in name order, without overlap.
    seen: list[str] = []
    page = list_apps.sync(client=reader, size=5, order_by=models.GetApiV1AppsOrderBy.NAME)
    for _ in range(3):
        assert isinstance(page, models.AppPage) and len(page.items) == 5
        seen += [item.name for item in page.items]
        cursor = page.next_cursor
        page = list_apps.sync(
            client=reader, size=5, order_by=models.GetApiV1AppsOrderBy.NAME, cursor=cursor
        )
    assert seen == sorted(seen) and len(set(seen)) == 15

    # Detail, create, merge patch with If-Match, delete.
    first = app_detail.sync(id=dlc.items[0].id, client=reader)
    assert isinstance(first, models.AppRead) and first.field_links.price_history
    assert isinstance(first.platforms.windows, bool)  # guaranteed on reads, never Unset
    body = models.App.from_dict({"id": 900001, "name": "Generated", "type": "game"})
    created = create_app.sync_detailed(client=writer, body=body)
    assert created.status_code == 201 and isinstance(created.parsed, models.AppRead)
    assert created.parsed.total_recommendations == 0
    patch = models.AppPatch.from_dict({"name": "Patched", "is_free": True})
    patched = patch_app.sync_detailed(
        id=900001, client=writer, body=patch, if_match=created.headers["ETag"]
    )
    assert isinstance(patched.parsed, models.AppRead) and patched.parsed.name == "Patched"
    stale = patch_app.sync(id=900001, client=writer, body=patch, if_match=created.headers["ETag"])
    assert isinstance(stale, models.Problem) and stale.status == 412
    deleted = delete_app.sync_detailed(id=900001, client=writer, if_match=patched.headers["ETag"])
    assert deleted.status_code == 204
    missing = app_detail.sync(id=900001, client=reader)
    assert isinstance(missing, models.Problem) and missing.status == 404

    # Package ingest and the price history it makes.
    scraped = {
        "id": 900002,
        "name": "Scraped",
        "type": "game",
        "prices": {
            "US": {
                "currency": "USD",
                "price": 9.99,
                "initial_price": 19.99,
                "discount": 50,
                "is_available": True,
            }
        },
    }
    body = models.PackageRequest.from_dict({"apps": [scraped]})
    assert isinstance(body.apps[0], models.PackageApp)  # typed down to each app
    result = package.sync(client=writer, body=body)
    assert isinstance(result, models.PackageResult) and result.created == 1 and not result.rejected
    prices = history.sync(id=900002, country="US", client=reader)
    assert prices.total == 1 and prices.items[0].price == 9.99 and prices.currency == "USD"

    # Tasks: create, list, read, move on.
    task = tasks["post"].sync(
        client=writer, body=models.TaskCreate.from_dict({"type": "scrape", "payload": {"n": 1}})
    )
    assert isinstance(task, models.Task) and task.status.value == "pending"
    listed = tasks["get"].sync(client=writer, status=models.GetApiV1TasksStatus.PENDING)
    assert task.id in [item.id for item in listed.items]
    assert task_item["get"].sync(id=task.id, client=writer).created_at == task.created_at
    running = task_item["patch"].sync(
        id=task.id, client=writer, body=models.TaskPatch.from_dict({"status": "running"})
    )
    assert isinstance(running, models.Task) and running.status.value == "running"
    refused = task_item["patch"].sync(
        id=task.id, client=writer, body=models.TaskPatch.from_dict({"status": "pending"})
    )
    assert isinstance(refused, models.Problem) and refused.status == 409
