"""DefiLlama: the total market cap of stablecoins.

Read from `/stablecoincharts/all` (one element per day, oldest first). The point is
the latest *complete* day, the last one dated before the job's own day: the current
day's element keeps changing until the day ends, and a stored point is never
overwritten, so this way every run of one day lands on the same point. The total is
the sum of `totalCirculatingUSD` over every peg (USD, EUR, gold, ...), as DefiLlama's
own headline figure; `params.peg` (e.g. `peggedUSD`) restricts it to one peg.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from metric_stream.collectors.base import (
    CollectRequest,
    MalformedAnswer,
    member,
    number,
    params_of,
    register,
    unix_time,
)
from metric_stream.collectors.http import JsonCollector
from metric_stream.models.wire import KpiResult, MultiKpiResult


@register
class DefiLlamaStablecoins(JsonCollector):
    """`params`: optional `peg` (e.g. `peggedUSD`); the entry yields one KPI."""

    name = "defillama-stablecoins"
    default_base_url = "https://stablecoins.llama.fi"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        kpi_id = self.only_target(request)
        peg = params_of(request).get("peg")
        if peg is not None and (not isinstance(peg, str) or not peg):
            raise self.bad_params("params.peg must be a peg type such as 'peggedUSD'")
        today = request.timestamp.astimezone(UTC).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            latest, stamp = self._last_complete_day(answer, today)
            where = f"the day {stamp:%Y-%m-%d}'s totalCirculatingUSD"
            totals = member(latest, "totalCirculatingUSD", f"the day {stamp:%Y-%m-%d}")
            if not isinstance(totals, dict) or not totals:
                raise MalformedAnswer(f"{where} is not an object")
            if peg is not None:
                value = number(member(totals, peg, where), f"{where}.{peg}")
            else:
                value = sum(number(v, f"{where}.{k}") for k, v in totals.items())
            data = {"value": value, "peg": peg or "all"}
            return self.result(request, {kpi_id: data}, stamp, sourceUrl=url)

        return self.get_json(request, "/stablecoincharts/all", read)

    @staticmethod
    def _last_complete_day(days: Any, today: datetime) -> tuple[Any, datetime]:
        if not isinstance(days, list) or not days:
            raise MalformedAnswer("the answer is not a non-empty list of days")
        for day in reversed(days):
            stamp = unix_time(member(day, "date", "a day"), "a day's date")
            if stamp < today:
                return day, stamp
        raise MalformedAnswer("the answer has no day before today")
