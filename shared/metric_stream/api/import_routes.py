"""`POST /api/kpis/{id}/import`: historical CSV backfill (`timestamp,value,metadata`)."""

from __future__ import annotations

from typing import Any

from metric_stream.api.http import Api, Request, Route
from metric_stream.errors import InvalidInput
from metric_stream.services.imports import MAX_BYTES, import_csv

ERRORS_SHOWN = 100
MAX_FILENAME = 500  # what the import status keeps (`ImportStatus.filename`)


def import_kpi_csv(api: Api, request: Request) -> dict[str, Any]:
    kpi_id = request.path_params["id"]
    filename = request.query.get("filename")
    if filename is not None and len(filename) > MAX_FILENAME:
        raise InvalidInput(f"must be at most {MAX_FILENAME} characters", field="filename")
    status = import_csv(api.services, kpi_id, request.body, filename=filename)
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    refused = api.services.imports.errors(kpi_id, status.import_id)
    body["errors"] = [e.model_dump(mode="json", by_alias=True, exclude={"kpi_id", "import_id"})
                      for e in refused[:ERRORS_SHOWN]]
    return body


ROUTES = [
    Route("POST", "/api/kpis/{id}/import", import_kpi_csv, "admin",
          "Import a KPI's history from CSV (timestamp,value,metadata)",
          request_content="text/csv", max_body=MAX_BYTES, tag="registry",
          query={"filename": "the uploaded file's name, kept in the import status"},
          responses={200: "imported; counts, and the refused rows with their reasons",
                     404: "the KPI is not in the registry"},
          answer="ImportAnswer"),
]
