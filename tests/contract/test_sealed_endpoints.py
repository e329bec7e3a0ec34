"""Delivery endpoints' secrets on every backend: what the backend itself stores (the
SQLite file, the DynamoDB item as the service holds it) carries none of them, while
the registry hands back the real values, lists and filters without opening anything,
and a store written before sealing is sealed by `reseal`."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest

from metric_stream.bootstrap import Services
from metric_stream.errors import UnreadableRecord
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.ports import Put, Update
from metric_stream.services.reseal import reseal
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

PASSWORD = "CtPassword-58e1b7"
BOT_TOKEN = "987654:CtBotToken-a1f3"
WEBHOOK_PATH = "CtWebhookPath-d29c4e"
QUERY_TOKEN = "CtQueryToken-77b0a5"
SIGNING = "whsec_Q29udHJhY3RTaWduaW5nU2VjcmV0"
SECRETS = (PASSWORD, BOT_TOKEN, WEBHOOK_PATH, QUERY_TOKEN, SIGNING)


def endpoints() -> list[DeliveryEndpoint]:
    return [
        DeliveryEndpoint(id="hook", name="Hook", kpis=["btc"], signing_secret=SIGNING,
                         url=f"https://ops:{PASSWORD}@hooks.example.com/{WEBHOOK_PATH}"
                             f"?token={QUERY_TOKEN}"),
        DeliveryEndpoint(id="bot", name="Bot", kpis="alerts", url=f"tgram://{BOT_TOKEN}/-100"),
        DeliveryEndpoint(id="mail", name="Mail", active=False,
                         url=f"mailto://reports:{PASSWORD}@mail.example.com?to=a@example.com"),
    ]


def raw_store(services: Services) -> str:
    """Everything the backend holds, as it holds it (no adapter decoding it)."""
    if services.settings.backend == "aws":
        import boto3

        client = boto3.client("dynamodb", region_name=services.settings.aws_region)
        items = client.scan(TableName=services.settings.table_name)["Items"]
        return json.dumps(items, ensure_ascii=False)
    path = services.settings.database_path
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT pk, sk, body FROM records").fetchall()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return json.dumps(rows, ensure_ascii=False) + files.decode("latin-1")


def raw_endpoint(services: Services, endpoint_id: str) -> str:
    if services.settings.backend == "aws":
        import boto3

        client = boto3.client("dynamodb", region_name=services.settings.aws_region)
        item = client.get_item(TableName=services.settings.table_name,
                               Key={"pk": {"S": keys.ENDPOINT_REGISTRY}, "sk": {"S": endpoint_id}})
        return json.dumps(item["Item"])
    with closing(sqlite3.connect(services.settings.database_path)) as db:
        (body,) = db.execute("SELECT body FROM records WHERE pk = ? AND sk = ?",
                             (keys.ENDPOINT_REGISTRY, endpoint_id)).fetchone()
    return str(body)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_the_stored_items_hold_no_secret_and_read_back_whole(services: Services) -> None:
    for endpoint in endpoints():
        services.registry.endpoints.create(endpoint)
    for endpoint in endpoints():
        stored = raw_endpoint(services, endpoint.id)
        assert leaked(stored) == [], endpoint.id
        assert '"sealed"' in stored and endpoint.masked_url in stored
    assert leaked(raw_store(services)) == []
    assert sorted(services.registry.endpoints.all(), key=lambda e: e.id) == \
        sorted(endpoints(), key=lambda e: e.id)


def test_listing_and_counting_read_the_clear_fields_without_a_key(services: Services) -> None:
    for endpoint in endpoints():
        services.registry.endpoints.create(endpoint)
    items = dict(services.records.query(keys.ENDPOINT_REGISTRY))
    assert {k: (v["active"], v["kpis"]) for k, v in items.items()} == {
        "bot": (True, "alerts"), "hook": (True, ["btc"]), "mail": (False, "all")}
    assert items["bot"]["maskedUrl"] == "tgram://***"


def test_a_health_update_keeps_the_record_sealed(services: Services) -> None:
    services.registry.endpoints.create(endpoints()[0])
    services.records.write([Update(services.registry.endpoints.key("hook"),
                                   set={"health": {"consecutiveFailures": 2}})])
    assert services.registry.endpoints.require("hook").health.consecutive_failures == 2
    assert services.registry.endpoints.require("hook").signing_secret == SIGNING
    assert leaked(raw_endpoint(services, "hook")) == []


def test_reseal_seals_a_store_written_before_sealing(services: Services) -> None:
    legacy = endpoints()
    services.records.write([Put(services.registry.endpoints.key(e.id), to_item(e))
                            for e in legacy])
    assert PASSWORD in raw_endpoint(services, "hook")  # as it was stored before
    assert services.registry.endpoints.all() == sorted(legacy, key=lambda e: e.id)
    done = reseal(services)
    assert done.endpoints.from_clear == ["bot", "hook", "mail"]
    assert done.scrubbed is True
    for endpoint in legacy:
        assert leaked(raw_endpoint(services, endpoint.id)) == []
    assert leaked(raw_store(services)) == []  # the database file too, scrubbed
    assert services.registry.endpoints.all() == sorted(legacy, key=lambda e: e.id)
    assert reseal(services).endpoints.written == 0


def test_a_record_sealed_for_one_endpoint_does_not_open_as_another(
        services: Services) -> None:
    services.registry.endpoints.create(endpoints()[0])
    moved = services.records.get(services.registry.endpoints.key("hook"))
    assert moved is not None
    services.records.write([Put(services.registry.endpoints.key("copy"), moved)])
    with pytest.raises(UnreadableRecord, match="delivery endpoint 'copy'"):
        services.registry.endpoints.require("copy")
