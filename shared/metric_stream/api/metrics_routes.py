"""`GET /api/metrics`: queue depth per stage, job completion times, KPI failure rates,
handler execution times, LLM latency and storage usage."""

from __future__ import annotations

from typing import Any

from metric_stream.api.http import Api, Request, Route
from metric_stream.services import admin


def get_metrics(api: Api, request: Request) -> dict[str, Any]:
    return admin.metrics(api.services, api.timings.snapshot())


ROUTES = [
    Route("GET", "/api/metrics", get_metrics, "admin", "Monitoring figures",
          responses={200: "queues, jobs, kpiFailureRates, handlers, llm, storage"},
          answer="Metrics", tag="monitoring"),
]
