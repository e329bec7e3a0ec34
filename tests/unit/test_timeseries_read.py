"""Stored points are read back without validating them again (`storage/timeseries.py`):
the fast path must give exactly what validation gives, and fall back on anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from metric_stream.models.timeseries import DataPoint
from metric_stream.storage.timeseries import _point

MOMENTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))
POINTS = st.builds(
    lambda kpi, moment, value, metadata, trace, source: DataPoint(
        kpi_id=kpi, timestamp=moment, value=value, metadata=metadata, trace_id=trace,
        source=source),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), MOMENTS,
    st.just(0.0) | st.floats(min_value=1e-99, max_value=1e99)
    | st.floats(min_value=-1e99, max_value=-1e-99) | st.integers(-10**9, 10**9),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.none() | st.just("trace_20261205_060000_abcdef"), st.none() | st.text(max_size=20))


@given(POINTS)
def test_a_stored_point_reads_back_as_validation_would(point: DataPoint) -> None:
    stored = point.model_dump(mode="json", by_alias=True, exclude_none=True)
    read = _point(stored)
    assert read == DataPoint.model_validate(stored) == point
    assert read.timestamp.tzinfo is not None and read.timestamp.utcoffset() == timedelta(0)
    assert type(read.value) is float
    assert read.model_copy(update={"value": 1.0}).value == 1.0  # a model like any other
    assert read.model_dump(mode="json", by_alias=True, exclude_none=True) == stored


def test_other_shapes_are_validated() -> None:
    base: dict[str, Any] = {"kpiId": "btc", "timestamp": "2026-12-05T06:00:00Z", "value": 1.5}
    from_dynamo = _point({**base, "value": Decimal("1.5")})  # DynamoDB numbers
    assert from_dynamo.value == 1.5 and type(from_dynamo.value) is float
    offset = _point({**base, "timestamp": "2026-12-05T07:00:00+01:00"})
    assert offset.timestamp == datetime(2026, 12, 5, 6, tzinfo=UTC)
    with pytest.raises(ValidationError):  # the model's own rule for unknown keys
        _point({**base, "unexpected": True})
