"""``make bench`` at a tiny size: the harness runs end to end and its table has every row."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from services import missing_service

ROOT = Path(__file__).resolve().parents[2]
READS = [
    "detail_warm",
    "detail_bypassed",
    "list_cached",
    "list_bypassed",
    "search_bypassed",
    "filters_bypassed",
    "search_filter_bypassed",
    "cursor_shallow",
    "cursor_deep",
    "page_deep",
    "protected",
]
INGEST = ["ingest_new", "ingest_changed", "ingest_unchanged"]


def test_the_harness_measures_every_scenario_without_errors(tmp_path):
    if shutil.which("wrk") is None:
        missing_service("wrk is not installed (apt-get install wrk, or `make test`)")
    out = tmp_path / "results"
    command = [sys.executable, "bench/bench.py", "--count", "300", "--duration", "1"]
    command += ["--warmup", "0", "--no-workers-2", "--out", str(out), "--var", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    (result,) = out.glob("*-N300.json")
    rows = json.loads(result.read_text())["rows"]
    assert [row["key"] for row in rows] == READS + INGEST
    for row in rows:
        assert row["errors"] == 0 and row["rps"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0
    reads = rows[: len(READS)]
    assert all(row["limit_rps"] > 0 and row["rss_mb"] > 0 for row in reads)
    bypassed = [row for row in reads if "bypassed" in row["key"] or "_deep" in row["key"]]
    assert all(row["store_limit_ops"] > 0 for row in bypassed)
    assert all(row["apps_per_s"] > 0 for row in rows[len(READS) :])

    latest = (out / "latest.md").read_text()
    assert latest == result.with_suffix(".md").read_text()
    table = [line for line in latest.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| scenario | workers | rps | p50 ms | p99 ms | errors |")
    assert len(table) == 1 + len(rows)
    assert "generated into" in latest  # a first run generates; the next one reuses
