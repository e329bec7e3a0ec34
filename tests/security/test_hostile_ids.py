"""Hostile ids in every path parameter of every route (read from the OpenAPI document)
and in the ids of request bodies: path traversal, SQL metacharacters, NUL bytes, 10 kB,
unicode look-alikes. Each is answered with a 4xx (never a 5xx, never a success that
stored it), and nothing is written outside the store's folder."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.security.conftest import (
    ADMIN_KEY,
    INGEST_KEY,
    InProcess,
    Operation,
    Served,
    file_tree,
    operations,
    request_body,
    request_model,
)

HOSTILE = {
    "dot-dot": "..",
    "dot-dot-slash": "../../../../etc/passwd",
    "encoded dot-dot-slash": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "half-encoded": "..%2f..%2fsecret",
    "double-encoded": "%252e%252e%252f",
    "absolute": "/etc/passwd",
    "backslashes": "..\\..\\windows\\win.ini",
    "UNC": "\\\\host\\share\\x",
    "trailing dot-dot": "demo-btc.price/..",
    "sql or": "' OR '1'='1",
    "sql drop": '"; DROP TABLE records; --',
    "sql comment": "x' --",
    "NUL": "demo\x00../../x",
    "encoded NUL": "demo%00",
    "10 kB": "a" * 10_240,
    "fullwidth": "\uff44\uff45\uff4d\uff4f",  # "demo" in fullwidth letters
    "look-alike": "\u0392\u03a4\u0421-price",  # "BTC" in Greek and Cyrillic capitals
    "zero-width": "demo\u200b-btc",
    "right-to-left": "demo\u202egnp.exe",
    "newline": "demo\nx",
    "percent": "%",
    "glob": "*",
}
REFUSED = {400, 404, 405, 422}
WITH_PARAMS = [o for o in operations() if o.path_params]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def credentials(operation: Operation) -> dict[str, str]:
    return {"x-api-key": INGEST_KEY} if operation.ingestion else dict(ADMIN)


def outside(root: Path, home: Path) -> set[str]:
    """What is in the test's folder `root` (the working folder, around the store's
    folder `home`) but not in the store, and what is beside `root`."""
    inside = str(home.relative_to(root))
    return {p for p in file_tree(root) if p != inside and not p.startswith(inside + os.sep)
            } | {f"../{p.name}" for p in root.parent.iterdir()}


@pytest.fixture
def watched(tmp_path: Path, in_process: InProcess) -> tuple[Path, set[str]]:
    return tmp_path, outside(tmp_path, in_process.seeded.home)


def assert_refused(status: int, body: bytes, why: str) -> None:
    assert status in REFUSED, f"{why}: {status} {body[:300]!r}"
    if body:
        assert "error" in json.loads(body), why


@pytest.mark.parametrize("operation", WITH_PARAMS, ids=lambda o: o.label)
def test_hostile_path_ids_are_refused(in_process: InProcess, operation: Operation,
                                      watched: tuple[Path, set[str]]) -> None:
    seeded = in_process.seeded
    headers = {**credentials(operation),
               **({"content-type": operation.body_type} if operation.body_type else {})}
    for name in operation.path_params:
        for why, value in HOSTILE.items():
            values = {n: seeded.value_for(operation, n) for n in operation.path_params}
            values[name] = value
            body = request_body(in_process, operation)
            # as a server hands it over: the path decoded (so a '/' in the id splits it)
            answer = in_process.call(operation.method, operation.url(**values), headers, body)
            assert_refused(answer.status, answer.body, f"{operation.label} {name}={why}")
    root, before = watched
    assert outside(root, seeded.home) == before


BODY_IDS = {  # the request models whose ids a route stores or looks up, and the ids
    "KpiResult": ("kpiId", "traceId"),
    "ErrorReport": ("kpiId", "traceId"),
    "KpiDefinition": ("id", "kpiId"),
    "Schedule": ("id", "kpiId"),
    "DeliveryEndpoint": ("id", "kpiId"),
    "ChartRequest": ("kpiId",),
    "ChartBatch": ("kpiId",),
    "RunJob": ("kpiId",),
    "Redeliver": ("id",),
}
WITH_BODY_IDS = [o for o in operations() if request_model(o) in BODY_IDS]


def test_every_request_model_with_ids_is_covered() -> None:
    models = {request_model(o) for o in operations()} - {None}
    assert models <= set(BODY_IDS) | {"SystemConfig", "RetryConfig", "FallbackConfig",
                                      "MultiKpiResult"}, models


@pytest.mark.parametrize("operation", WITH_BODY_IDS, ids=lambda o: o.label)
def test_hostile_body_ids_are_refused(in_process: InProcess, operation: Operation,
                                      watched: tuple[Path, set[str]]) -> None:
    seeded = in_process.seeded
    path = operation.url(**{n: seeded.value_for(operation, n) for n in operation.path_params})
    headers = {**credentials(operation), "content-type": "application/json"}
    for field in BODY_IDS[str(request_model(operation))]:
        for why, value in HOSTILE.items():
            body = request_body(in_process, operation, **{field: value})
            answer = in_process.call(operation.method, path, headers, body)
            label = f"{operation.label} body {field}={why}"
            if operation.path == "/api/charts/batch":  # 200, each item answers on its own
                assert answer.status == 200, (label, answer.body[:300])
                item = json.loads(answer.body)["results"][0]
                assert not item["ok"] and item["error"]["code"] in (
                    "invalid_input", "not_found"), (label, item)
                continue
            assert_refused(answer.status, answer.body, label)
    root, before = watched
    assert outside(root, seeded.home) == before


def test_a_hostile_import_filename_is_only_a_label(in_process: InProcess,
                                                   watched: tuple[Path, set[str]]) -> None:
    seeded = in_process.seeded
    for why, value in HOSTILE.items():
        answer = in_process.call(
            "POST", f"/api/kpis/{seeded.entry_id}/import",
            {**ADMIN, "content-type": "text/csv"},
            b"timestamp,value\n2026-11-02T00:00:00Z,1.5\n", query={"filename": value})
        assert answer.status in (200, 422), (why, answer.body[:300])
    root, before = watched
    assert outside(root, seeded.home) == before


def _raw_paths(value: str) -> list[str]:
    """How a client can put the id on the request line: percent-encoded whole, and
    as written where it is printable ASCII (servers decode and may normalise it)."""
    forms = [quote(value, safe="")]
    if value.isascii() and value.isprintable() and " " not in value:
        forms.append(value)
    return forms


def test_over_http_hostile_path_ids_are_refused(served: Served, tmp_path: Path) -> None:
    root = tmp_path
    before = outside(root, served.home)
    host = urlsplit(served.url)
    connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=30)
    try:
        for operation in WITH_PARAMS:
            for name in operation.path_params:
                for why, value in HOSTILE.items():
                    for raw in _raw_paths(value):
                        path = operation.path.replace("{" + name + "}", raw)
                        for other in operation.path_params:
                            path = path.replace("{" + other + "}", "x")
                        body = b"{}" if operation.body_type else b""
                        connection.request(operation.method, path, body=body,
                                           headers=credentials(operation))
                        answer = connection.getresponse()
                        data = answer.read()
                        assert answer.status in REFUSED, (operation.label, why, raw,
                                                          answer.status, data[:300])
    finally:
        connection.close()
    log = served.stop()
    assert "Traceback" not in log, log[-3000:]
    assert outside(root, served.home) == before
