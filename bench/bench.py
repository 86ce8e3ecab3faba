"""`make bench`: restplug served and driven by wrk, next to the limit and the store limit.

    .venv/bin/python bench/bench.py [--count 100000] [--seed 0] [--duration 10] [--warmup 3]
                                    [--connections 50] [--threads 2] [--out bench/results]
    .venv/bin/python bench/bench.py scale [--counts 10000,100000,1000000] ...

``run`` (the default) loads ``--count`` demo apps with ``restplug demo-data`` into
``var/bench-<count>-seed<seed>/`` (once: a later run with the same count and seed reuses the
files, and says so), copies them for the run (the run writes: package ingest), and then, for
each scenario of ``SCENARIOS``:

- restplug: ``restplug serve`` (one worker, ``memory://`` cache) driven by wrk, a warm-up run
  then a measured run; then the reads again on ``serve --workers 2`` with a ``redis-server``
  started here as the shared cache;
- the limit: a bare aiohttp handler answering the same pre-serialized bodies from a dict, in a
  process of its own, same wrk settings, run right after restplug's run of the scenario;
- the store limit of every scenario that bypasses the cache: the store and index calls its
  handler makes, run in a loop in this process without HTTP (``--connections`` at once).

It prints one table and writes it to ``--out`` (``<date>-N<count>.md`` and ``.json``, and
``latest.md``); the exit status is 1 when any answer was not 2xx/3xx or a socket failed.
``scale`` runs the list, search and cursor scenarios at each count (no limit) and writes one
table with the growth of their cost (``<date>-scale.md``/``.json``, ``latest-scale.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from bench_cache import accepts, free_port, redis_server, wait_until

from restplug import QueryTimeout
from restplug.app import Restplug
from restplug.http import dumps
from restplug.query import run_list
from restplug.stores.protocol import FindQuery
from restplug_catalog.demo import as_scraped, generate_apps

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESTPLUG = str(Path(sys.executable).with_name("restplug"))
WRK_SCRIPT = BENCH / "wrk.lua"
APPS = "/api/v1/apps"
LIST = f"{APPS}?type=game&order_by=-total_recommendations&size=20"
#: A word about one app in nine has (and the prefix of "darkly"): thousands of matches to rank.
WORD = "dark"
#: Details read through a warm cache are drawn from the first HOT ids: a hot set that the
#: default ``memory://`` cache (64 MiB) holds whole, warmed before the scenario.
HOT = 10_000
#: Apps per package, and how many apps the ingest scenarios send (at most the catalogue's size).
PACKAGE = 1_000
INGEST = 10_000
BYPASS = {"Cache-Control": "no-cache"}
JWT_SECRET = "bench-" + "s" * 48
#: Budgets no benchmark reaches: the rate limit plugin stays on and counts, never refuses.
UNLIMITED = "1000000000/hour"


@dataclass(frozen=True)
class Scenario:
    """One row: what wrk asks (a fixed path, or ``random`` ids under ``path``), how."""

    key: str
    title: str
    path: str
    random_ids: int = 0  # ids 1..random_ids appended to path; 0 for a fixed path
    bypass: bool = False  # sends Cache-Control: no-cache (the server honours it here)
    token: bool = False
    warm_ids: int = 0  # read every id 1..warm_ids once before the warm-up (a warm cache)

    @property
    def headers(self) -> dict[str, str]:
        return BYPASS if self.bypass else {}

    @property
    def store_limited(self) -> bool:
        return self.bypass


def scenarios(count: int, deep_cursor: str, shallow_cursor: str) -> list[Scenario]:
    """Every scenario of ``make bench`` on ``count`` apps; the cursors come from the store."""
    depth = deep_page(count) * 20
    return [
        Scenario(
            "detail_warm",
            "detail by random id, cache warm",
            f"{APPS}/",
            random_ids=min(count, HOT),
            warm_ids=min(count, HOT),
        ),
        Scenario(
            "detail_bypassed",
            "detail by random id, cache bypassed",
            f"{APPS}/",
            random_ids=count,
            bypass=True,
        ),
        Scenario(
            "list_cached", "list `type=game&order_by=-total_recommendations&size=20`, cached", LIST
        ),
        Scenario("list_bypassed", "the same list, bypassed, exact total", LIST, bypass=True),
        Scenario(
            "search_bypassed",
            f"`search={WORD}&size=20`, bypassed, total and relevance",
            f"{APPS}?search={WORD}&size=20",
            bypass=True,
        ),
        Scenario(
            "filters_bypassed",
            "`type=game&genres__in=RPG,Strategy&"
            "is_available_in_countries=US,DE`, bypassed, exact total",
            f"{APPS}?type=game&genres__in=RPG,Strategy&is_available_in_countries=US,DE&size=20",
            bypass=True,
        ),
        Scenario(
            "search_filter_bypassed",
            f"`search={WORD}&type=game`, bypassed, total",
            f"{APPS}?search={WORD}&type=game&size=20",
            bypass=True,
        ),
        Scenario(
            "cursor_shallow",
            "the list by cursor, page 2, bypassed, `count=none`",
            f"{LIST}&count=none&cursor={shallow_cursor}",
            bypass=True,
        ),
        Scenario(
            "cursor_deep",
            f"the list by cursor, {depth:,} deep, bypassed, `count=none`",
            f"{LIST}&count=none&cursor={deep_cursor}",
            bypass=True,
        ),
        Scenario(
            "page_deep",
            f"the list by `page={deep_page(count) + 1}` ({depth:,} deep), bypassed, `count=none`",
            f"{LIST}&count=none&page={deep_page(count) + 1}",
            bypass=True,
        ),
        Scenario(
            "protected",
            "`GET /api/v1/tasks` with a bearer token (`backend/tasks`)",
            "/api/v1/tasks?size=20",
            token=True,
        ),
    ]


def deep_page(count: int) -> int:
    """The number of 20-app pages before the deep pages: half of the catalogue."""
    return max(1, count // 40)


#: The reads measured again on ``serve --workers 2`` (Redis as the shared cache).
WORKERS_2 = ("detail_warm", "list_cached", "protected", "detail_bypassed", "list_bypassed")
#: What ``scale`` measures at each count.
SCALE = {
    "list_bypassed": "the list, bypassed, exact total",
    "search_bypassed": f"`search={WORD}&size=20`, bypassed, total and relevance",
    "cursor_shallow": "the list by cursor, page 2, `count=none`",
    "cursor_deep": "the list by cursor, half of N deep, `count=none`",
    "page_deep": "the list by `page`, half of N deep, `count=none`",
}


@dataclass
class Row:
    """One measured line of the table."""

    key: str
    title: str
    workers: int = 1
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    error_detail: str = ""
    rss_mb: float = 0.0
    limit_rps: float | None = None
    store_limit_ops: float | None = None
    store_limit_timeouts: int = 0
    apps_per_s: float | None = None
    one_worker_rps: float | None = None

    @property
    def to_limit(self) -> float | None:
        return self.rps / self.limit_rps if self.limit_rps else None

    @property
    def to_store_limit(self) -> float | None:
        return self.rps / self.store_limit_ops if self.store_limit_ops else None


@dataclass
class Options:
    count: int
    seed: int
    duration: float
    warmup: float
    connections: int
    threads: int
    out: Path
    var: Path
    workers_2: bool = True
    #: Store calls running at once for the store limit: enough to keep the store's reader
    #: threads and both CPUs busy; more would only queue (and meet the query timeout).
    store_concurrency: int = 8


# -- the catalogue ----------------------------------------------------------------------------


@dataclass
class Dataset:
    """The demo catalogue of one count and seed, generated once into ``directory``."""

    directory: Path
    count: int
    seed: int
    seconds: float = 0.0
    reused: bool = False

    @property
    def marker(self) -> Path:
        return self.directory / "dataset.json"

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.db*"))

    def environ(self, directory: Path) -> dict[str, str]:
        """A restplug configuration on the store and index files in ``directory``."""
        return {
            **os.environ,
            "RESTPLUG_STORE_URL": f"sqlite:///{directory}/store.db",
            "RESTPLUG_SEARCH_URL": f"sqlite:///{directory}/search.db",
            "RESTPLUG_CURSOR_SECRET": "bench-cursor-" + "c" * 32,
            "RESTPLUG_AUTH_JWT_SECRET": JWT_SECRET,
            "RESTPLUG_CACHE_CLIENT_BYPASS": "1",
            "RESTPLUG_RATELIMIT_READS": UNLIMITED,
            "RESTPLUG_RATELIMIT_SEARCHES": UNLIMITED,
            "RESTPLUG_RATELIMIT_WRITES": UNLIMITED,
        }

    def prepare(self) -> None:
        """Generate the catalogue, unless a complete one of this count and seed is there."""
        if self.marker.exists():
            self.seconds = json.loads(self.marker.read_text())["seconds"]
            self.reused = True
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        print(f"generating {self.count:,} demo apps into {self.directory} ...", flush=True)
        start = time.perf_counter()
        command = [RESTPLUG, "demo-data", "--count", str(self.count), "--seed", str(self.seed)]
        done = subprocess.run(
            command, env=self.environ(self.directory), cwd=self.directory, stdout=subprocess.PIPE
        )
        if done.returncode:
            raise SystemExit(f"restplug demo-data failed (exit status {done.returncode})")
        self.seconds = time.perf_counter() - start
        # Written last: an interrupted generation is never taken for a complete one.
        self.marker.write_text(
            json.dumps({"count": self.count, "seed": self.seed, "seconds": self.seconds})
        )

    def describe(self) -> str:
        rate = f"{self.count / self.seconds:,.0f} apps/s" if self.seconds else "?"
        how = "reused from" if self.reused else "generated into"
        where = self.directory.relative_to(ROOT) if self.directory.is_relative_to(ROOT) else ""
        return (
            f"`restplug demo-data --count {self.count} --seed {self.seed}`: "
            f"{self.seconds:,.1f} s ({rate}) when generated; {how} `{where or self.directory}`"
        )

    @contextmanager
    def copy(self) -> Iterator[Path]:
        """A fresh copy of the files for one run (its writes never reach the reused files)."""
        with tempfile.TemporaryDirectory(dir=self.directory) as run:
            for file in self.files():
                shutil.copy(file, run)
            yield Path(run)


# -- processes --------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing and this runs as root."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        quiet = {"stdout": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            **quiet,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "wrk is not installed: install it (Debian/Ubuntu: sudo apt-get install wrk) and run "
            "make bench again"
        )
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers of ``serve``), MiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        pids += [int(child) for child in children]
    return total / 1024


@contextmanager
def peak_rss(server: subprocess.Popen[bytes] | None) -> Iterator[list[float]]:
    """Sample the RSS of ``server`` (and children) every 0.2 s meanwhile: ``[peak]`` at the
    end."""
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while server is not None and not stop.is_set():
            peak[0] = max(peak[0], rss_mb(server.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


@contextmanager
def process(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process listening on its ``--port``, once it accepts.  Its output goes to
    ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=output)
    try:
        port = int(command[command.index("--port") + 1])

        def ready() -> bool:
            if server.poll() is not None:
                raise SystemExit(f"{command} exited; its log:\n{log.read_text()[-3000:]}")
            return accepts(port)

        wait_until(ready, " ".join(command), timeout=600)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- wrk --------------------------------------------------------------------------------------


def wrk(
    options: Options, base: str, scenario: Scenario, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    """One wrk run of ``scenario`` against ``base``: its summary (bench/wrk.lua's line)."""
    command = [
        "wrk",
        "-t",
        str(options.threads),
        "-c",
        str(options.connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if scenario.random_ids:
        command += [base, "--", "random", scenario.path, "1", str(scenario.random_ids)]
    else:
        command += [base + scenario.path, "--", "fixed"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    options: Options,
    base: str,
    scenario: Scenario,
    headers: dict[str, str],
    server: subprocess.Popen[bytes] | None,
    row: Row,
) -> None:
    """Warm-up (unless 0 s), then the measured run into ``row``; ``server`` is the process whose
    memory is sampled (None: not sampled)."""
    if options.warmup:
        wrk(options, base, scenario, headers, options.warmup)
    with peak_rss(server) as peak:
        summary = wrk(options, base, scenario, headers, options.duration)
    if server is not None and server.poll() is not None:
        raise SystemExit(
            f"the server exited (status {server.returncode}) during {scenario.key}; its log is "
            "under var/bench-*/logs/"
        )
    sockets = {k: summary[k] for k in ("connect", "read", "write", "timeout") if summary[k]}
    row.rps = summary["requests"] / (summary["duration_us"] / 1e6)
    row.p50_ms, row.p99_ms = summary["p50_us"] / 1000, summary["p99_us"] / 1000
    row.errors = summary["status"] + sum(sockets.values())
    detail = [f"{summary['status']} non-2xx/3xx"] if summary["status"] else []
    row.error_detail = ", ".join(detail + [f"{n} {k}" for k, n in sockets.items()])
    row.rss_mb = peak[0]


# -- the store limit --------------------------------------------------------------------------


async def ops_per_second(
    call: Callable[[], Awaitable[object]], at_once: int, seconds: float
) -> tuple[float, int]:
    """How many ``call()`` complete per second with ``at_once`` of them running, and how many
    ran past the query time bound instead (a skip over half a million documents may)."""
    done = timeouts = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done, timeouts
        while time.perf_counter() < deadline:
            try:
                await call()
            except (QueryTimeout, TimeoutError):
                timeouts += 1
            else:
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(at_once)))
    return done / (time.perf_counter() - start), timeouts


def store_call(restplug: Restplug, scenario: Scenario) -> Callable[[], Awaitable[object]]:
    """What the scenario's handler asks of the store and index, without HTTP: a detail's
    ``collection.get``; a list's method filters (search asks the index) and page and total."""
    collection = restplug.collection("apps")
    if scenario.random_ids:

        async def get() -> object:
            id = random.randint(1, scenario.random_ids)
            if await collection.get(id) is None:
                raise SystemExit(f"store limit: app {id} is missing")
            return id

        return get
    parser = restplug.parsers["apps"]
    parsed = parser.parse(parse_qs(urlsplit(scenario.path).query))

    async def page() -> object:
        query = await parser.resolve(parsed)
        return await run_list(restplug.store, "apps", parsed, query, restplug.query_timeout)

    return page


async def cursors(restplug: Restplug, count: int) -> tuple[str, str]:
    """The cursors after the first page of LIST and after ``deep_page`` pages, walked in the
    store (the server takes them: the same cursor secret signs them)."""
    parser = restplug.parsers["apps"]
    query = parse_qs(urlsplit(LIST).query)
    walk: dict[str, list[str]] = {**query, "size": ["100"], "count": ["none"]}
    remaining, cursor, shallow = deep_page(count) * 20, None, None
    while True:
        size = min(100, remaining)
        parsed = parser.parse(
            {**walk, "size": [str(size)], **({"cursor": [cursor]} if cursor else {})}
        )
        result = await run_list(
            restplug.store, "apps", parsed, await parser.resolve(parsed), restplug.query_timeout
        )
        if shallow is None:
            first = parser.parse(query)
            shallow = (
                await run_list(
                    restplug.store,
                    "apps",
                    first,
                    await parser.resolve(first),
                    restplug.query_timeout,
                )
            ).next_cursor
        cursor, remaining = result.next_cursor, remaining - size
        if remaining <= 0 or cursor is None:
            break
    if cursor is None or shallow is None:
        raise SystemExit(f"{count} apps give no page {deep_page(count) + 1} of {LIST}")
    return shallow, cursor


async def store_side(
    env: dict[str, str], count: int, options: Options, store_limited: list[str] | None
) -> tuple[str, str, dict[str, tuple[float, int]]]:
    """The cursors, then the store limit of each bypassed scenario (``store_limited`` keys;
    None: every one), with its count of timeouts."""
    restplug = await Restplug.configure(env)
    await restplug.start()
    limits: dict[str, tuple[float, int]] = {}
    try:
        shallow, deep = await cursors(restplug, count)
        for scenario in scenarios(count, deep, shallow):
            if not scenario.store_limited:
                continue
            if store_limited is not None and scenario.key not in store_limited:
                continue
            call = store_call(restplug, scenario)
            if options.warmup:
                await ops_per_second(call, options.store_concurrency, options.warmup)
            ops, timeouts = limits[scenario.key] = await ops_per_second(
                call, options.store_concurrency, options.duration
            )
            late = f", {timeouts} past the query time bound" if timeouts else ""
            print(f"  store limit {scenario.key}: {ops:,.1f} ops/s{late}", flush=True)
    finally:
        await restplug.stop()
    return shallow, deep, limits


# -- the limit --------------------------------------------------------------------------------


async def limit_app(bodies_file: Path, details: int) -> web.Application:
    """The limit: bodies from a dict by the raw path, nothing else.  The details of apps
    1..``details`` are read from the store configured in the environment and serialized as
    restplug's detail handler does; the other bodies come from ``bodies_file``."""
    bodies = {path: body.encode() for path, body in json.loads(bodies_file.read_text()).items()}
    restplug = await Restplug.configure()
    await restplug.start()
    try:
        resource = restplug.resources["apps"]
        collection = restplug.collection("apps")
        after = 0
        while after < details:
            found = FindQuery({"_id": {"$gt": after, "$lte": details}}, (("_id", 1),), 0, 1000)
            batch = await collection.find(found)
            if not batch:
                break
            for stored in batch:
                bodies[f"{APPS}/{stored.id}"] = dumps(resource.presented(stored.document))
            after = batch[-1].id
    finally:
        await restplug.stop()

    async def handler(request: web.Request) -> web.Response:
        body = bodies.get(request.raw_path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{path:.*}", handler)
    return app


async def fetch_bodies(base: str, scenarios: list[Scenario], token: str) -> dict[str, str]:
    """restplug's answer to every fixed-path scenario, for the limit to serve."""
    bodies = {}
    async with aiohttp.ClientSession() as session:
        for scenario in scenarios:
            if scenario.random_ids:
                continue
            headers = {**scenario.headers, **auth(scenario, token)}
            async with session.get(base + scenario.path, headers=headers) as response:
                if response.status != 200:
                    raise SystemExit(f"{scenario.path}: {response.status} {await response.text()}")
                bodies[scenario.path] = await response.text()
    return bodies


def auth(scenario: Scenario, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if scenario.token else {}


async def warm(base: str, scenario: Scenario, connections: int) -> float:
    """Read ids 1..warm_ids once each, then the share of cache hits among 100 random ones."""
    ids = iter(range(1, scenario.warm_ids + 1))
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def reader() -> None:
            for id in ids:
                async with session.get(f"{base}{scenario.path}{id}") as response:
                    await response.read()

        await asyncio.gather(*(reader() for _ in range(connections)))
        hits = 0
        for _ in range(100):
            url = f"{base}{scenario.path}{random.randint(1, scenario.random_ids)}"
            async with session.get(url) as response:
                hits += response.headers.get("X-Cache") == "HIT"
    return hits / 100


# -- package ingest ---------------------------------------------------------------------------


async def ingest(base: str, token: str, count: int, seed: int) -> list[Row]:
    """Packages of PACKAGE new apps (ids after the catalogue's), then the same apps with a new
    price each, then once more unchanged: a row each, one package after another."""
    apps = min(count, INGEST)
    new = [{**app, "id": count + app["id"]} for app in generate_apps(apps, seed + 1)]
    headers = {"Authorization": f"Bearer {token}"}
    rows = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for key, title, bump in [
            ("ingest_new", "package ingest, new apps", 0.0),
            ("ingest_changed", "package ingest, a new price for every app", 1.0),
            ("ingest_unchanged", "package ingest, the same package again", 1.0),
        ]:
            scraped = [as_scraped(app, bump) for app in new]
            times, errors = [], 0
            start = time.perf_counter()
            for batch in (scraped[i : i + PACKAGE] for i in range(0, apps, PACKAGE)):
                sent = time.perf_counter()
                async with session.post(f"{base}/api/v1/package", json={"apps": batch}) as r:
                    answer = await r.json()
                    errors += len(batch) if r.status != 200 else len(answer["rejected"])
                times.append(time.perf_counter() - sent)
            elapsed = time.perf_counter() - start
            times.sort()
            rows.append(
                Row(
                    key,
                    f"{title} ({PACKAGE:,} apps per package, {apps:,} apps)",
                    rps=len(times) / elapsed,
                    p50_ms=times[len(times) // 2] * 1000,
                    p99_ms=times[max(0, round(len(times) * 0.99) - 1)] * 1000,
                    errors=errors,
                    error_detail=f"{errors} apps rejected or failed" if errors else "",
                    apps_per_s=apps / elapsed,
                )
            )
    return rows


# -- a run ------------------------------------------------------------------------------------


def serve_command(port: int, workers: int) -> list[str]:
    """``restplug serve``, run as ``python -m restplug.cli`` (the same command): on a machine
    shared with other work, a ``pkill -f "restplug serve"`` elsewhere does not stop it."""
    command = [sys.executable, "-m", "restplug.cli", "serve", "--port", str(port)]
    return [*command, "--workers", str(workers)]


@dataclass
class Run:
    """One run of ``make bench``: its options, the server's configuration on the run's copy of
    the catalogue, the scenarios and a bearer token for the protected ones."""

    options: Options
    env: dict[str, str]
    directory: Path
    logs: Path
    plan: list[Scenario]
    bearer: str

    def serve(self, workers: int, env: dict[str, str], log: str) -> tuple[Any, str]:
        """``restplug serve`` on a free port (a context manager), and its base URL."""
        port = free_port()
        command = serve_command(port, workers)
        return process(command, env, self.directory, self.logs / log), f"http://127.0.0.1:{port}"

    def measure(
        self, base: str, scenario: Scenario, server: subprocess.Popen[bytes] | None, row: Row
    ) -> None:
        """The scenario's warm cache if it wants one, then its warm-up and measured runs."""
        if scenario.warm_ids and server is not None:
            hits = asyncio.run(warm(base, scenario, self.options.connections))
            print(f"  {scenario.key}: {hits:.0%} of 100 random reads hit after warming")
        headers = {**scenario.headers, **auth(scenario, self.bearer)}
        measure(self.options, base, scenario, headers, server, row)


def token(env: dict[str, str], cwd: Path) -> str:
    command = [RESTPLUG, "token", "--scopes", "backend/*", "--ttl", "86400"]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def run(options: Options) -> tuple[list[Row], Dataset]:
    ensure_wrk()
    dataset = Dataset(
        options.var / f"bench-{options.count}-seed{options.seed}", options.count, options.seed
    )
    dataset.prepare()
    print(dataset.describe(), flush=True)
    with dataset.copy() as directory:
        env = dataset.environ(directory)
        print("store limits (in process, no HTTP) ...", flush=True)
        shallow, deep, limits = asyncio.run(store_side(env, options.count, options, None))
        plan = scenarios(options.count, deep, shallow)
        logs = dataset.directory / "logs"
        bench = Run(options, env, directory, logs, plan, token(env, directory))
        rows = one_worker(bench, limits)
        if options.workers_2:
            rows += two_workers(bench, rows)
        rows += package_ingest(bench)
    return rows, dataset


def one_worker(bench: Run, limits: dict[str, float]) -> list[Row]:
    """Every scenario on one restplug worker and on the limit, back to back."""
    options, rows = bench.options, []
    serving, base = bench.serve(1, bench.env, "serve.log")
    with serving as server:
        bodies = bench.directory / "bodies.json"
        bodies.write_text(json.dumps(asyncio.run(fetch_bodies(base, bench.plan, bench.bearer))))
        limit_port = free_port()
        limit = [sys.executable, __file__, "limit-server", "--port", str(limit_port)]
        limit += ["--bodies", str(bodies), "--details", str(options.count)]
        print("loading the limit's documents ...", flush=True)
        with process(limit, bench.env, bench.directory, bench.logs / "limit.log"):
            for scenario in bench.plan:
                rows.append(row := Row(scenario.key, scenario.title))
                bench.measure(base, scenario, server, row)
                limit_row = Row(scenario.key, "limit")
                bench.measure(f"http://127.0.0.1:{limit_port}", scenario, None, limit_row)
                row.limit_rps = limit_row.rps
                row.store_limit_ops, row.store_limit_timeouts = limits.get(scenario.key, (None, 0))
                print_progress(row)
    return rows


def package_ingest(bench: Run) -> list[Row]:
    """The ingest rows, on one worker, last: they add apps to the run's catalogue."""
    options = bench.options
    serving, base = bench.serve(1, bench.env, "serve-ingest.log")
    with serving as server, peak_rss(server) as peak:
        rows = asyncio.run(ingest(base, bench.bearer, options.count, options.seed))
    for row in rows:
        row.rss_mb = peak[0]
        print_progress(row)
    return rows


def two_workers(bench: Run, one: list[Row]) -> list[Row]:
    """The WORKERS_2 reads on ``serve --workers 2`` with Redis as the shared cache."""
    rows = []
    by_key = {row.key: row for row in one}
    with redis_server() as redis_url:
        if redis_url is None:
            print("redis-server is not installed: no --workers 2 rows (apt-get install it)")
            return []
        env = {**bench.env, "RESTPLUG_CACHE_URL": redis_url}
        serving, base = bench.serve(2, env, "serve-workers-2.log")
        with serving as server:
            for scenario in (s for s in bench.plan if s.key in WORKERS_2):
                single = by_key[scenario.key]
                rows.append(row := Row(scenario.key, scenario.title, workers=2))
                bench.measure(base, scenario, server, row)
                row.limit_rps, row.store_limit_ops = single.limit_rps, single.store_limit_ops
                row.store_limit_timeouts = single.store_limit_timeouts
                row.one_worker_rps = single.rps
                print_progress(row)
    return rows


def print_progress(row: Row) -> None:
    limit = f", limit {row.limit_rps:,.0f}" if row.limit_rps else ""
    print(
        f"  {row.key} ({row.workers} worker{'s' * (row.workers > 1)}): {row.rps:,.0f} rps, "
        f"p99 {row.p99_ms:,.1f} ms, errors {row.errors}{limit}",
        flush=True,
    )


# -- the report -------------------------------------------------------------------------------


def ratio(value: float | None) -> str:
    if value is None:
        return ""
    # Two significant digits, however small: 0.0004 of the limit is not 0.000.
    return f"{value:.2g}" if value < 0.1 else f"{value:.2f}"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def store_limit(row: Row) -> str:
    """The store limit's cell: ops/s (two significant digits under 10), and its timeouts."""
    if row.store_limit_ops is None:
        return ""
    ops = row.store_limit_ops
    cell = f"{ops:.2g}" if ops < 10 else number(ops)
    return cell + (f" ({row.store_limit_timeouts} timed out)" if row.store_limit_timeouts else "")


def to_store_limit(row: Row) -> str:
    if row.store_limit_ops == 0 and row.store_limit_timeouts:
        return "the store timed out"
    return ratio(row.to_store_limit)


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| scenario | workers | rps | p50 ms | p99 ms | errors | limit rps | ratio to the limit "
        "| store limit ops/s | ratio to the store limit | x 1 worker | server RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rps = (
            number(row.rps)
            if row.apps_per_s is None
            else f"{row.rps:,.1f} ({row.apps_per_s:,.0f} apps/s)"
        )
        one = ratio(row.rps / row.one_worker_rps) if row.one_worker_rps else ""
        errors = f"{row.errors} ({row.error_detail})" if row.errors else "0"
        lines.append(
            f"| {row.title} | {row.workers} | {rps} | {row.p50_ms:,.1f} | {row.p99_ms:,.1f} "
            f"| {errors} | {number(row.limit_rps)} | {ratio(row.to_limit)} "
            f"| {store_limit(row)} | {to_store_limit(row)} | {one} "
            f"| {row.rss_mb:,.0f} |"
        )
    return lines


def settings_line(options: Options) -> str:
    return (
        f"wrk {options.threads} threads, {options.connections} connections, "
        f"{options.warmup:g} s warm-up then {options.duration:g} s measured per scenario; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    )


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def write(out: Path, name: str, latest: str, markdown: list[str], data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(markdown) + "\n"
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / latest).write_text(text)
    print(f"\nwritten to {out / name}.md, .json and {out / latest}")


def report(options: Options, rows: list[Row], dataset: Dataset) -> int:
    today = datetime.datetime.now(datetime.UTC)
    markdown = [
        f"# make bench: {options.count:,} apps, {today:%Y-%m-%d %H:%M} UTC, commit {commit()}",
        "",
        f"- {dataset.describe()}",
        f"- {settings_line(options)}",
        "- one worker: `restplug serve` with the `memory://` cache; 2 workers: `serve "
        "--workers 2` with a `redis-server` as the shared cache (x 1 worker: to the same row "
        "on one worker)",
        "- limit: a bare aiohttp handler answering the same bodies from a dict, one process; "
        "store limit: the scenario's store and index calls in a loop in one process, "
        f"{options.store_concurrency} at once, no HTTP",
        "- bypassed: `Cache-Control: no-cache` with `RESTPLUG_CACHE_CLIENT_BYPASS=1`; rps: "
        "answers per second as wrk counts them, errors included; errors: non-2xx/3xx answers "
        "and socket errors; RSS: peak of the server's processes",
        "",
        *table(rows),
    ]
    print("\n" + "\n".join(markdown))
    data = {
        "count": options.count,
        "seed": options.seed,
        "date": today.isoformat(),
        "commit": commit(),
        "settings": settings_line(options),
        "dataset": dataset.describe(),
        "rows": [as_json(row) for row in rows],
    }
    write(options.out, f"{today:%Y-%m-%d}-N{options.count}", "latest.md", markdown, data)
    return failures(rows)


def as_json(row: Row) -> dict[str, Any]:
    return {**asdict(row), "to_limit": row.to_limit, "to_store_limit": row.to_store_limit}


def failures(rows: list[Row]) -> int:
    failed = [row for row in rows if row.errors]
    for row in failed:
        print(f"FAILED: {row.title} ({row.workers} worker(s)): {row.error_detail}")
    return 1 if failed else 0


# -- scale ------------------------------------------------------------------------------------


def scale(options: Options, counts: list[int]) -> int:
    """The SCALE scenarios at each count on one worker, with their store limits."""
    ensure_wrk()
    results: dict[int, list[Row]] = {}
    for count in counts:
        options = replace(options, count=count)
        dataset = Dataset(options.var / f"bench-{count}-seed{options.seed}", count, options.seed)
        dataset.prepare()
        print(dataset.describe(), flush=True)
        with dataset.copy() as directory:
            env = dataset.environ(directory)
            shallow, deep, limits = asyncio.run(store_side(env, count, options, list(SCALE)))
            plan = [s for s in scenarios(count, deep, shallow) if s.key in SCALE]
            port = free_port()
            rows = []
            logs = dataset.directory / "logs" / "serve.log"
            with process(serve_command(port, 1), env, directory, logs) as server:
                for scenario in plan:
                    rows.append(row := Row(scenario.key, SCALE[scenario.key]))
                    measure(
                        options, f"http://127.0.0.1:{port}", scenario, scenario.headers, server, row
                    )
                    row.store_limit_ops, row.store_limit_timeouts = limits.get(
                        scenario.key, (None, 0)
                    )
                    print_progress(row)
            results[count] = rows
    today = datetime.datetime.now(datetime.UTC)
    markdown = scale_table(options, counts, results, today)
    print("\n" + "\n".join(markdown))
    data = {
        "counts": counts,
        "date": today.isoformat(),
        "commit": commit(),
        "settings": settings_line(options),
        "rows": {count: [as_json(r) for r in rows] for count, rows in results.items()},
    }
    write(options.out, f"{today:%Y-%m-%d}-scale", "latest-scale.md", markdown, data)
    return failures([row for rows in results.values() for row in rows])


def scale_table(
    options: Options, counts: list[int], results: dict[int, list[Row]], today: datetime.datetime
) -> list[str]:
    header = " | ".join(f"N={count:,}: rps, p99 ms, x store limit" for count in counts)
    markdown = [
        f"# make bench-scale: {today:%Y-%m-%d %H:%M} UTC, commit {commit()}",
        "",
        f"- {settings_line(options)}; one worker",
        "- cost growth: rps at the smallest N over rps at the largest (1.0: the cost does not "
        "grow with the catalogue)",
        "",
        f"| scenario | {header} | cost growth |",
        "|---|" + "---|" * (len(counts) + 1),
    ]
    for key, title in SCALE.items():
        found = [next(r for r in results[count] if r.key == key) for count in counts]
        cells = [f"{r.rps:,.0f}, {r.p99_ms:,.1f}, {to_store_limit(r)}" for r in found]
        growth = found[0].rps / found[-1].rps if found[-1].rps else float("inf")
        markdown.append(f"| {title} | {' | '.join(cells)} | {growth:.2f} |")
    return markdown


# -- command line -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="run", choices=("run", "scale", "limit-server")
    )
    parser.add_argument("--count", type=int, default=100_000, help="apps in the catalogue")
    parser.add_argument("--counts", default="10000,100000,1000000", help="scale: the counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--store-concurrency", type=int, default=8, help="store limit calls at once"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--var", type=Path, default=ROOT / "var", help="where catalogues stay")
    parser.add_argument("--no-workers-2", action="store_true", help="one worker only")
    parser.add_argument("--port", type=int, help="limit-server: its port")
    parser.add_argument("--bodies", type=Path, help="limit-server: the fixed bodies")
    parser.add_argument("--details", type=int, default=0, help="limit-server: apps to serve")
    args = parser.parse_args()
    if args.command == "limit-server":
        web.run_app(
            limit_app(args.bodies, args.details),
            host="127.0.0.1",
            port=args.port,
            access_log=None,
            print=None,
        )
        return 0
    options = Options(
        args.count,
        args.seed,
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.out.resolve(),
        args.var.resolve(),
        workers_2=not args.no_workers_2,
        store_concurrency=args.store_concurrency,
    )
    if args.command == "scale":
        return scale(options, [int(c) for c in args.counts.split(",")])
    rows, dataset = run(options)
    return report(options, rows, dataset)


if __name__ == "__main__":
    sys.exit(main())
