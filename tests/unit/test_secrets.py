"""Settings from Secrets Manager (moto in process): the deployed functions read their
keys from one secret; the environment wins; a bad secret stops the start clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from metric_stream.adapters.secrets import with_stored_secrets
from metric_stream.bootstrap import build_services
from metric_stream.errors import ConfigurationError, StorageError
from metric_stream.settings import Settings

REGION = "eu-west-1"


@pytest.fixture
def secrets() -> Iterator[object]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def aws(**overrides: object) -> Settings:
    return Settings(backend="aws", aws_region=REGION, secrets_id="metric-stream/prod",
                    **overrides)  # type: ignore[arg-type]


def store(client: object, value: str) -> None:
    client.create_secret(Name="metric-stream/prod", SecretString=value)  # type: ignore[attr-defined]


def test_unset_settings_are_filled_from_the_secret_by_their_environment_names(
        secrets: object) -> None:
    store(secrets, json.dumps({"METRIC_STREAM_ADMIN_KEY": "from-the-store",
                               "OPENROUTER_API_KEY": "sk-or-stored",
                               "METRIC_STREAM_PROXY_SECRET": "proxy-stored"}))
    settings = with_stored_secrets(aws())
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "from-the-store"
    assert settings.openrouter_api_key is not None
    assert settings.openrouter_api_key.get_secret_value() == "sk-or-stored"
    assert settings.proxy_secret is not None
    assert settings.proxy_secret.get_secret_value() == "proxy-stored"
    assert "from-the-store" not in repr(settings)


def test_the_environment_wins_over_the_secret(secrets: object,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store(secrets, json.dumps({"METRIC_STREAM_ADMIN_KEY": "from-the-store"}))
    monkeypatch.setenv("METRIC_STREAM_ADMIN_KEY", "from-the-environment")
    settings = with_stored_secrets(aws())
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "from-the-environment"


def test_the_aws_services_start_with_the_stored_settings(secrets: object) -> None:
    store(secrets, json.dumps({"METRIC_STREAM_INGESTION_KEY": "ingest-stored"}))
    services = build_services(aws(table_name="ms-secrets", bucket_name="ms-secrets"))
    assert services.settings.ingestion_key is not None
    assert services.settings.ingestion_key.get_secret_value() == "ingest-stored"


@pytest.mark.parametrize(("value", "says"), [
    ("not json", "is not a JSON object of settings"),
    ('["a list"]', "is not a JSON object of settings"),
    ('{"METRIC_STREAM_ADMN_KEY": "typo"}', "does not have: METRIC_STREAM_ADMN_KEY"),
    ('{"METRIC_STREAM_QUEUE_MAX_RECEIVES": "many"}', "queue_max_receives"),
])
def test_a_bad_secret_is_a_clear_configuration_error(secrets: object, value: str,
                                                     says: str) -> None:
    store(secrets, value)
    with pytest.raises(ConfigurationError) as caught:
        with_stored_secrets(aws())
    assert says in caught.value.message
    assert caught.value.field == "secrets_id"


def test_a_missing_secret_is_a_storage_error_naming_it(secrets: object) -> None:
    with pytest.raises(StorageError) as caught:
        with_stored_secrets(aws())
    assert "metric-stream/prod" in caught.value.message
    assert "ResourceNotFoundException" in caught.value.message


def test_without_a_secret_id_nothing_is_read() -> None:
    settings = Settings(backend="aws")
    assert with_stored_secrets(settings) is settings


def test_the_record_keys_come_from_the_secret_too(secrets: object) -> None:
    from metric_stream.models.delivery import DeliveryEndpoint
    from metric_stream.storage.sealing import RecordKey

    current, former = RecordKey.generate(), RecordKey.generate()
    store(secrets, json.dumps({"METRIC_STREAM_RECORD_KEY": current,
                               "METRIC_STREAM_RECORD_KEYS_OLD": former}))
    services = build_services(aws(table_name="ms-keys", bucket_name="ms-keys",
                                  queue_prefix="ms-keys-"))
    services.init()
    services.registry.endpoints.create(DeliveryEndpoint(id="hook", name="Hook",
                                                        url="https://example.org/in/tok"))
    ring = services.registry.endpoints.sealer.keyring()
    assert ring.sealing == RecordKey.parse(current, "k")
    assert RecordKey.parse(former, "k").id in ring.opening
    assert services.registry.endpoints.require("hook").url == "https://example.org/in/tok"
    assert current not in repr(services.settings)


def test_a_malformed_record_key_in_the_secret_stops_the_start(secrets: object) -> None:
    store(secrets, json.dumps({"METRIC_STREAM_RECORD_KEY": "too-short"}))
    with pytest.raises(ConfigurationError) as caught:
        build_services(aws(table_name="ms-keys", bucket_name="ms-keys"))
    assert "METRIC_STREAM_RECORD_KEY is not a record key" in caught.value.message
    assert "too-short" not in caught.value.message
