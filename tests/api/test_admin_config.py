"""Admin API: the system config (whole document, and the retry and fallback sections)."""

from __future__ import annotations

from typing import Any

import pytest

from metric_stream.bootstrap import Services
from tests.api.conftest import Client
from tests.api.test_admin_registry import admin


def test_get_gives_the_defaults_until_changed(client: Client) -> None:
    status, config = admin(client, "GET", "/api/config")
    assert status == 200
    assert config["retry"]["collection"] == {"retries": 3, "delaysS": [1.0, 2.0, 4.0]}
    assert config["retry"]["delivery"] == {"retries": 2, "delaysS": [5.0, 10.0]}
    assert config["lifecycle"]["fanInTimeoutS"] == 1800
    assert config["fallback"]["chart"] == "image"
    assert [s["kind"] for s in config["analysisChains"]["default"]["steps"]] == [
        "image", "numerical", "technical", "synthesis"]
    assert "updatedAt" not in config


def test_put_replaces_the_whole_document(client: Client, services: Services) -> None:
    _, config = admin(client, "GET", "/api/config")
    config["lifecycle"]["fanInTimeoutS"] = 600
    config["lifecycle"]["deliverPartial"] = False
    config["analysisChains"]["short"] = {"steps": [
        {"kind": "synthesis", "provider": "openrouter", "model": "openai/gpt-4o-mini",
         "prompt": {"task": "one line"}}]}
    config["defaultChain"] = "short"
    del config["fallback"]  # back to its defaults
    status, saved = admin(client, "PUT", "/api/config", config)
    assert status == 200, saved
    assert saved["updatedAt"] == "2026-11-29T06:00:00Z"
    stored = services.config.get()
    assert stored.lifecycle.fan_in_timeout_s == 600 and not stored.lifecycle.deliver_partial
    assert stored.default_chain == "short"
    assert admin(client, "GET", "/api/config")[1] == saved


@pytest.mark.parametrize(("body", "field"), [
    ({"retry": {"llm": {"retries": 2, "delaysS": [1]}}}, "retry.llm"),
    ({"retry": {"collection": {"retries": -1, "delaysS": []}}}, "retry.collection.retries"),
    ({"lifecycle": {"fanInTimeoutS": 5}}, "lifecycle.fanInTimeoutS"),
    ({"defaultChain": "missing"}, ""),
    ({"analysisChains": {"default": {"steps": [{"kind": "image", "provider": "openai",
                                                "model": "x"}]}}},
     "analysisChains.default.steps.0.provider"),
    ({"retentionDays": 0}, "retentionDays"),
    ({"colour": "blue"}, "colour"),
])
def test_invalid_config_is_refused_naming_the_field(client: Client, services: Services,
                                                    body: dict[str, Any], field: str) -> None:
    status, error = admin(client, "PUT", "/api/config", body)
    assert status == 422
    assert error["error"].get("field", "") == field
    if not field:
        assert "defaultChain" in error["error"]["message"]
    assert services.config.get().updated_at is None  # nothing saved


def test_put_retry_changes_only_the_policies_given(client: Client, services: Services) -> None:
    status, saved = admin(client, "PUT", "/api/config/retry",
                          {"llm": {"retries": 3, "delaysS": [1, 2, 8]}})
    assert status == 200
    assert saved["retry"]["llm"] == {"retries": 3, "delaysS": [1.0, 2.0, 8.0]}
    assert saved["retry"]["collection"] == {"retries": 3, "delaysS": [1.0, 2.0, 4.0]}
    assert services.config.get().retry.llm.delay(3) == 8.0
    status, error = admin(client, "PUT", "/api/config/retry",
                          {"delivery": {"retries": 1, "delaysS": [5, 10]}})
    assert status == 422 and error["error"]["field"] == "delivery"
    status, error = admin(client, "PUT", "/api/config/retry",
                          {"delivery": {"retries": 11, "delaysS": []}})
    assert status == 422 and error["error"]["field"] == "delivery.retries"
    status, error = admin(client, "PUT", "/api/config/retry", {"analysis": {}})
    assert status == 422 and error["error"]["field"] == "analysis"
    assert services.config.get().retry.delivery.retries == 2


def test_put_fallback_changes_only_the_fields_given(client: Client, services: Services) -> None:
    status, saved = admin(client, "PUT", "/api/config/fallback",
                          {"chart": "text", "chartText": "No chart today."})
    assert status == 200
    assert saved["fallback"]["chart"] == "text" and saved["fallback"]["llmNote"] is True
    assert services.config.get().fallback.chart_text == "No chart today."
    status, error = admin(client, "PUT", "/api/config/fallback", {"chart": "pdf"})
    assert status == 422 and error["error"]["field"] == "chart"
    status, error = admin(client, "PUT", "/api/config/fallback", ["chart"])
    assert status == 422 and "JSON object" in error["error"]["message"]
    assert admin(client, "PUT", "/api/config/fallback", "{")[0] == 400
    assert services.config.get().fallback.chart == "text"
