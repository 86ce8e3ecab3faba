"""Real responses checked against the served OpenAPI document: the status is declared for the
route, the content type too, and the body validates against its schema with a strict JSON
Schema 2020-12 validator (``additionalProperties`` as declared, formats checked)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

FORMATS = Draft202012Validator.FORMAT_CHECKER


@dataclass
class Conformance:
    document: dict[str, Any]
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, operations in self.document["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) and method.lower() in operations:
                return operations[method.lower()]
        return None

    def check(
        self, method: str, path: str, status: int, content_type: str, body: Any, headers: Any
    ) -> None:
        """Record a failure unless the response is what the document declares."""
        where = f"{method} {path} -> {status}"
        operation = self.operation(method, path)
        if operation is None:
            self.failures.append(f"{where}: undocumented route")
            return
        response = operation["responses"].get(str(status))
        if response is None:
            self.failures.append(f"{where}: undocumented status")
            return
        self.checked += 1
        for name, declared in response.get("headers", {}).items():
            if name in headers:
                self.validate(where + f" header {name}", declared["schema"], headers[name])
        content = response.get("content")
        if not content:
            if body:
                self.failures.append(f"{where}: a body where none is declared")
            return
        if content_type not in content:
            self.failures.append(f"{where}: undeclared content type {content_type}")
            return
        self.validate(where, content[content_type]["schema"], body)

    def validate(self, where: str, schema: dict[str, Any], value: Any) -> None:
        root = {"components": self.document["components"], "allOf": [schema]}
        validator = Draft202012Validator(root, format_checker=FORMATS)
        for error in validator.iter_errors(value):
            self.failures.append(f"{where}: {error.json_path}: {error.message[:300]}")

    async def call(
        self, client: TestClient, method: str, path: str, expect: int | None = None, **kwargs: Any
    ) -> Any:
        """Make a request, check its response, return the parsed body (None when empty)."""
        async with client.request(method, path, **kwargs) as response:
            raw = await response.read()
            body = await response.json(content_type=None) if raw else None
            self.check(method, path, response.status, response.content_type, body, response.headers)
            if expect is not None:
                assert response.status == expect, (method, path, response.status, body)
            return body
