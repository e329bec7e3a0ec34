"""Operator alerts from the tick: dead letters growing and storage past its limit, each
sent once per level to the operator channels only; the alert shapes per channel."""

from __future__ import annotations

import json
from pathlib import Path

from metric_stream.bootstrap import build_services
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.server.loops import cycle_tick
from metric_stream.services import admin
from metric_stream.services.alerts import alert_messages, check_operations
from metric_stream.settings import Settings
from tests.delivery_sink import running_sink


def test_dead_letters_and_storage_alert_the_operators_once(tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path))
    services.init()
    with running_sink() as sink:
        admin.create_endpoint(services, DeliveryEndpoint(
            id="ops", name="Ops", url=sink.on("/ops"), operator=True))
        admin.create_endpoint(services, DeliveryEndpoint(
            id="reader", name="Reader", url=sink.on("/reader")))
        assert check_operations(services) == []  # nothing to say yet

        services.queue.send("analysis", {"traceId": "broken"})
        [message] = services.queue.receive("analysis", max_messages=1)
        services.queue.dead_letter("analysis", message, "malformed")
        config = services.config.get()
        services.config.put(config.model_copy(update={"delivery": config.delivery.model_copy(
            update={"storage_alert_bytes": 1})}), services.clock.now())

        assert cycle_tick(services).alerts == ["dead-letters-analysis", "storage"]
        assert check_operations(services) == []  # once per cause and level
        alerts = [json.loads(hit.body) for hit in sink.hits("/ops")]
        causes = sorted(a["cause"] for a in alerts)
        assert causes[0] == "dead-letters-analysis-1" and causes[1].startswith("storage-")
        assert len(causes) == 2
        assert all(a["type"] == "metric-stream.alert" for a in alerts)
        assert sink.hits("/reader") == []  # report readers get no alerts


def test_alert_messages_are_escaped_and_short() -> None:
    hostile = "<script>alert(1)</script> & @everyone"
    messages = alert_messages(f"job x: {hostile}", [hostile] * 20, scope="x", cause="partial")
    assert "<script>" not in messages["telegram"] and "<script>" not in messages["email"]["html"]
    assert "<script>" not in messages["slack"]["text"]
    assert messages["discord"]["allowed_mentions"] == {"parse": []}
    assert len(messages["sms"]) <= 160 and messages["sms"].isascii()
    assert "... and 10 more" in messages["email"]["text"]
    assert messages["webhook"]["lines"] == [hostile] * 20
