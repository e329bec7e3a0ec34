"""Admin API: the KPI registry (CRUD, validation, the delete-while-collecting rule)."""

from __future__ import annotations

from typing import Any

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import KpiStatus
from metric_stream.models.job import JobStatus
from metric_stream.services.cycle import create_job, plan_fan_out
from tests.api.conftest import ADMIN_KEY, Client, body_of

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def admin(client: Client, method: str, path: str, body: Any = b"") -> tuple[int, Any]:
    """Call an admin route with the admin key; the status and the decoded JSON body."""
    response = client.call(method, path, body, ADMIN)
    return response.status, body_of(response) if response.body else None


def kpi(kpi_id: str = "eth-price", **changes: Any) -> dict[str, Any]:
    return {"id": kpi_id, "name": "ETH price", "kpiType": "price",
            "source": {"kind": "collector", "collector": "demo", "params": {"kind": "alt-price"}},
            **changes}


def test_create_list_get_replace_delete(client: Client, services: Services,
                                        clock: ManualClock) -> None:
    status, created = admin(client, "POST", "/api/kpis", kpi(createdAt="2001-01-01T00:00:00Z"))
    assert status == 201
    assert created["id"] == "eth-price" and created["yields"] == ["eth-price"]
    assert created["createdAt"] == created["updatedAt"] == "2026-11-29T06:00:00Z"
    assert services.registry.kpis.require("eth-price").name == "ETH price"

    status, listed = admin(client, "GET", "/api/kpis")
    assert status == 200
    assert sorted(k["id"] for k in listed["kpis"]) == ["btc-price", "cbbi-multi", "eth-price",
                                                       "fear-greed"]
    assert listed["count"] == 4
    cbbi = next(k for k in listed["kpis"] if k["id"] == "cbbi-multi")
    assert cbbi["yields"] == ["cbbi-mvrv", "cbbi-rhodl", "cbbi-confidence"]

    assert admin(client, "GET", "/api/kpis/eth-price") == (200, created)

    clock.advance(60)
    body = kpi(name="Ether", unit="USD")
    del body["id"]  # the path's id is used
    status, replaced = admin(client, "PUT", "/api/kpis/eth-price", body)
    assert status == 200
    assert (replaced["name"], replaced["unit"]) == ("Ether", "USD")
    assert replaced["createdAt"] == "2026-11-29T06:00:00Z"
    assert replaced["updatedAt"] == "2026-11-29T06:01:00Z"

    round_trip = {**replaced, "active": False}  # what GET answered can be PUT back
    status, again = admin(client, "PUT", "/api/kpis/eth-price", round_trip)
    assert status == 200 and again["active"] is False and again["yields"] == ["eth-price"]

    status, deleted = admin(client, "DELETE", "/api/kpis/eth-price")
    assert status == 200 and deleted["deleted"] == "eth-price"
    assert services.registry.kpis.get("eth-price") is None
    assert admin(client, "GET", "/api/kpis/eth-price")[0] == 404


@pytest.mark.parametrize(("body", "field"), [
    ({k: v for k, v in kpi().items() if k != "name"}, "name"),
    (kpi(name="   "), "name"),
    (kpi("bad id!"), "id"),
    (kpi(source={"kind": "collector", "collector": "nope"}), "source.collector"),
    (kpi(source={"kind": "n8n", "webhookUrl": "ftp://x"}), "source.webhookUrl"),
    (kpi(source={"kind": "collector", "collector": "no way"}), "source.collector"),
    (kpi(source={"kind": "telepathy"}), "source"),
    (kpi(analysisConfig={"high": 1, "low": 2}), "analysisConfig"),
    (kpi(kpiIds=["a", "a"]), "kpiIds"),
    (kpi(colour="blue"), "colour"),
])
def test_invalid_kpis_are_refused_naming_the_field(client: Client, services: Services,
                                                   body: dict[str, Any], field: str) -> None:
    status, error = admin(client, "POST", "/api/kpis", body)
    assert status == 422, error
    assert error["error"]["field"] == field
    assert services.registry.kpis.get(str(body.get("id"))) is None


def test_unreadable_or_non_object_bodies(client: Client) -> None:
    assert admin(client, "POST", "/api/kpis", "{not json")[0] == 400
    status, error = admin(client, "POST", "/api/kpis", [kpi()])
    assert status == 422 and "JSON object" in error["error"]["message"]


def test_refused_webhook_addresses_and_unresolvable_hosts(client: Client,
                                                          services: Services) -> None:
    metadata = kpi(source={"kind": "n8n", "webhookUrl": "http://169.254.169.254/latest"})
    status, error = admin(client, "POST", "/api/kpis", metadata)
    assert status == 403 and error["error"]["field"] == "source.webhookUrl"
    assert "metadata" in error["error"]["message"]
    unresolvable = kpi(source={"kind": "n8n", "webhookUrl": "https://n8n.invalid/webhook/eth",
                               "workflowId": "wf1"})
    status, created = admin(client, "POST", "/api/kpis", unresolvable)
    assert status == 201
    assert "cannot be resolved" in created["warnings"][0]


def test_unique_ids_and_yielded_ids(client: Client) -> None:
    status, error = admin(client, "POST", "/api/kpis", kpi("btc-price"))
    assert status == 409 and error["error"]["code"] == "already_exists"
    clash = kpi("other-multi", kpiIds=["cbbi-mvrv", "new-one"])
    status, error = admin(client, "POST", "/api/kpis", clash)
    assert status == 409 and "cbbi-mvrv" in error["error"]["message"]
    assert error["error"]["field"] == "kpiIds"


def test_replace_checks_the_path(client: Client) -> None:
    status, error = admin(client, "PUT", "/api/kpis/btc-price", kpi("eth-price"))
    assert status == 422 and error["error"]["field"] == "id"
    assert "btc-price" in error["error"]["message"]
    assert admin(client, "PUT", "/api/kpis/ghost", kpi("ghost"))[0] == 404
    assert admin(client, "DELETE", "/api/kpis/ghost")[0] == 404
    status, error = admin(client, "DELETE", "/api/kpis/btc-price?force=maybe")
    assert status == 422 and error["error"]["field"] == "force"


def test_a_kpi_a_job_is_collecting_is_only_deleted_with_force(
        client: Client, services: Services) -> None:
    job = create_job(services, plan_fan_out(services.registry.kpis.all(),
                                            ["btc-price", "cbbi-multi"]))
    status, error = admin(client, "DELETE", "/api/kpis/btc-price")
    assert status == 409
    assert job.trace_id in error["error"]["message"] and "force=true" in error["error"]["message"]
    status, error = admin(client, "DELETE", "/api/kpis/cbbi-multi")  # one of its yields
    assert status == 409 and job.trace_id in error["error"]["message"]
    assert services.registry.kpis.get("btc-price") is not None

    status, deleted = admin(client, "DELETE", "/api/kpis/btc-price?force=true")
    assert status == 200
    assert deleted["failedInJobs"] == {job.trace_id: ["btc-price"]}
    assert services.registry.kpis.get("btc-price") is None
    state = services.jobs.require(job.trace_id).state_of("btc-price")
    assert state.status is KpiStatus.FAILED and state.error is not None
    assert state.error["name"] == "KpiDeleted"
    assert services.jobs.require(job.trace_id).status is JobStatus.COLLECTING  # cbbi pending

    admin(client, "DELETE", "/api/kpis/cbbi-multi?force=true")
    assert services.jobs.require(job.trace_id).status is JobStatus.ANALYSING  # nothing left


def test_a_kpi_already_collected_by_the_job_can_be_deleted(client: Client,
                                                         services: Services) -> None:
    job = create_job(services, plan_fan_out(services.registry.kpis.all(),
                                            ["btc-price", "fear-greed"]))
    services.jobs.mark_kpi(job.trace_id, "fear-greed", KpiStatus.COLLECTED,
                           services.clock.now())
    status, deleted = admin(client, "DELETE", "/api/kpis/fear-greed")
    assert status == 200 and deleted["failedInJobs"] == {}


def test_deleting_warns_of_schedules_and_endpoints_naming_it(client: Client) -> None:
    admin(client, "POST", "/api/schedules", {"id": "btc-only", "kpiIds": ["btc-price"]})
    admin(client, "POST", "/api/endpoints", {"id": "tg", "name": "TG", "url": "tgram://123456789:AAH-test_token/12345",
                                             "kpis": ["btc-price"]})
    status, deleted = admin(client, "DELETE", "/api/kpis/btc-price")
    assert status == 200
    assert deleted["warnings"] == ["schedule 'btc-only' names ['btc-price']",
                                   "delivery endpoint 'tg' names ['btc-price']"]
