"""Schemathesis over every operation of a real `metric-stream serve` (its own OpenAPI
document): the examples, coverage (boundary and invalid values) and fuzzing phases,
valid and invalid data, with the admin key (the ingestion key on ingestion routes). No
answer may be a 5xx, every status code must be documented, every body must match its
documented schema and content type. Then the store must still read back whole.

Bounded and deterministic: a fixed seed, derandomized generation, no example database,
no shrinking, a fixed number of fuzzed examples per operation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from metric_stream.bootstrap import build_services
from metric_stream.settings import Settings
from tests.delivery_fakes import FakeHttpServer, Recorded, Reply
from tests.security.conftest import (
    ADMIN_KEY,
    INGEST_KEY,
    Seeded,
    Served,
    operations,
    seed_store,
    serve_seeded,
)

pytestmark = pytest.mark.slow

SEED = 20261129
EXAMPLES = 20  # fuzzed examples per operation (the coverage phase adds its own)
CHECKS = [schemathesis.checks.not_a_server_error,
          schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance,
          schemathesis.checks.response_schema_conformance]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
N8N_KEY = "n8n-fuzz-key"
_N8N_ACTION = re.compile(r"^/api/v1/workflows/(?P<id>[^/]+)/(?:activate|deactivate)$")


def n8n_api(request: Recorded) -> Reply:
    """n8n's REST API as workflow control uses it: the `wf-*` workflows exist."""
    match = _N8N_ACTION.match(request.path)
    if request.headers.get("x-n8n-api-key") != N8N_KEY:
        return Reply(401, {"message": "unauthorized"})
    if match is None or request.method != "POST" or not match["id"].startswith("wf-"):
        return Reply(404, {"message": "Not Found"})
    return Reply(200, {"id": match["id"], "active": request.path.endswith("/activate")})


class Target:
    def __init__(self, served: Served, seeded: Seeded) -> None:
        self.served = served
        self.seeded = seeded
        self.url = served.url
        self.config = httpx.get(f"{self.url}/api/config", headers=ADMIN).json()
        self.started = time.monotonic()
        self.calls = 0


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The seeded store served with the test keys, n8n's API faked; retries never wait
    (so that a run-now or an endpoint test answers at once)."""
    folder = tmp_path_factory.mktemp("fuzz")
    seeded = seed_store(build_services(Settings(backend="embedded", home=folder / "home")))
    with FakeHttpServer(n8n_api) as n8n:
        served = serve_seeded(seeded, folder, METRIC_STREAM_N8N_API_URL=n8n.url,
                              METRIC_STREAM_N8N_API_KEY=N8N_KEY)
        try:
            yield Target(served, seeded)
        finally:
            served.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: Target) -> schemathesis.BaseSchema:
    document = httpx.get(f"{fuzz_target.url}/api/openapi.json").json()
    for operation in operations():  # the examples phase also calls with the seeded ids
        if operation.method == "DELETE":
            continue
        parameters = document["paths"][operation.path][operation.method.lower()].get(
            "parameters", [])
        for parameter in parameters:
            if parameter["in"] == "path":
                parameter["example"] = fuzz_target.seeded.value_for(operation,
                                                                     parameter["name"])
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": fuzz_target.url,
        "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True,
                       "no-shrink": True, "database": "none"},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_dict(document, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def _credentials(case: schemathesis.Case) -> dict[str, str]:
    security = case.operation.definition.raw.get("security", [])
    if any("apiKey" in option for option in security):
        return {"X-API-Key": INGEST_KEY}
    return dict(ADMIN)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_passes_the_checks(case: schemathesis.Case,
                                           fuzz_target: Target) -> None:
    fuzz_target.calls += 1
    try:
        case.call_and_validate(headers=_credentials(case), checks=CHECKS, timeout=30)
    finally:
        # a fuzzed config may set hour-long retry waits: put the seeded one back
        if case.path.startswith("/api/config") and case.method.upper() != "GET":
            restored = httpx.put(f"{fuzz_target.url}/api/config", json=fuzz_target.config,
                                 headers=ADMIN, timeout=30)
            assert restored.status_code == 200, restored.text


def test_after_the_fuzzing_the_store_reads_back_whole(fuzz_target: Target) -> None:
    assert fuzz_target.calls > 500, "the fuzzing ran"
    with httpx.Client(base_url=fuzz_target.url, headers=ADMIN, timeout=30) as api:
        kpis = api.get("/api/kpis")
        assert kpis.status_code == 200, kpis.text
        assert kpis.json()["count"] == len(kpis.json()["kpis"]) > 0
        for entry in kpis.json()["kpis"]:
            one = api.get(f"/api/kpis/{entry['id']}")
            assert one.status_code == 200 and one.json()["id"] == entry["id"], one.text
        for path in ("/api/jobs", "/api/metrics", "/api/schedules", "/api/endpoints",
                     "/api/config"):
            answer = api.get(path)
            assert answer.status_code == 200 and isinstance(answer.json(), dict), answer.text
        for job in api.get("/api/jobs", params={"limit": 200}).json()["jobs"]:
            detail = api.get(f"/api/jobs/{job['traceId']}")
            assert detail.status_code == 200, detail.text
    log = fuzz_target.served.stop()
    assert "Traceback" not in log and "unexpected error" not in log, log[-5000:]
    elapsed = time.monotonic() - fuzz_target.started
    assert elapsed < 120, f"the fuzzing took {elapsed:.0f} s"

