"""Credentials never reach a message or a log line."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from restplug.cli import JsonFormatter, TextFormatter
from restplug.errors import ConfigError
from restplug.redact import redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("mongodb://admin:p@ss@db/x down", "mongodb://admin:***@db/x down"),
        ("'https://TOKEN@git.example/x'", "'https://***@git.example/x'"),
        ("es://h:9200/?api_key=k&timeout=5", "es://h:9200/?api_key=***&timeout=5"),
        ("x://h/?db=1&Password=pw;access-token=t", "x://h/?db=1&Password=***;access-token=***"),
        ("redis://cache:6379/0 and http://h/a@b", "redis://cache:6379/0 and http://h/a@b"),
    ],
)
def test_redact_masks_passwords_and_secret_parameters(text, masked):
    assert redact(text) == masked


def test_config_errors_and_log_lines_are_masked():
    assert "secret" not in str(ConfigError("RESTPLUG_CACHE_URL=redis://:secret@h: bad"))
    try:
        raise OSError("cannot reach redis://:secret@h")
    except OSError:
        record = logging.LogRecord(
            "x", logging.ERROR, "", 0, "using %s", ("redis://u:secret@h",), sys.exc_info()
        )
    text = TextFormatter("%(message)s").format(record)
    entry = json.loads(JsonFormatter().format(record))
    assert "secret" not in text and "redis://u:***@h" in text
    assert "secret" not in entry["message"] + entry["exception"]
