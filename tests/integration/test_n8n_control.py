"""n8n workflow control (`POST /api/workflows/{id}/start|stop|pause`) against a real n8n
1.x: a fresh n8n with the Fear & Greed export, an API key provisioned the way an
operator does (owner setup, login, `POST /rest/api-keys`), and metric-stream's API
in-process over embedded services that carry n8n's URL and that key. What each call
did is read back from n8n's own public API (`GET /api/v1/workflows/{id}`).

n8n comes from ../shared/tools/n8n-local (`n8n-local install`, once per machine); the
test skips, saying so, where it is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import KpiDefinition, N8nSource
from tests.api.conftest import ADMIN_KEY, Client
from tests.api.test_admin_registry import admin
from tests.conftest import make_services
from tests.integration.test_n8n_workflows import (
    EXPORTS,
    N8N_ENV,
    REPO,
    free_port,
    import_credentials,
    n8n_local,
    n8n_status,
    stop_n8n,
    wait_until,
    webhook_registered,
)

pytestmark = pytest.mark.slow

EXPORT = REPO / "n8n" / "fear-greed.json"
WORKFLOW_ID = "ms-fear-greed"
WEBHOOK_PATH = "metric-stream-fear-greed"
OWNER = {"email": "owner@metric-stream.test", "firstName": "Metric", "lastName": "Stream",
         "password": "Owner-passw0rd-for-tests"}


def data_of(response: httpx.Response) -> Any:
    """n8n's internal REST API (`/rest/...`) wraps its answers in `{"data": ...}`."""
    assert response.is_success, f"{response.request.method} {response.request.url}: " \
                                f"{response.status_code} {response.text[:500]}"
    return response.json()["data"]


def provision_api_key(n8n_url: str) -> str:
    """Set up the owner of the fresh instance, log in, and create a public-API key with
    every scope the owner may grant (n8n lists them at `GET /rest/api-keys/scopes`).
    The auth cookie is carried by hand: n8n marks it `Secure`, which a client would
    not send back over plain http."""
    with httpx.Client(base_url=n8n_url, timeout=30) as rest:
        data_of(rest.post("/rest/owner/setup", json=OWNER))
        login = rest.post("/rest/login", json={"emailOrLdapLoginId": OWNER["email"],
                                               "password": OWNER["password"]})
        data_of(login)
        token = login.cookies.get("n8n-auth") or next(
            (c.split(";", 1)[0].split("=", 1)[1] for c in login.headers.get_list("set-cookie")
             if c.startswith("n8n-auth=")), None)
        assert token, f"no n8n-auth cookie in the login answer: {login.headers}"
        cookie = {"cookie": f"n8n-auth={token}"}
        scopes = data_of(rest.get("/rest/api-keys/scopes", headers=cookie))
        assert "workflow:activate" in scopes and "workflow:read" in scopes, scopes
        created = data_of(rest.post("/rest/api-keys", headers=cookie, json={
            "label": "metric-stream control test", "scopes": scopes, "expiresAt": None}))
    key = created.get("rawApiKey") or created.get("apiKey")
    assert isinstance(key, str) and key, created
    return key


def n8n_active(n8n_url: str, key: str) -> bool:
    """Whether n8n says the workflow is active (its public API, with the key)."""
    answer = httpx.get(f"{n8n_url}/api/v1/workflows/{WORKFLOW_ID}",
                       headers={"X-N8N-API-KEY": key}, timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    active = answer.json()["active"]
    assert isinstance(active, bool)
    return active


def test_start_stop_pause_drive_the_real_n8n(tmp_path: Path, clock: ManualClock) -> None:
    status = n8n_status()  # skips, saying why, where n8n is not installed
    n8n_dir = Path(status.split(" in ", 1)[1].splitlines()[0].strip())
    n8n_folder = tmp_path / "n8n"
    n8n_folder.mkdir()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("METRIC_STREAM_", "N8N_"))}
    n8n_env = {**base_env, **N8N_ENV, "N8N_USER_FOLDER": str(n8n_folder)}
    if "N8N_PEER_DIR" in os.environ:
        n8n_env["N8N_PEER_DIR"] = os.environ["N8N_PEER_DIR"]
    n8n_url = f"http://127.0.0.1:{free_port()}"
    webhook = f"{n8n_url}/webhook/{WEBHOOK_PATH}"
    assert EXPORT in EXPORTS

    n8n_started = False
    try:
        import_credentials(n8n_dir / "node_modules" / ".bin" / "n8n", n8n_folder, n8n_env)
        n8n_local("import", str(EXPORT), env=n8n_env)  # imported active
        n8n_started = True
        n8n_local("start", n8n_url.rsplit(":", 1)[1], env=n8n_env)
        wait_until(lambda: webhook_registered(webhook), 60, f"n8n to register {webhook}")
        key = provision_api_key(n8n_url)
        assert n8n_active(n8n_url, key) is True

        services: Services = make_services(
            "embedded", tmp_path / "ms", clock, admin_key=ADMIN_KEY, n8n_api_url=n8n_url,
            n8n_api_key=key)
        services.registry.kpis.create(KpiDefinition(
            id="fear-greed-index", name="Fear & Greed", kpi_type="index",
            source=N8nSource(webhook_url=webhook, workflow_id=WORKFLOW_ID)))
        client = Client(build_api(services))

        def kpi_active() -> bool:
            return services.registry.kpis.require("fear-greed-index").active

        # stop: inactive in n8n, the KPI stays active
        code, answer = admin(client, "POST", f"/api/workflows/{WORKFLOW_ID}/stop")
        assert code == 200, answer
        assert answer == {"workflowId": WORKFLOW_ID, "action": "stop", "active": False,
                          "kpisChanged": []}
        assert n8n_active(n8n_url, key) is False and kpi_active() is True
        wait_until(lambda: not webhook_registered(webhook), 30,
                   f"n8n to unregister {webhook}")

        # start: active in n8n again, its webhook registered
        code, answer = admin(client, "POST", f"/api/workflows/{WORKFLOW_ID}/start")
        assert code == 200, answer
        assert answer == {"workflowId": WORKFLOW_ID, "action": "start", "active": True,
                          "kpisChanged": []}
        assert n8n_active(n8n_url, key) is True and kpi_active() is True
        wait_until(lambda: webhook_registered(webhook), 30, f"n8n to register {webhook}")

        # pause: inactive in n8n and the KPI inactive in the registry
        code, answer = admin(client, "POST", f"/api/workflows/{WORKFLOW_ID}/pause")
        assert code == 200, answer
        assert answer == {"workflowId": WORKFLOW_ID, "action": "pause", "active": False,
                          "kpisChanged": ["fear-greed-index"]}
        assert n8n_active(n8n_url, key) is False and kpi_active() is False
        paused = services.registry.kpis.require("fear-greed-index")
        assert paused.metadata["pausedByWorkflow"] == WORKFLOW_ID

        # start again: both active
        code, answer = admin(client, "POST", f"/api/workflows/{WORKFLOW_ID}/start")
        assert code == 200, answer
        assert answer == {"workflowId": WORKFLOW_ID, "action": "start", "active": True,
                          "kpisChanged": ["fear-greed-index"]}
        assert n8n_active(n8n_url, key) is True and kpi_active() is True
        assert "pausedByWorkflow" not in (
            services.registry.kpis.require("fear-greed-index").metadata)

        # a workflow n8n does not have: 404, quoting n8n; nothing changed
        code, error = admin(client, "POST", "/api/workflows/ms-no-such-workflow/pause")
        assert code == 404, error
        assert "ms-no-such-workflow" in error["error"]["message"]
        assert "n8n answered 404" in error["error"]["message"]
        assert n8n_active(n8n_url, key) is True and kpi_active() is True

        # a wrong key: n8n's 401 becomes a 502 that does not show the key
        wrong = make_services("embedded", tmp_path / "wrong", clock, admin_key=ADMIN_KEY,
                              n8n_api_url=n8n_url, n8n_api_key="not-the-key")
        code, error = admin(Client(build_api(wrong)), "POST",
                            f"/api/workflows/{WORKFLOW_ID}/stop")
        assert code == 502 and "401" in error["error"]["message"], error
        assert "not-the-key" not in error["error"]["message"]
        assert n8n_active(n8n_url, key) is True
    finally:
        if n8n_started:
            stop_n8n(n8n_dir, n8n_folder, n8n_env)
