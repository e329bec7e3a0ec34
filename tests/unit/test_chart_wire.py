"""Chart specs handed from the analysis to the packaging stage read back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_stream.charts.render import CHART_KINDS, ChartSpec
from metric_stream.charts.wire import specs_from_json, specs_to_json

moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))
values = st.floats(allow_nan=False, allow_infinity=False, width=64)
points = st.lists(st.tuples(moments, values), max_size=40)
candles = st.lists(st.tuples(moments, values, values, values, values), max_size=10)
specs = st.builds(
    ChartSpec, title=st.text(max_size=30), kind=st.sampled_from(CHART_KINDS),
    series=st.dictionaries(st.text(min_size=1, max_size=10), points, max_size=3),
    unit=st.text(max_size=5), high=st.none() | values, low=st.none() | values,
    demo=st.booleans(), candles=candles,
    moving_averages=st.tuples(st.integers(1, 400)) | st.just((7, 30)))


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.none() | specs, max_size=4))
def test_specs_read_back_exactly(given_specs: dict[str, ChartSpec | None]) -> None:
    assert specs_from_json(specs_to_json(given_specs)) == given_specs


def test_timestamps_keep_their_microseconds() -> None:
    moment = datetime(2026, 12, 5, 23, 59, 59, 999_999, tzinfo=UTC)
    spec = ChartSpec(title="t", series={"k": [(moment, 1.5), (moment + timedelta(days=1), 2.0)]})
    back = specs_from_json(specs_to_json({"k": spec}))["k"]
    assert back is not None and back.series["k"][0][0] == moment


@pytest.mark.parametrize("data", [b'{"version": 2, "specs": {}}', b'{"specs": {}}',
                                  b'{"version": 1, "specs": {"k": {"series": {"a": [[1], []]}}}}'])
def test_other_documents_are_refused(data: bytes) -> None:
    with pytest.raises((ValueError, KeyError)):
        specs_from_json(data)
