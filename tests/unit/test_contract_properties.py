"""Properties of the data contract: every valid result is accepted and round-trips;
every malformed one is refused with `InvalidInput` naming the field that is wrong."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_stream.errors import InvalidInput
from metric_stream.models.base import ID_PATTERN, parse
from metric_stream.models.wire import (
    DataObject,
    KpiResult,
    MultiKpiResult,
    extras_of,
    parse_result,
)

# The autouse environment fixture is function-scoped; these tests neither read the
# environment nor write files, so sharing it across generated examples is harmless.
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- strategies for valid payloads ------------------------------------------------------

ids = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,15}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True),
)

numbers = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-100, max_value=1e100),
    st.floats(min_value=-1e100, max_value=-1e-100),
    st.integers(min_value=-(10**15), max_value=10**15),
)

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
    timezones=st.one_of(st.just(UTC), offsets),
)


def timestamp_text(moment: datetime) -> str:
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


json_scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def reserved_names(*models: type[Any]) -> set[str]:
    names: set[str] = set()
    for model in models:
        for name, field in model.model_fields.items():
            names |= {name, field.alias or name}
    return names


def extra_fields(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields: names no model field has (by alias or by name); no null values,
    since `to_wire` leaves out nulls."""
    names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYZ_", min_size=1, max_size=12)
    return st.dictionaries(names.filter(lambda n: n not in reserved), json_values, max_size=3)


def data_values() -> st.SearchStrategy[Any]:
    as_object = st.builds(lambda value, extras: {"value": value, **extras},
                          numbers, extra_fields({"value"}))
    return st.one_of(numbers, as_object)


metadata = st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_values, max_size=3))
charts = st.one_of(st.none(), st.builds(
    lambda name, kind, time_range: {"url": f"https://charts.example.com/{name}.png",
                                    "type": kind, "timeRange": time_range},
    ids, st.sampled_from(["line", "bar", "candlestick"]), st.sampled_from(["7d", "30d", "1y"]),
))


@st.composite
def single_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    moment = draw(moments)
    payload: dict[str, Any] = {
        "traceId": draw(ids), "kpiId": draw(ids), "timestamp": timestamp_text(moment),
        "kpiType": draw(ids), "data": draw(data_values()),
    }
    for name, value in (("chart", draw(charts)), ("metadata", draw(metadata))):
        if value is not None:
            payload[name] = value
    payload.update(draw(extra_fields(reserved_names(KpiResult, MultiKpiResult))))
    return payload, moment


@st.composite
def multi_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    moment = draw(moments)
    kpi_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    payload: dict[str, Any] = {
        "traceId": draw(ids), "timestamp": timestamp_text(moment), "kpiType": draw(ids),
        "kpiIds": kpi_ids, "data": {k: draw(data_values()) for k in kpi_ids},
    }
    meta = draw(metadata)
    if meta is not None:
        payload["metadata"] = meta
    payload.update(draw(extra_fields(reserved_names(KpiResult, MultiKpiResult))))
    return payload, moment


def expected_value(data: Any) -> float:
    return float(data["value"] if isinstance(data, dict) else data)


def expected_extras(data: Any) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "value"} if isinstance(data, dict) else {}


def check_round_trip(result: KpiResult | MultiKpiResult, payload: dict[str, Any],
                     moment: datetime, known: set[str]) -> None:
    assert result.timestamp == moment  # the same instant...
    assert result.timestamp.utcoffset() == timedelta(0)  # ...in UTC
    assert result.model_extra == {k: v for k, v in payload.items() if k not in known}
    again = parse_result(result.to_wire())
    assert again == result
    assert again.timestamp == moment


# -- (a) valid payloads are accepted and round-trip ------------------------------------

SINGLE_FIELDS = {"traceId", "kpiId", "timestamp", "kpiType", "data", "chart", "metadata"}
MULTI_FIELDS = {"traceId", "timestamp", "kpiType", "kpiIds", "data", "metadata"}


@PROPERTY_SETTINGS
@given(single_payloads())
def test_valid_single_results_are_accepted_and_round_trip(
    case: tuple[dict[str, Any], datetime],
) -> None:
    payload, moment = case
    result = parse_result(payload)
    assert isinstance(result, KpiResult)
    assert result.values == {payload["kpiId"]: expected_value(payload["data"])}
    assert extras_of(result.data) == expected_extras(payload["data"])
    assert result.metadata == payload.get("metadata")
    check_round_trip(result, payload, moment, SINGLE_FIELDS)


@PROPERTY_SETTINGS
@given(multi_payloads())
def test_valid_multi_results_are_accepted_and_round_trip(
    case: tuple[dict[str, Any], datetime],
) -> None:
    payload, moment = case
    result = parse_result(payload)
    assert isinstance(result, MultiKpiResult)
    assert result.kpi_ids == payload["kpiIds"]
    assert result.values == {k: expected_value(payload["data"][k]) for k in payload["kpiIds"]}
    for kpi_id, data in result.data.items():
        assert extras_of(data) == expected_extras(payload["data"][kpi_id])
        assert isinstance(data, DataObject) == isinstance(payload["data"][kpi_id], dict)
    check_round_trip(result, payload, moment, MULTI_FIELDS)


# -- (b) malformed payloads are refused, naming the field -------------------------------

not_ids = st.one_of(
    st.text(max_size=20).filter(lambda s: not ID_PATTERN.fullmatch(s)),
    st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True).map(lambda s: s + "\n"),
    st.just("x" * 129),
)
bad_numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, True, False, None, 1e101, -1e101, 1e-101]),
    st.text(max_size=10),
    st.lists(numbers, max_size=2),
    st.dictionaries(st.sampled_from(["val", "amount"]), numbers, max_size=1),
)
naive_texts = st.datetimes(min_value=datetime(1970, 1, 2),
                           max_value=datetime(2200, 1, 1)).map(datetime.isoformat)
bad_timestamps = st.one_of(
    naive_texts,
    st.integers(min_value=0, max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="0123456789-:TZ ", max_size=12),
    st.lists(st.integers(), max_size=2),
    st.just({"iso": "2026-11-29T06:00:00Z"}),
)
wrong_for_ids = st.one_of(
    not_ids,
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(ids, max_size=2),
    st.dictionaries(ids, ids, max_size=2),
    st.none(),
)
wrong_for_objects = st.one_of(
    st.lists(st.integers(), max_size=3), st.text(max_size=10), st.integers(), st.booleans(),
)

Draw = Callable[[st.SearchStrategy[Any]], Any]
Mutation = Callable[[dict[str, Any], Draw], str]


def drop(field: str) -> Mutation:
    def mutate(payload: dict[str, Any], draw: Draw) -> str:
        del payload[field]
        return field
    return mutate


def replace(field: str, wrong: st.SearchStrategy[Any]) -> Mutation:
    def mutate(payload: dict[str, Any], draw: Draw) -> str:
        payload[field] = draw(wrong)
        return field
    return mutate


def bad_single_data_value(payload: dict[str, Any], draw: Draw) -> str:
    value = draw(bad_numbers)
    if isinstance(payload["data"], dict) or draw(st.booleans()):
        payload["data"] = {**payload["data"], "value": value} if isinstance(
            payload["data"], dict) else {"value": value}
    else:
        payload["data"] = value
    return "data"


def bad_multi_data_value(payload: dict[str, Any], draw: Draw) -> str:
    kpi_id = draw(st.sampled_from(payload["kpiIds"]))
    value = draw(bad_numbers)
    payload["data"][kpi_id] = {"value": value} if draw(st.booleans()) else value
    return "data"


def bad_multi_kpi_id(payload: dict[str, Any], draw: Draw) -> str:
    index = draw(st.integers(min_value=0, max_value=len(payload["kpiIds"]) - 1))
    payload["kpiIds"][index] = draw(wrong_for_ids)
    return "kpiIds"


def doubled_multi_kpi_id(payload: dict[str, Any], draw: Draw) -> str:
    payload["kpiIds"].append(payload["kpiIds"][0])
    return "kpiIds"


def unmatched_multi_data(payload: dict[str, Any], draw: Draw) -> str:
    kpi_id = payload["kpiIds"][0]
    if draw(st.booleans()):
        del payload["data"][kpi_id]
    else:
        payload["data"][draw(st.one_of(ids, not_ids).filter(
            lambda k: k not in payload["kpiIds"]))] = 1.0
    return "data"


ID_FIELDS = ("traceId", "kpiType")
SINGLE_MUTATIONS: list[Mutation] = [
    *(drop(f) for f in ("traceId", "kpiId", "timestamp", "kpiType", "data")),
    *(replace(f, wrong_for_ids) for f in (*ID_FIELDS, "kpiId")),
    replace("timestamp", bad_timestamps),
    bad_single_data_value,
    replace("metadata", wrong_for_objects),
    replace("chart", wrong_for_objects),
]
MULTI_MUTATIONS: list[Mutation] = [
    *(drop(f) for f in ("traceId", "timestamp", "kpiType", "kpiIds", "data")),
    *(replace(f, wrong_for_ids) for f in ID_FIELDS),
    replace("timestamp", bad_timestamps),
    replace("kpiIds", st.one_of(st.just([]), wrong_for_objects, st.dictionaries(ids, ids))),
    replace("data", st.one_of(wrong_for_objects, numbers)),
    replace("metadata", wrong_for_objects),
    bad_multi_data_value,
    bad_multi_kpi_id,
    doubled_multi_kpi_id,
    unmatched_multi_data,
]


def names(field: str, problem_field: str) -> bool:
    return problem_field == field or problem_field.startswith(field + ".")


def refused_fields(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as refused:  # any other exception fails the test
        parse_result(payload)
    assert refused.value.problems
    return [p.field for p in refused.value.problems]


@PROPERTY_SETTINGS
@given(single_payloads(), st.sampled_from(SINGLE_MUTATIONS), st.data())
def test_malformed_single_results_are_refused_naming_the_field(
    case: tuple[dict[str, Any], datetime], mutation: Mutation, data: st.DataObject,
) -> None:
    payload, _ = case
    field = mutation(payload, data.draw)
    fields = refused_fields(payload)
    assert any(names(field, f) for f in fields), (field, fields)


@PROPERTY_SETTINGS
@given(multi_payloads(), st.sampled_from(MULTI_MUTATIONS), st.data())
def test_malformed_multi_results_are_refused_naming_the_field(
    case: tuple[dict[str, Any], datetime], mutation: Mutation, data: st.DataObject,
) -> None:
    payload, _ = case
    field = mutation(payload, data.draw)
    fields = refused_fields(payload)
    if field == "kpiIds" and "kpiIds" not in payload:
        # Without kpiIds the payload has the shape of a single result: parse_result asks
        # for kpiId, and its message points at kpiIds; the multi model names kpiIds.
        assert fields == ["kpiId"]
        with pytest.raises(InvalidInput) as refused:
            parse(MultiKpiResult, payload)
        fields = [p.field for p in refused.value.problems]
    assert any(names(field, f) for f in fields), (field, fields)
