"""Chart specs as JSON, so the packaging stage draws the charts the analysis stage saw.

The analysis stage reads every KPI's year of points once; it hands the packaging stage
the chart specs it built from them (one blob per job) instead of the packaging stage
reading the same 73,000 points again (from DynamoDB on Lambda). The specs are columnar
(timestamps as integer microseconds since the epoch, values, candles) and read back
exactly: `spec_from_wire(spec_to_wire(s)) == s`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from metric_stream.charts.render import Candle, ChartSpec, Point

VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def spec_to_wire(spec: ChartSpec) -> dict[str, Any]:
    return {
        "title": spec.title, "kind": spec.kind, "unit": spec.unit, "high": spec.high,
        "low": spec.low, "demo": spec.demo, "movingAverages": list(spec.moving_averages),
        "series": {name: [[_micros(t) for t, _ in points], [v for _, v in points]]
                   for name, points in spec.series.items()},
        "candles": [[_micros(c[0]), *c[1:]] for c in spec.candles],
    }


def spec_from_wire(wire: Mapping[str, Any]) -> ChartSpec:
    series: dict[str, Sequence[Point]] = {}
    for name, (stamps, values) in wire["series"].items():
        if len(stamps) != len(values):
            raise ValueError(f"series {name!r}: {len(stamps)} timestamps, {len(values)} values")
        series[name] = [(_moment(t), float(v)) for t, v in zip(stamps, values, strict=True)]
    candles: list[Candle] = [(_moment(t), float(o), float(h), float(lo), float(c))
                             for t, o, h, lo, c in wire["candles"]]
    return ChartSpec(title=wire["title"], kind=wire["kind"], series=series, unit=wire["unit"],
                     high=wire["high"], low=wire["low"], demo=wire["demo"], candles=candles,
                     moving_averages=tuple(wire["movingAverages"]))


def specs_to_json(specs: Mapping[str, ChartSpec | None]) -> bytes:
    """Every analysed KPI's chart spec (None: the report shows no chart for it)."""
    body = {"version": VERSION,
            "specs": {k: None if s is None else spec_to_wire(s) for k, s in specs.items()}}
    return json.dumps(body, separators=(",", ":")).encode()


def specs_from_json(data: bytes) -> dict[str, ChartSpec | None]:
    """The specs `specs_to_json` wrote; ValueError (KeyError, TypeError, AttributeError) when the
    document is not one."""
    body = json.loads(data)
    if body.get("version") != VERSION:
        raise ValueError(f"chart specs version {body.get('version')!r}, not {VERSION}")
    return {k: None if w is None else spec_from_wire(w) for k, w in body["specs"].items()}
