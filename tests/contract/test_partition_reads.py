"""Reading one KPI's year never scans other KPIs, on either backend."""

from __future__ import annotations

from typing import Any

import pytest

from metric_stream.bootstrap import Services
from metric_stream.storage import keys


def test_embedded_partition_read_uses_the_primary_key(services: Services) -> None:
    if services.settings.backend != "embedded":
        pytest.skip("SQLite query plan")
    plan = services.records.explain_query(keys.timeseries("btc"))  # type: ignore[attr-defined]
    assert "USING PRIMARY KEY" in plan
    assert "SCAN" not in plan


def test_dynamodb_partition_read_is_one_query_on_the_partition_key(services: Services) -> None:
    if services.settings.backend != "aws":
        pytest.skip("DynamoDB calls")
    calls: list[tuple[str, dict[str, Any]]] = []
    client = services.records.clients.dynamodb  # type: ignore[attr-defined]

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, params))

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    services.timeseries.points("btc")
    assert [name for name, _ in calls] == ["Query"]
    params = calls[0][1]
    assert "pk = :pk" in params["KeyConditionExpression"].replace("#pk", "pk")
    assert params["ExpressionAttributeValues"][":pk"] == {"S": "timeseries:btc"}
