"""n8n workflow control: `POST /api/workflows/{id}/start|stop|pause`, through n8n's
REST API (`X-N8N-API-KEY`).

start activates the workflow (and makes active again the KPIs a pause made
inactive); stop deactivates it (its KPIs stay active: jobs trigger them and report
them failed); pause deactivates it and makes inactive the registry entries it feeds
(`source.workflowId`), so jobs skip them until start.
"""

from __future__ import annotations

from typing import Any

from metric_stream.api.http import Api, Request, Route
from metric_stream.services import admin


def _control(api: Api, request: Request, action: admin.WorkflowAction) -> dict[str, Any]:
    import httpx

    with httpx.Client(timeout=10) as http:
        outcome = admin.control_workflow(api.services, http, request.path_params["id"], action)
    return {"workflowId": outcome.workflow_id, "action": outcome.action,
            "active": outcome.active, "kpisChanged": outcome.kpis_changed}


def start_workflow(api: Api, request: Request) -> dict[str, Any]:
    return _control(api, request, "start")


def stop_workflow(api: Api, request: Request) -> dict[str, Any]:
    return _control(api, request, "stop")


def pause_workflow(api: Api, request: Request) -> dict[str, Any]:
    return _control(api, request, "pause")


_ERRORS = {404: "n8n has no such workflow",
           422: "the workflow id is not an id",
           502: "n8n failed or did not answer (its status and message are quoted)",
           503: "n8n's API URL or key is not configured"}
ROUTES = [
    Route("POST", "/api/workflows/{id}/start", start_workflow, "admin",
          "Activate an n8n workflow (and re-activate the KPIs its pause made inactive)",
          responses={200: "activated; `kpisChanged` lists re-activated KPIs", **_ERRORS},
          answer="WorkflowChanged", tag="workflows"),
    Route("POST", "/api/workflows/{id}/stop", stop_workflow, "admin",
          "Deactivate an n8n workflow (its KPIs stay active and report failures)",
          responses={200: "deactivated", **_ERRORS}, answer="WorkflowChanged",
          tag="workflows"),
    Route("POST", "/api/workflows/{id}/pause", pause_workflow, "admin",
          "Deactivate an n8n workflow and make the KPIs it feeds inactive until start",
          responses={200: "deactivated; `kpisChanged` lists the KPIs made inactive", **_ERRORS},
          answer="WorkflowChanged", tag="workflows"),
]
