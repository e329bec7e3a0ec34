"""The data contract (SPEC "Data contract") and the admin models, one rule at a time."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from metric_stream.errors import InvalidInput
from metric_stream.models import (
    DeliveryEndpoint,
    ErrorReport,
    KpiDefinition,
    KpiResult,
    KpiTrigger,
    MultiKpiResult,
    RetryPolicy,
    Schedule,
    SystemConfig,
    Thresholds,
    mask_url,
    new_trace_id,
    parse,
    parse_result,
)
from metric_stream.models.wire import DataObject, extras_of, value_of

TRACE = "trace_20261129_060000_a1b2c3"
ID_RULE = "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
ZONE_RULE = "must carry a timezone, e.g. 2026-11-29T06:00:00Z or +00:00"
ISO_RULE = "must be an ISO 8601 date and time with a timezone, e.g. 2026-11-29T06:00:00Z"
RANGE_RULE = "must be 0 or have a magnitude between 1e-100 and 1e100"


def single(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"traceId": TRACE, "kpiId": "cmc-btc-dominance",
                               "timestamp": "2026-11-29T06:00:00Z", "kpiType": "cmc",
                               "data": 57.25}
    payload.update(changes)
    return payload


def multi(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "traceId": TRACE, "timestamp": "2026-11-29T06:00:00Z", "kpiType": "cbbi",
        "kpiIds": ["cbbi-rhodl", "cbbi-mvrv", "cbbi-confidence"],
        "data": {"cbbi-rhodl": 0.61, "cbbi-mvrv": 2.5, "cbbi-confidence": {"value": 0.7}},
    }
    payload.update(changes)
    return payload


def error_report(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"traceId": TRACE, "kpiId": "cmc-btc-dominance",
                               "error": {"message": "429 Too Many Requests"}}
    payload.update(changes)
    return payload


def definition(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "cmc-btc-dominance", "name": "BTC dominance", "kpiType": "cmc",
        "source": {"kind": "n8n", "webhookUrl": "https://n8n.example.com/webhook/cmc"},
    }
    payload.update(changes)
    return payload


def problems(model: type[Any], data: Any) -> dict[str, str]:
    """field path -> message of every problem `parse` reports (it must refuse)."""
    with pytest.raises(InvalidInput) as refused:
        parse(model, data)
    return {p.field: p.message for p in refused.value.problems}


def result_problems(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        parse_result(data)
    return {p.field: p.message for p in refused.value.problems}


# -- single-KPI results ---------------------------------------------------------------


def test_single_result_with_number_data() -> None:
    result = parse_result(single())
    assert isinstance(result, KpiResult)
    assert result.trace_id == TRACE
    assert result.kpi_type == "cmc"
    assert result.values == {"cmc-btc-dominance": 57.25}
    assert extras_of(result.data) == {}
    assert result.to_wire() == single()


def test_integer_data_is_a_float_value() -> None:
    result = parse_result(single(data=97000))
    assert isinstance(result.data, float)
    assert result.values == {"cmc-btc-dominance": 97000.0}


def test_single_result_with_object_data_keeps_other_fields_as_point_metadata() -> None:
    data = {"value": 57.25, "source": "coinmarketcap", "volume24h": 1.5e11, "flags": ["ok"]}
    result = parse_result(single(data=data))
    assert isinstance(result, KpiResult)
    assert isinstance(result.data, DataObject)
    assert value_of(result.data) == 57.25
    assert extras_of(result.data) == {"source": "coinmarketcap", "volume24h": 1.5e11,
                                      "flags": ["ok"]}
    assert result.to_wire()["data"] == data


def test_object_data_needs_a_numeric_value() -> None:
    assert result_problems(single(data={"volume": 3})) == {"data.value": "is required"}
    assert result_problems(single(data={"value": "3"})) == {
        "data.value": "Input should be a valid number"}


def test_chart_reference_is_checked() -> None:
    chart = {"url": "https://charts.example.com/btc.png", "type": "line", "timeRange": "30d"}
    result = parse_result(single(chart=chart))
    assert isinstance(result, KpiResult)
    assert result.chart is not None
    assert result.chart.time_range == "30d"
    assert result_problems(single(chart={**chart, "url": "ftp://x/y.png"})) == {
        "chart.url": "must be an absolute http(s) URL"}


def test_result_shape_needs_exactly_one_of_kpi_id_and_kpi_ids() -> None:
    neither = single()
    del neither["kpiId"]
    assert result_problems(neither) == {
        "kpiId": "is required (or kpiIds for a multi-KPI result)"}
    assert result_problems(single(kpiIds=["a"])) == {
        "kpiIds": "give either kpiId (one KPI) or kpiIds (several), not both"}


def test_missing_required_fields_are_each_named() -> None:
    assert result_problems({"kpiId": "x"}) == {
        "traceId": "is required", "timestamp": "is required", "kpiType": "is required",
        "data": "is required"}


def test_a_result_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object, not list"):
        parse(KpiResult, [single()])


# -- multi-KPI results ----------------------------------------------------------------


def test_multi_result_values_follow_kpi_ids() -> None:
    result = parse_result(multi())
    assert isinstance(result, MultiKpiResult)
    assert list(result.values) == ["cbbi-rhodl", "cbbi-mvrv", "cbbi-confidence"]
    assert result.values == {"cbbi-rhodl": 0.61, "cbbi-mvrv": 2.5, "cbbi-confidence": 0.7}


def test_multi_data_keys_must_match_kpi_ids_exactly() -> None:
    data = multi()["data"]
    missing = {k: v for k, v in data.items() if k != "cbbi-mvrv"}
    assert result_problems(multi(data=missing)) == {
        "data": "has no value for ['cbbi-mvrv'], listed in kpiIds"}
    assert result_problems(multi(data={**data, "cbbi-extra": 1})) == {
        "data": "has values for ['cbbi-extra'], which kpiIds does not list"}


def test_multi_kpi_ids_are_unique_and_not_empty() -> None:
    assert result_problems(multi(kpiIds=["cbbi-rhodl", "cbbi-rhodl"])) == {
        "kpiIds": "lists ['cbbi-rhodl'] more than once"}
    assert result_problems(multi(kpiIds=[])) == {
        "kpiIds": "List should have at least 1 item after validation, not 0"}


def test_multi_value_problems_name_the_kpi() -> None:
    data = {**multi()["data"], "cbbi-mvrv": "2.5", "cbbi-confidence": {"value": None}}
    assert result_problems(multi(data=data)) == {
        "data.cbbi-mvrv": "Input should be a valid number",
        "data.cbbi-confidence.value": "Input should be a valid number"}


# -- error reports --------------------------------------------------------------------


def test_free_form_error_is_kept_whole_and_its_message_shown() -> None:
    error = {"message": "429 Too Many Requests", "name": "NodeApiError", "code": "E429",
             "status": 429, "stack": "NodeApiError: 429\n    at ...", "nested": {"a": [1]}}
    report = parse(ErrorReport, error_report(error=error))
    assert report.error == error
    assert report.message == "429 Too Many Requests"
    assert report.targets == ["cmc-btc-dominance"]


def test_string_error_is_wrapped() -> None:
    report = parse(ErrorReport, error_report(error="  timed out after 30 s "))
    assert report.error == {"message": "  timed out after 30 s "}
    assert report.message == "timed out after 30 s"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"description": "quota exceeded"}, "quota exceeded"),
        ({"message": "   ", "reason": "upstream down"}, "upstream down"),
        ({"name": "TimeoutError", "code": "ETIMEDOUT"}, "TimeoutError"),
        ({"code": "ECONNRESET", "status": 502}, "ECONNRESET"),
        ({"status": 500, "detail": 7}, '{"detail": 7, "status": 500}'),
    ],
)
def test_message_is_found_whatever_the_error_shape(error: dict[str, Any], message: str) -> None:
    assert parse(ErrorReport, error_report(error=error)).message == message


def test_error_report_targets_kpi_id_or_kpi_ids_not_both() -> None:
    assert problems(ErrorReport, error_report(kpiIds=["a", "b"])) == {
        "kpiIds": "give either kpiId (one KPI) or kpiIds (several), not both"}
    several = error_report(kpiIds=["a", "b"])
    del several["kpiId"]
    assert parse(ErrorReport, several).targets == ["a", "b"]
    neither = error_report()
    del neither["kpiId"]
    assert parse(ErrorReport, neither).targets == []


def test_error_report_needs_a_non_empty_error() -> None:
    assert problems(ErrorReport, error_report(error={})) == {"error": "must not be empty"}
    assert problems(ErrorReport, error_report(error=["boom"])) == {
        "error": "Input should be a valid dictionary"}
    without = error_report()
    del without["error"]
    assert problems(ErrorReport, without) == {"error": "is required"}


def test_numeric_execution_and_workflow_ids_become_text() -> None:
    report = parse(ErrorReport, error_report(executionId=4711, workflowId=12))
    assert report.execution_id == "4711"
    assert report.workflow_id == "12"
    assert problems(ErrorReport, error_report(executionId=True)) == {
        "executionId": "Input should be a valid string"}


def test_error_report_keeps_unknown_fields() -> None:
    report = parse(ErrorReport, error_report(workflowName="CMC daily", node={"id": 3}))
    assert report.model_extra == {"workflowName": "CMC daily", "node": {"id": 3}}
    assert report.to_wire()["workflowName"] == "CMC daily"


# -- timestamps -----------------------------------------------------------------------


def test_timestamps_are_normalised_to_utc() -> None:
    result = parse_result(single(timestamp="2026-11-29T01:00:00-05:00"))
    assert result.timestamp == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert result.timestamp.utcoffset() == timedelta(0)
    assert result.timestamp.tzinfo is UTC
    assert result.to_wire()["timestamp"] == "2026-11-29T06:00:00Z"


def test_aware_datetime_objects_are_normalised_too() -> None:
    moment = datetime(2026, 11, 29, 7, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    trigger = parse(KpiTrigger, single(timestamp=moment))
    assert trigger.timestamp == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert trigger.timestamp.tzinfo is UTC


@pytest.mark.parametrize("naive", ["2026-11-29T06:00:00", "2026-11-29 06:00",
                                   datetime(2026, 11, 29, 6, 0)])
def test_naive_timestamps_are_refused(naive: Any) -> None:
    assert result_problems(single(timestamp=naive)) == {"timestamp": ZONE_RULE}


@pytest.mark.parametrize("unix", [1764396000, 1764396000.5, "1764396000", True])
def test_unix_number_timestamps_are_refused(unix: Any) -> None:
    assert result_problems(single(timestamp=unix)) == {"timestamp": ISO_RULE}


@pytest.mark.parametrize("text", ["2026-11-29", "yesterday", ""])
def test_timestamps_need_a_date_and_a_time(text: str) -> None:
    assert result_problems(single(timestamp=text)) == {"timestamp": ISO_RULE}


def test_timestamps_outside_the_utc_calendar_are_refused_not_crashed() -> None:
    assert result_problems(single(timestamp="0001-01-01T00:00:00+05:00")) == {
        "timestamp": "is out of range once converted to UTC"}


# -- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "Input should be a finite number"),
        (float("inf"), "Input should be a finite number"),
        (float("-inf"), "Input should be a finite number"),
        (True, "Input should be a valid number"),
        (False, "Input should be a valid number"),
        ("57.25", "Input should be a valid number"),
        ("NaN", "Input should be a valid number"),
        (None, "Input should be a valid number"),
        ([57.25], "Input should be a valid number"),
        (1e101, RANGE_RULE),
        (-1e101, RANGE_RULE),
        (1e-101, RANGE_RULE),
        (10**400, "Input should be a valid number"),
    ],
)
def test_non_numbers_and_out_of_range_numbers_are_refused(value: Any, message: str) -> None:
    assert result_problems(single(data=value)) == {"data": message}
    assert result_problems(single(data={"value": value})) == {"data.value": message}


@pytest.mark.parametrize("value", [0, 0.0, -0.0, 1e100, -1e100, 1e-100, -1e-100, 42])
def test_numbers_at_the_range_bounds_are_accepted(value: float) -> None:
    assert parse_result(single(data=value)).values == {"cmc-btc-dominance": float(value)}


def test_json_nan_and_infinity_literals_are_refused() -> None:
    payload = json.loads('{"traceId": "t", "kpiId": "k", "timestamp": "2026-11-29T06:00:00Z",'
                         ' "kpiType": "x", "data": NaN}')
    assert result_problems(payload) == {"data": "Input should be a finite number"}


# -- ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["", "-cmc", ".cmc", "_cmc", "cmc btc", "cmc/btc", "cmc:btc", "bitcöin", "x" * 129,
     "cmc\n", "\ncmc"],
)
def test_ids_outside_the_pattern_are_refused(bad_id: str) -> None:
    assert result_problems(single(kpiId=bad_id)) == {"kpiId": ID_RULE}
    assert result_problems(single(traceId=bad_id, kpiType=bad_id)) == {
        "traceId": ID_RULE, "kpiType": ID_RULE}
    assert result_problems(multi(kpiIds=["cbbi-rhodl", bad_id])) == {"kpiIds.1": ID_RULE}


@pytest.mark.parametrize("good_id", ["a", "9", "x" * 128, "cmc-btc.dominance_v2", "A.B-C_D"])
def test_ids_inside_the_pattern_are_accepted(good_id: str) -> None:
    assert parse_result(single(kpiId=good_id)).values == {good_id: 57.25}


@pytest.mark.parametrize(("value", "message"), [(12345, "Input should be a valid string"),
                                                (["a"], "Input should be a valid string")])
def test_ids_must_be_strings(value: Any, message: str) -> None:
    assert result_problems(single(traceId=value)) == {"traceId": message}


# -- unknown fields: kept on the wire, refused by admin models ---------------------------


def test_wire_models_keep_unknown_fields() -> None:
    trigger = parse(KpiTrigger, single(workflowName="CMC", retry={"n": 1}))
    assert trigger.model_extra == {"data": 57.25, "workflowName": "CMC", "retry": {"n": 1}}
    result = parse_result(single(workflowName="CMC"))
    assert result.model_extra == {"workflowName": "CMC"}
    assert result.to_wire()["workflowName"] == "CMC"


def test_kpi_definition_refuses_unknown_fields() -> None:
    assert problems(KpiDefinition, definition(colour="red")) == {
        "colour": "is not a known field"}
    assert problems(KpiDefinition, definition(analysisConfig={"chartTyp": "bar"})) == {
        "analysisConfig.chartTyp": "is not a known field"}


def test_system_config_refuses_unknown_fields() -> None:
    assert problems(SystemConfig, {"retentionDay": 30}) == {
        "retentionDay": "is not a known field"}
    assert problems(SystemConfig, {"retry": {"collection": {"retries": 1, "delaysS": [1],
                                                            "jitter": True}}}) == {
        "retry.collection.jitter": "is not a known field"}


# -- configuration defaults (SPEC "Configuration") -------------------------------------


def test_system_config_defaults_are_specs() -> None:
    config = SystemConfig()
    retry = config.retry
    assert (retry.collection.retries, retry.collection.delays_s) == (3, [1.0, 2.0, 4.0])
    assert (retry.chart.retries, retry.chart.delays_s) == (3, [1.0, 2.0, 4.0])
    assert (retry.llm.retries, retry.llm.delays_s) == (2, [2.0, 4.0])
    assert (retry.delivery.retries, retry.delivery.delays_s) == (2, [5.0, 10.0])
    assert config.lifecycle.fan_in_timeout_s == 1800
    assert config.lifecycle.deliver_partial is True
    assert config.retention_days == 365
    assert config.default_chain in config.analysis_chains
    assert parse(SystemConfig, {}) == config


def test_retry_policy_delay_per_retry() -> None:
    policy = SystemConfig().retry.collection
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 4.0]
    assert RetryPolicy(retries=0, delays_s=[]).delay(1) == 0.0


def test_retry_policy_refuses_mismatched_delays() -> None:
    assert problems(RetryPolicy, {"retries": 3, "delaysS": [1, 2]}) == {
        "": "delaysS must give one wait per retry (3), got 2"}
    assert problems(SystemConfig, {"retry": {"llm": {"retries": 1, "delaysS": [2, 4]}}}) == {
        "retry.llm": "delaysS must give one wait per retry (1), got 2"}
    assert problems(RetryPolicy, {"retries": 1, "delaysS": [-1]}) == {
        "": "each delay must be between 0 and 3600 seconds"}


def test_system_config_default_chain_must_exist() -> None:
    assert problems(SystemConfig, {"defaultChain": "fast"}) == {
        "": "defaultChain 'fast' is not in analysisChains"}


# -- schedules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 6 * * * *",
         "must have 5 fields (minute hour day-of-month month day-of-week), got 6"),
        ("0 6 * *", "must have 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("61 6 * * *", "'61 6 * * *' is not a valid cron expression"),
        ("0 25 * * *", "'0 25 * * *' is not a valid cron expression"),
        ("0 6 32 * *", "'0 6 32 * *' is not a valid cron expression"),
        ("0 6 * 13 *", "'0 6 * 13 *' is not a valid cron expression"),
        ("0 six * * *", "'0 six * * *' is not a valid cron expression"),
    ],
)
def test_schedule_refuses_invalid_cron(cron: str, message: str) -> None:
    assert problems(Schedule, {"id": "daily", "cron": cron}) == {"cron": message}


def test_schedule_normalises_spacing() -> None:
    assert parse(Schedule, {"id": "daily", "cron": " 0  6 * *   * "}).cron == "0 6 * * *"


def test_schedule_next_runs_are_in_utc() -> None:
    schedule = Schedule(id="daily", cron="0 6 * * *")
    runs = schedule.next_runs(datetime(2026, 11, 29, 5, 30, tzinfo=UTC), count=3)
    assert runs == [datetime(2026, 11, 29, 6, tzinfo=UTC), datetime(2026, 11, 30, 6, tzinfo=UTC),
                    datetime(2026, 12, 1, 6, tzinfo=UTC)]
    assert all(run.utcoffset() == timedelta(0) for run in runs)


def test_schedule_reads_cron_in_utc_whatever_the_zone_of_after() -> None:
    schedule = Schedule(id="daily", cron="0 6 * * *")
    # 00:30 at -05:00 is 05:30 UTC: the next run is 06:00 UTC, not 06:00 at -05:00.
    after = datetime(2026, 11, 29, 0, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert schedule.next_runs(after, count=1) == [datetime(2026, 11, 29, 6, tzinfo=UTC)]
    assert schedule.next_runs(after, count=1)[0].utcoffset() == timedelta(0)


# -- the KPI registry -----------------------------------------------------------------


def test_single_kpi_definition_yields_its_own_id() -> None:
    kpi = parse(KpiDefinition, definition())
    assert kpi.yields == ["cmc-btc-dominance"]


def test_multi_kpi_definition_yields_its_kpi_ids_with_their_thresholds() -> None:
    kpi = parse(KpiDefinition, definition(
        id="cbbi-multi", kpiIds=["cbbi-rhodl", "cbbi-mvrv"],
        analysisConfig={"high": 0.9, "low": 0.1,
                        "indicators": {"cbbi-mvrv": {"high": 3.5, "low": 1.0}}}))
    assert kpi.yields == ["cbbi-rhodl", "cbbi-mvrv"]
    assert kpi.thresholds_for("cbbi-mvrv") == Thresholds(high=3.5, low=1.0)
    assert kpi.thresholds_for("cbbi-rhodl") == Thresholds(high=0.9, low=0.1)


def test_indicators_must_be_yielded() -> None:
    assert problems(KpiDefinition, definition(
        analysisConfig={"indicators": {"cbbi-mvrv": {"high": 3}}})) == {
        "": "analysisConfig.indicators names ['cbbi-mvrv'], which this source does not yield"}


def test_thresholds_must_be_ordered() -> None:
    assert problems(KpiDefinition, definition(analysisConfig={"high": 1, "low": 2})) == {
        "analysisConfig": "low must be below high"}


def test_kpi_definition_source_is_checked() -> None:
    assert problems(KpiDefinition, definition(
        source={"kind": "n8n", "webhookUrl": "n8n.example.com/webhook"})) == {
        "source.n8n.webhookUrl": "must be an absolute http(s) URL"}
    assert problems(KpiDefinition, definition(name="   ")) == {"name": "must not be blank"}


# -- secrets in delivery URLs -----------------------------------------------------------


def test_mask_url_hides_apprise_tokens() -> None:
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890"
    masked = mask_url(url)
    assert masked == "tgram://***"
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in masked
    assert "1001234567890" not in masked


def test_mask_url_keeps_the_https_host_and_hides_path_and_query() -> None:
    url = "https://user:pa55@hooks.example.com:8443/services/T00/B00/SECRET?token=abc#frag"
    masked = mask_url(url)
    assert masked == "https://hooks.example.com:8443/***?***"
    for secret in ("user", "pa55", "SECRET", "services", "abc", "frag"):
        assert secret not in masked
    assert mask_url("https://example.com") == "https://example.com"


def test_endpoint_masked_url() -> None:
    endpoint = DeliveryEndpoint(id="tg", name="Telegram", url="tgram://TOKEN/chat")
    assert endpoint.masked_url == "tgram://***"
    assert "TOKEN" not in endpoint.masked_url


# -- trace ids ------------------------------------------------------------------------


def test_trace_id_format() -> None:
    moment = datetime(2026, 11, 29, 6, 0, 5, tzinfo=UTC)
    trace_id = new_trace_id(moment)
    assert re.fullmatch(r"trace_20261129_060005_[0-9a-f]{6}", trace_id), trace_id
    # a valid id for the contract
    assert parse(KpiTrigger, single(traceId=trace_id)).trace_id == trace_id
    assert len({new_trace_id(moment) for _ in range(20)}) > 1


@pytest.mark.parametrize(("url", "masked"), [
    ("http://[::1]:9/x", "http://[::1]:9/***"),
    ("https://[2001:db8::1]/hook?token=abc", "https://[2001:db8::1]/***?***"),
    ("http://example.com:99999/hook", "http://example.com:***/***"),
    ("http://user:secret@/x", "http:///***"),  # credentials never shown
])
def test_mask_url_keeps_ipv6_brackets_and_survives_bad_ports(url: str, masked: str) -> None:
    assert mask_url(url) == masked
