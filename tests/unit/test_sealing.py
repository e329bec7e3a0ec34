"""Delivery endpoints' secrets sealed at rest: round trips, a wrong key, a tampered or
moved blob, key rotation, records stored in clear before sealing, the embedded key
file and the aws backend without a key."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metric_stream.adapters.record_keys import keeps_a_key_file, make_key_file, record_keyring
from metric_stream.adapters.sqlite import Database, SqliteRecordStore
from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import ManualClock
from metric_stream.errors import ConfigurationError, UnreadableRecord
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.ports import Key, Put, Update
from metric_stream.settings import Settings
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item
from metric_stream.storage.registry import Registry
from metric_stream.storage.sealing import SEALED, Keyring, RecordKey, Sealer, key_id
from tests.cli_support import run_cli
from tests.conftest import TEST_RECORD_KEY, make_services

PASSWORD = "Pw-7f3a91c2e8d4"
TOKEN = "123456:AAbot-token-5e9d1c"
SIGNING = "whsec_U2VhbGVkU2lnbmluZ1NlY3JldDk4"
OTHER_KEY = RecordKey.generate()


def endpoint(endpoint_id: str = "team", **overrides: object) -> DeliveryEndpoint:
    values: dict[str, object] = {
        "id": endpoint_id, "name": "Team", "kpis": ["btc"],
        "url": f"https://reports:{PASSWORD}@hooks.example.com/in/{TOKEN}?token=q-{TOKEN}",
        "signing_secret": SIGNING}
    values.update(overrides)
    return DeliveryEndpoint(**values)  # type: ignore[arg-type]


def services_with(tmp_path: Path, clock: ManualClock, **options: object) -> Services:
    return make_services("embedded", tmp_path, clock, **options)


def raw(services: Services, endpoint_id: str) -> dict[str, object]:
    item = services.records.get(Key(keys.ENDPOINT_REGISTRY, endpoint_id))
    assert item is not None
    return item


def test_an_endpoint_round_trips_and_its_record_keeps_only_what_is_not_secret(
        tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    stored = services.registry.endpoints.create(endpoint())
    assert services.registry.endpoints.require("team") == stored
    assert services.registry.endpoints.all() == [stored]
    item = raw(services, "team")
    text = json.dumps(item)
    for secret in (PASSWORD, TOKEN, SIGNING, "hooks.example.com/in"):
        assert secret not in text
    assert "url" not in item and "signingSecret" not in item
    assert item["maskedUrl"] == "https://hooks.example.com/***?***"
    assert item["kpis"] == ["btc"] and item["active"] is True and item["name"] == "Team"
    assert key_id(item[SEALED]) == RecordKey.parse(TEST_RECORD_KEY, "test").id


def test_each_write_seals_afresh(tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    services.registry.endpoints.create(endpoint())
    first = raw(services, "team")[SEALED]
    services.registry.endpoints.put(endpoint())
    assert raw(services, "team")[SEALED] != first  # a new nonce every time


def test_health_updates_leave_the_sealed_fields_readable(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    services.registry.endpoints.create(endpoint())
    services.records.write([Update(services.registry.endpoints.key("team"),
                                   set={"active": False, "health": {"consecutiveFailures": 3}})])
    found = services.registry.endpoints.require("team")
    assert not found.active and found.health.consecutive_failures == 3
    assert found.url == endpoint().url and found.signing_secret == SIGNING


def test_a_wrong_key_is_a_clear_error_naming_the_endpoint(tmp_path: Path,
                                                          clock: ManualClock) -> None:
    services_with(tmp_path, clock, record_key=TEST_RECORD_KEY).registry.endpoints.create(
        endpoint())
    wrong = services_with(tmp_path, clock, record_key=OTHER_KEY)
    with pytest.raises(ConfigurationError) as caught:
        wrong.registry.endpoints.require("team")
    message = caught.value.message
    assert "delivery endpoint 'team'" in message
    assert "METRIC_STREAM_RECORD_KEY" in message
    assert RecordKey.parse(TEST_RECORD_KEY, "t").id in message  # the key id, not the key
    for secret in (PASSWORD, TOKEN, SIGNING, TEST_RECORD_KEY, OTHER_KEY):
        assert secret not in message
    with pytest.raises(ConfigurationError, match="'team'"):
        wrong.registry.endpoints.all()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "moved"])
def test_a_tampered_record_is_a_clear_error_naming_the_endpoint(
        tmp_path: Path, clock: ManualClock, damage: str) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    services.registry.endpoints.create(endpoint())
    services.registry.endpoints.create(endpoint("other", url="https://example.org/other-hook"))
    item = raw(services, "team")
    blob = str(item[SEALED])
    head, _, body = blob.rpartition(".")
    if damage == "flip":
        middle = len(body) // 2
        body = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1:]
        item[SEALED] = f"{head}.{body}"
    elif damage == "truncate":
        item[SEALED] = f"{head}.{body[:12]}"
    elif damage == "garbage":
        item[SEALED] = "not a sealed blob"
    else:  # another endpoint's blob, which opens with the same key but is bound to its id
        item[SEALED] = raw(services, "other")[SEALED]
    services.records.write([Put(services.registry.endpoints.key("team"), item)])
    with pytest.raises(UnreadableRecord) as caught:
        services.registry.endpoints.get("team")
    assert caught.value.message.startswith("delivery endpoint 'team': ")
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # no traceback
    for secret in (PASSWORD, TOKEN, SIGNING):
        assert secret not in caught.value.message
    assert services.registry.endpoints.require("other").url == "https://example.org/other-hook"


def test_rotation_reads_with_the_old_key_and_reseal_moves_every_record(
        tmp_path: Path, clock: ManualClock) -> None:
    services_with(tmp_path, clock, record_key=TEST_RECORD_KEY).registry.endpoints.create(
        endpoint())
    rotated = services_with(tmp_path, clock, record_key=OTHER_KEY,
                            record_keys_old=f" {RecordKey.generate()}, {TEST_RECORD_KEY} ")
    assert rotated.registry.endpoints.require("team").url == endpoint().url
    rotated.registry.endpoints.create(endpoint("new"))
    report = rotated.registry.endpoints.reseal()
    old_id, new_id = (RecordKey.parse(k, "t").id for k in (TEST_RECORD_KEY, OTHER_KEY))
    assert report.key_id == new_id
    assert report.rotated == {old_id: ["team"]}
    assert report.current == ["new"] and report.from_clear == [] and report.unreadable == []
    assert {key_id(raw(rotated, i)[SEALED]) for i in ("team", "new")} == {new_id}
    without_old = services_with(tmp_path, clock, record_key=OTHER_KEY)
    assert without_old.registry.endpoints.require("team") == \
        rotated.registry.endpoints.require("team")
    again = without_old.registry.endpoints.reseal()
    assert again.written == 0 and again.current == ["new", "team"]


def test_a_record_stored_in_clear_still_reads_and_is_sealed_when_written(
        tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    legacy = endpoint()
    services.records.write([Put(services.registry.endpoints.key("team"), to_item(legacy))])
    assert raw(services, "team")["url"] == legacy.url  # as stores made before sealing hold it
    assert services.registry.endpoints.require("team") == legacy
    services.registry.endpoints.replace(legacy.model_copy(update={"name": "Renamed"}))
    item = raw(services, "team")
    assert SEALED in item and PASSWORD not in json.dumps(item)
    assert services.registry.endpoints.require("team").url == legacy.url


def test_reseal_seals_records_stored_in_clear_and_a_dry_run_changes_nothing(
        tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    services.records.write([Put(services.registry.endpoints.key(e.id), to_item(e))
                            for e in (endpoint("a"), endpoint("b", signing_secret=None))])
    services.registry.endpoints.create(endpoint("c"))
    dry = services.registry.endpoints.reseal(dry_run=True)
    assert dry.from_clear == ["a", "b"] and dry.current == ["c"]
    assert "url" in raw(services, "a")
    done = services.registry.endpoints.reseal()
    assert done.from_clear == ["a", "b"] and done.written == 2
    for endpoint_id in ("a", "b"):
        item = raw(services, endpoint_id)
        assert "url" not in item and "signingSecret" not in item and SEALED in item
        assert item["maskedUrl"] == "https://hooks.example.com/***?***"
    assert services.registry.endpoints.require("a") == endpoint("a")
    assert services.registry.endpoints.require("b").signing_secret is None


def test_reseal_leaves_an_unreadable_record_as_it_is_and_says_why(
        tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    services_with(tmp_path, clock, record_key=OTHER_KEY).registry.endpoints.create(endpoint("x"))
    services.records.write([Put(services.registry.endpoints.key("y"), to_item(endpoint("y")))])
    report = services.registry.endpoints.reseal()
    assert report.from_clear == ["y"]
    (problem,) = report.unreadable
    assert "delivery endpoint 'x'" in problem and "not configured" in problem


def test_a_record_changed_while_resealing_is_read_again(tmp_path: Path,
                                                        clock: ManualClock) -> None:
    services = services_with(tmp_path, clock, record_key=TEST_RECORD_KEY)
    collection = services.registry.endpoints
    services.records.write([Put(collection.key("a"), to_item(endpoint("a")))])
    original = collection._resealed
    calls: list[str] = []

    def racing(sk: str, item: dict[str, object]) -> Update:
        update = original(sk, item)
        if not calls:  # someone changes the URL between the read and the write
            changed = endpoint("a", url="https://example.org/changed")
            services.records.write([Put(collection.key("a"), to_item(changed))])
        calls.append(sk)
        return update

    collection._resealed = racing  # type: ignore[method-assign]
    report = collection.reseal()
    assert calls == ["a", "a"]
    assert report.from_clear == ["a"] and report.changed == []
    assert collection.require("a").url == "https://example.org/changed"
    assert "url" not in raw(services, "a")


# ---------------------------------------------------------------- where the key comes from
def test_the_embedded_backend_makes_its_key_once_into_the_home_folder(
        tmp_path: Path, clock: ManualClock) -> None:
    services = services_with(tmp_path, clock)
    path = services.settings.record_key_path
    assert services.registry.endpoints.all() == []
    assert not path.exists()  # made when something is sealed, not before
    services.registry.endpoints.create(endpoint())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    again = services_with(tmp_path, clock)
    assert again.registry.endpoints.require("team").url == endpoint().url
    again.registry.endpoints.create(endpoint("second"))
    assert path.read_text() == key
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".record.key")] == []


def test_concurrent_processes_agree_on_one_key_file(tmp_path: Path) -> None:
    path = tmp_path / "home" / "record.key"
    made: list[str] = []
    threads = [threading.Thread(target=lambda: made.append(make_key_file(path).id))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 1 and len(made) == 8
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.key"]


def test_the_key_file_keeps_opening_once_a_key_is_configured(tmp_path: Path,
                                                             clock: ManualClock) -> None:
    services_with(tmp_path, clock).registry.endpoints.create(endpoint())
    configured = services_with(tmp_path, clock, record_key=OTHER_KEY)
    assert configured.registry.endpoints.require("team").url == endpoint().url
    report = configured.registry.endpoints.reseal()
    assert report.written == 1 and report.key_id == RecordKey.parse(OTHER_KEY, "t").id
    os.unlink(configured.settings.record_key_path)
    assert services_with(tmp_path, clock, record_key=OTHER_KEY).registry.endpoints.require(
        "team").signing_secret == SIGNING


@pytest.mark.parametrize("value", ["short", "x" * 44, TEST_RECORD_KEY[:-4]])
def test_a_malformed_key_stops_the_start_naming_the_setting_not_the_value(
        tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_services(Settings(home=tmp_path, record_key=value))  # type: ignore[arg-type]
    assert "METRIC_STREAM_RECORD_KEY is not a record key" in caught.value.message
    assert value not in caught.value.message
    with pytest.raises(ConfigurationError, match=r"RECORD_KEYS_OLD \(key 2\)"):
        build_services(Settings(home=tmp_path, record_keys_old=f"{OTHER_KEY},{value}"))  # type: ignore[arg-type]


def test_url_safe_base64_is_accepted_too() -> None:
    standard = RecordKey.generate()
    url_safe = standard.replace("+", "-").replace("/", "_").rstrip("=")
    assert RecordKey.parse(url_safe, "k") == RecordKey.parse(standard, "k")


def test_the_aws_backend_without_a_key_refuses_to_seal_naming_the_setting() -> None:
    from moto import mock_aws

    with mock_aws():
        services = build_services(Settings(backend="aws", table_name="ms-nokey",
                                           bucket_name="ms-nokey", queue_prefix="ms-nokey-"))
        services.init()
        assert services.registry.endpoints.all() == []  # nothing sealed: nothing refused
        legacy = endpoint()
        services.records.write([Put(services.registry.endpoints.key("team"), to_item(legacy))])
        assert services.registry.endpoints.require("team") == legacy  # in clear: readable
        with pytest.raises(ConfigurationError) as caught:
            services.registry.endpoints.create(endpoint("new"))
        assert caught.value.message.startswith("METRIC_STREAM_RECORD_KEY is not set")
        assert caught.value.field == "record_key"
        with pytest.raises(ConfigurationError, match="METRIC_STREAM_RECORD_KEY is not set"):
            services.registry.endpoints.reseal()
        assert not Path(".metric-stream/record.key").exists()


@pytest.mark.parametrize(("backend", "endpoint_url", "local"), [
    ("embedded", None, True),
    ("aws", None, False),
    ("aws", "https://dynamodb.eu-west-1.amazonaws.com", False),
    ("aws", "http://127.0.0.1:5000", True),
    ("aws", "http://localhost:4566", True),
    ("aws", "http://[::1]:5000", True),
    ("aws", "http://10.0.0.5:5000", False),
])
def test_a_key_file_is_kept_only_on_a_machine_of_ones_own(
        backend: str, endpoint_url: str | None, local: bool) -> None:
    settings = Settings(backend=backend, aws_endpoint_url=endpoint_url)  # type: ignore[arg-type]
    assert keeps_a_key_file(settings) is local


def test_the_keyring_seals_with_the_configured_key_and_opens_with_every_one(
        tmp_path: Path) -> None:
    old = RecordKey.generate()
    settings = Settings(home=tmp_path, record_key=TEST_RECORD_KEY,  # type: ignore[arg-type]
                        record_keys_old=old)
    ring = record_keyring(settings, True)
    assert ring.sealing == RecordKey.parse(TEST_RECORD_KEY, "k")
    assert set(ring.opening) == {RecordKey.parse(k, "k").id for k in (TEST_RECORD_KEY, old)}
    assert not settings.record_key_path.exists()  # a configured key needs no file
    assert TEST_RECORD_KEY not in repr(ring) and old not in repr(ring)


# ---------------------------------------------------------------- properties
SECRET_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                             exclude_characters="/?#@:%[]\\"),
                      min_size=12, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=SECRET_TEXT, token=SECRET_TEXT, name=st.text(min_size=1, max_size=40),
       secret=st.from_regex(r"whsec_[A-Za-z0-9+/=]{20,60}", fullmatch=True),
       endpoint_id=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True))
def test_any_endpoint_round_trips_and_no_secret_reaches_its_record(
        password: str, token: str, name: str, secret: str, endpoint_id: str) -> None:
    assume(all(v not in name and v not in endpoint_id for v in (password, token, secret)))
    ring = Keyring.of(RecordKey.parse(TEST_RECORD_KEY, "k"), [])
    collection = Registry(SqliteRecordStore(Database(Path("unused.db")), ManualClock()),
                          Sealer(lambda _sealing: ring)).endpoints  # dump and load only
    model = DeliveryEndpoint(id=endpoint_id, name=name, signing_secret=secret,
                             url=f"https://user:{password}@hooks.example.com/x/{token}?t=1")
    item = collection.dump(model)
    assert collection.load(endpoint_id, item) == model
    text = json.dumps(item, ensure_ascii=False)
    for value in (password, token, secret):
        assert value not in text


# ---------------------------------------------------------------- the command
def legacy_store(home: Path) -> Services:
    """A store written before sealing: its endpoints in clear."""
    services = build_services(Settings(home=home))
    services.init()
    services.records.write([Put(services.registry.endpoints.key(e.id), to_item(e))
                            for e in (endpoint("a"), endpoint("b"))])
    return services


def database_files(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("metric-stream.db*"))


def test_reseal_command_seals_a_store_written_in_clear_and_scrubs_its_file(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    legacy_store(home)
    code, out, _ = run_cli(capsys, "--home", str(home), "reseal", "--dry-run")
    assert code == 0
    assert "would seal 2 stored in clear: a, b" in out and "dry run" in out
    assert PASSWORD.encode() in database_files(home)
    code, out, _ = run_cli(capsys, "--home", str(home), "reseal")
    assert code == 0, out
    assert "sealed 2 stored in clear: a, b" in out
    assert (home / "record.key").is_file()
    assert PASSWORD.encode() not in database_files(home)
    assert TOKEN.encode() not in database_files(home)
    code, out, _ = run_cli(capsys, "--home", str(home), "reseal")
    assert (code, "2 already sealed with it") == (0, out.splitlines()[1].strip())


def test_reseal_command_rotates_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEY", TEST_RECORD_KEY)
    build_services(Settings(home=home)).registry.endpoints.create(endpoint())
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEY", OTHER_KEY)
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEYS_OLD", TEST_RECORD_KEY)
    code, out, _ = run_cli(capsys, "--home", str(home), "reseal")
    old_id = RecordKey.parse(TEST_RECORD_KEY, "k").id
    assert code == 0
    assert f"sealed 1 sealed with former key {old_id}: team" in out
    assert "METRIC_STREAM_RECORD_KEYS_OLD can go" in out
    monkeypatch.delenv("METRIC_STREAM_RECORD_KEYS_OLD")
    assert build_services(Settings(home=home)).registry.endpoints.require("team").url == \
        endpoint().url
    for secret in (TEST_RECORD_KEY, OTHER_KEY):
        assert secret not in out


def test_reseal_command_fails_naming_what_it_could_not_open(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEY", TEST_RECORD_KEY)
    build_services(Settings(home=home)).registry.endpoints.create(endpoint())
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEY", OTHER_KEY)
    code, out, err = run_cli(capsys, "--home", str(home), "reseal")
    assert code == 1
    assert "left as is: delivery endpoint 'team' is sealed with record key" in out
    assert "Traceback" not in err


def test_reseal_and_init_on_aws_without_a_key_name_the_setting(
        capsys: pytest.CaptureFixture[str]) -> None:
    from moto import mock_aws

    with mock_aws():
        code, out, _ = run_cli(capsys, "--backend", "aws", "init", "--no-defaults")
        assert code == 0
        assert "warning: METRIC_STREAM_RECORD_KEY is not set" in out
        code, _, err = run_cli(capsys, "--backend", "aws", "reseal")
        assert code == 1
        assert "METRIC_STREAM_RECORD_KEY is not set" in err and "Traceback" not in err


def test_a_malformed_key_is_a_clear_command_error(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_STREAM_RECORD_KEY", "not-a-key-but-close-to-one")
    code, _, err = run_cli(capsys, "init")
    assert code == 1
    assert "METRIC_STREAM_RECORD_KEY is not a record key" in err
    assert "not-a-key-but-close-to-one" not in err
