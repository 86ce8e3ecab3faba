"""schemathesis against the served OpenAPI document of a real server with demo data and a
``*/*`` token: no input may get a 5xx, and every answer is what the document declares (status,
content type, headers, body schema).  ``make test`` runs a short, seeded round; ``make fuzz``
(``RESTPLUG_FUZZ=full``) runs more examples with every check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from servers import SECRET, Server, cli

from restplug_auth_oauth.dev_tokens import mint_token

FULL = os.environ.get("RESTPLUG_FUZZ", "") == "full"
CONFORMANCE = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    assert cli(tmp_path, "demo-data", "--count", "200").returncode == 0
    # Thousands of requests from one address: budgets large enough that few answers are 429s
    # (declared, as the RateLimit-* headers are) and the rest of the API gets exercised.
    budget = "1000000/minute"
    server = Server(
        tmp_path,
        RESTPLUG_RATELIMIT_READS=budget,
        RESTPLUG_RATELIMIT_SEARCHES=budget,
        RESTPLUG_RATELIMIT_WRITES=budget,
    ).start()
    token = mint_token(SECRET, ["*/*"], 3600, "fuzz")
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is not installed (pip install -e '.[test]')"
    checks = ["--checks", "all" if FULL else ",".join(CONFORMANCE)]
    try:
        run = subprocess.run(
            [
                st,
                "run",
                f"{server.url}/openapi.json",
                *checks,
                "--max-examples",
                "300" if FULL else "25",
                "--seed",
                "20261202",
                "--generation-database",
                "none",
                "--max-failures",
                "1000",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=1800 if FULL else 240,
        )
    finally:
        server.stop()
    report = run.stdout + run.stderr
    print(report)
    assert "Server error" not in report and "not_a_server_error" not in report.split("SUMMARY")[-1]
    assert " 500 " not in server.output()
    generated = re.search(r"(\d+) generated", report)
    assert generated and int(generated.group(1)) > 500, report[-2000:]
    if not FULL:
        assert run.returncode == 0, report[-3000:]
