"""Fixtures for the webCRM emulator tests: a logged-in client, the swagger contract,
and a hook receiver (a real HTTP server thread on loopback)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from shopsync.emulators.launch import RunningServer

AUTH_CODE = "11111111-2222-3333-4444-555555555555"
"""The application token the session emulator (tests/conftest.py) accepts."""

# RFC 3339 date-time (jsonschema only checks "format" with optional extras installed).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
STORED_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def login(url: str, auth_code: str = AUTH_CODE) -> dict[str, Any]:
    r = httpx.post(url + "/Auth/ApiLogin", data={"authCode": auth_code}, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def client_for(url: str, auth_code: str = AUTH_CODE) -> httpx.Client:
    token = login(url, auth_code)["AccessToken"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def crm(reset_emulator: RunningServer) -> Iterator[httpx.Client]:
    """A client with a fresh access token against an emptied emulator."""
    with client_for(reset_emulator.url) as client:
        yield client


def seed(url: str, n: int, **knobs: Any) -> dict[str, Any]:
    r = httpx.post(url + "/_emulator/seed", json={"n": n, "seed": 7, **knobs}, timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --------------------------------------------------------------------------- swagger
def _nullable(defs: dict[str, Any]) -> dict[str, Any]:
    """Swagger 2.0 cannot say "nullable"; webCRM (.NET) sends ``null`` for unset fields.

    Every property that the definition does not list as required may therefore also be
    ``null``; everything else about it (type, maxLength, enum, format) still applies.
    """
    out: dict[str, Any] = {}
    for name, schema in defs.items():
        schema = json.loads(json.dumps(schema))
        required = set(schema.get("required", ()))
        for prop, sub in schema.get("properties", {}).items():
            if prop not in required:
                schema["properties"][prop] = {"anyOf": [sub, {"type": "null"}]}
        out[name] = schema
    return out


@dataclass
class Contract:
    """Validates answers against the response schemas of the published definition."""

    swagger: dict[str, Any]
    defs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.defs = _nullable(self.swagger["definitions"])

    def response_schema(self, method: str, template: str) -> dict[str, Any] | None:
        op = self.swagger["paths"][template][method.lower()]
        schema: dict[str, Any] | None = op["responses"]["200"].get("schema")
        return schema

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        root = {**schema, "definitions": self.defs}
        jsonschema.Draft4Validator(root).validate(instance)
        self._check_records(instance, schema)

    def _check_records(self, instance: Any, schema: dict[str, Any]) -> None:
        """Beyond the schema: every DTO property is present, date-times are RFC 3339."""
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        if not ref:
            return
        definition = self.swagger["definitions"][ref.rsplit("/", 1)[1]]
        records = instance if isinstance(instance, list) else [instance]
        for record in records:
            missing = set(definition["properties"]) - set(record)
            assert not missing, f"{ref}: properties missing from the answer: {sorted(missing)}"
            for prop, sub in definition["properties"].items():
                value = record[prop]
                if sub.get("format") == "date-time" and value is not None:
                    assert RFC3339.match(value), f"{prop}: {value!r} is not RFC 3339"

    def check(self, method: str, template: str, response: httpx.Response) -> Any:
        """Assert a 200 whose body fits the definition of ``method template``."""
        assert response.status_code == 200, (method, template, response.text)
        schema = self.response_schema(method, template)
        if schema is None:
            return None
        body = response.json()
        self.validate(body, schema)
        return body

    def dto(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/definitions/{name}"}


@pytest.fixture(scope="session")
def contract(swagger_path: Path) -> Contract:
    return Contract(json.loads(swagger_path.read_text()))


# --------------------------------------------------------------------------- hooks
@dataclass
class Receiver:
    """A tiny HTTP server that records hook calls and fails the first ``fail`` of them."""

    url: str
    calls: list[dict[str, Any]]
    fail: list[int]
    lock: threading.Lock

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(list(self.calls)):
                    return
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"condition not met within {timeout}s; calls: {self.calls}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    calls: list[dict[str, Any]] = []
    fail = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with lock:
                failing = fail[0] > 0
                if failing:
                    fail[0] -= 1
                calls.append({"path": self.path, "body": body, "answered": 500 if failing else 200})
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", calls, fail, lock)
    finally:
        server.shutdown()
        server.server_close()
