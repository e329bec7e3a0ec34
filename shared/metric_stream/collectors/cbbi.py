"""CBBI (colintalkscrypto.com): the Bitcoin bull-run index and the indicators it blends.

`latest.json` holds every indicator's whole daily history (`{"Confidence":
{"1732838400": 0.78, ...}, "Price": {...}, ...}`), so it is large: one multi-KPI entry
reads several indicators from one fetch, and the cycle's response cache shares it
between entries. Indicators lag one another by a day at times, so the point is the
latest day every requested indicator has a value for.
"""

from __future__ import annotations

from typing import Any

from metric_stream.collectors.base import (
    CollectRequest,
    MalformedAnswer,
    member,
    number,
    register,
    unix_time,
)
from metric_stream.collectors.http import JsonCollector
from metric_stream.models.wire import KpiResult, MultiKpiResult


@register
class Cbbi(JsonCollector):
    """`params`: `indicators` ({indicator: kpiId}, e.g. {"Confidence":
    "cbbi-confidence"}, or names in the order of the entry's KPI ids) or `indicator`
    for a single KPI. Indicators today: Price, Confidence, PiCycle, RUPL, RHODL,
    Puell, 2YMA, Trolololo, MVRV, ReserveRisk, Woobull. Values are as the source gives
    them: `Price` in USD, the others between 0 and 1."""

    name = "cbbi-multi"
    default_base_url = "https://colintalkscrypto.com/cbbi/data"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        indicators = self.targets(request, "indicators", "indicator")

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            series = {name: self._series(answer, name) for name in indicators}
            common = set.intersection(*(set(points) for points in series.values()))
            if not common:
                raise MalformedAnswer(
                    f"the indicators {sorted(indicators)} have no day in common")
            day = max(common)
            values: dict[str, float | dict[str, Any]] = {
                kpi_id: series[name][day] for name, kpi_id in indicators.items()}
            return self.result(request, values, unix_time(day, "the latest day"),
                               sourceUrl=url)

        return self.get_json(request, "/latest.json", read)

    @staticmethod
    def _series(answer: Any, name: str) -> dict[int, float]:
        raw = member(answer, name, "the answer")
        if not isinstance(raw, dict):
            raise MalformedAnswer(f"{name} is not an object of day → value")
        points: dict[int, float] = {}
        for stamp, value in raw.items():
            if value is None:
                continue  # a day the indicator has not been computed for yet
            day = int(number(stamp, f"a day of {name}"))
            points[day] = number(value, f"{name}[{stamp}]")
        return points
