"""alternative.me's Crypto Fear & Greed Index (0 extreme fear … 100 extreme greed).

The API sends numbers as text; the day's Unix `timestamp` becomes the point's time, so
every run of one day lands on the same point, and the classification ("Greed") is
kept with it as point metadata.
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
class FearAndGreed(JsonCollector):
    """No `params` needed; the entry yields one KPI."""

    name = "alternative-me-fng"
    default_base_url = "https://api.alternative.me"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        kpi_id = self.only_target(request)

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            meta = answer.get("metadata") if isinstance(answer, dict) else None
            problem = meta.get("error") if isinstance(meta, dict) else None
            if problem:
                raise MalformedAnswer(f"the source reports an error: {problem}")
            latest = member(member(answer, "data", "the answer"), 0, "data")
            value = number(member(latest, "value", "data[0]"), "data[0].value")
            stamp = unix_time(member(latest, "timestamp", "data[0]"), "data[0].timestamp")
            data: dict[str, Any] = {"value": value}
            classification = latest.get("value_classification")
            if isinstance(classification, str) and classification:
                data["classification"] = classification
            return self.result(request, {kpi_id: data}, stamp, sourceUrl=url)

        return self.get_json(request, "/fng/", read, params={"limit": "1", "format": "json"})
