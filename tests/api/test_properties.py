"""Property tests through the HTTP API: every valid result is accepted and stored
exactly; every mutation of one is a 4xx (never a 5xx) and stores nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services, build_services
from metric_stream.models import CollectorSource, KpiDefinition
from metric_stream.settings import Settings
from tests.api.conftest import INGEST_KEY, Client
from tests.unit.test_contract_properties import (
    MULTI_MUTATIONS,
    SINGLE_MUTATIONS,
    Mutation,
    multi_payloads,
    single_payloads,
)

KNOWN = [f"kpi-{i}" for i in range(6)]
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def fresh() -> tuple[Services, Client]:
    home = Path(tempfile.mkdtemp(prefix="ms-prop-"))
    services = build_services(Settings(home=home, ingestion_key=INGEST_KEY))
    services.init()
    services.registry.kpis.create(KpiDefinition(
        id="multi", name="multi", kpi_type="multi", kpi_ids=KNOWN,
        source=CollectorSource(collector="demo")))
    return services, Client(build_api(services))


SERVICES, CLIENT = fresh()


def point_count() -> int:
    return sum(len(SERVICES.timeseries.points(k)) for k in KNOWN)


def known_single(payload: dict[str, Any], index: int) -> dict[str, Any]:
    return {**payload, "kpiId": KNOWN[index]}


def known_multi(payload: dict[str, Any]) -> dict[str, Any]:
    ids = KNOWN[:len(payload["kpiIds"])]
    data = dict(zip(ids, (payload["data"][k] for k in payload["kpiIds"]), strict=True))
    return {**payload, "kpiIds": ids, "data": data}


@SETTINGS
@given(single_payloads(), st.integers(min_value=0, max_value=5))
def test_valid_single_results_are_stored_as_sent(case: tuple[dict[str, Any], Any],
                                                 index: int) -> None:
    payload = known_single(case[0], index)
    response = CLIENT.ingest(payload)
    assert response.status in (200, 202, 409), response.body
    if response.status == 409:  # the generator reused a timestamp with another value
        return
    data = payload["data"]
    value = float(data["value"] if isinstance(data, dict) else data)
    stored = SERVICES.timeseries.get(payload["kpiId"], case[1])
    assert stored is not None and stored.value == value


@SETTINGS
@given(multi_payloads())
def test_valid_multi_results_are_stored_as_sent(case: tuple[dict[str, Any], Any]) -> None:
    payload = known_multi(case[0])
    response = CLIENT.ingest(payload)
    assert response.status in (200, 202, 409), response.body


@SETTINGS
@given(single_payloads(), st.integers(min_value=0, max_value=5),
       st.sampled_from(SINGLE_MUTATIONS), st.data())
def test_mutated_single_results_get_a_4xx_and_store_nothing(
        case: tuple[dict[str, Any], Any], index: int, mutation: Mutation,
        data: st.DataObject) -> None:
    payload = known_single(case[0], index)
    mutation(payload, data.draw)
    before = point_count()
    response = CLIENT.ingest(json.dumps(payload, allow_nan=True))
    assert 400 <= response.status < 500, response.body
    assert "error" in json.loads(response.body)
    assert point_count() == before


@SETTINGS
@given(multi_payloads(), st.sampled_from(MULTI_MUTATIONS), st.data())
def test_mutated_multi_results_get_a_4xx_and_store_nothing(
        case: tuple[dict[str, Any], Any], mutation: Mutation, data: st.DataObject) -> None:
    payload = known_multi(case[0])
    mutation(payload, data.draw)
    before = point_count()
    response = CLIENT.ingest(json.dumps(payload, allow_nan=True))
    assert 400 <= response.status < 500, response.body
    assert point_count() == before


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_get_a_5xx(body: bytes) -> None:
    for path in ("/api/kpi-data", "/api/kpi-error"):
        response = CLIENT.ingest(body, path=path)
        assert 400 <= response.status < 500, response.body
