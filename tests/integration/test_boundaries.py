"""Import boundaries, checked by a machine: the core loads neither Chalice nor Textual,
and the embedded backend loads no heavy library (cold starts count)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("textual", "chalice", "boto3", "botocore", "matplotlib", "reportlab", "moto", "numpy")
REPO = Path(__file__).resolve().parents[2]


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize("module", [
    "metric_stream.models", "metric_stream.ports", "metric_stream.storage",
    "metric_stream.settings", "metric_stream.errors", "metric_stream.bootstrap",
    "metric_stream.cli.main", "metric_stream.api.app", "metric_stream.services.stages",
    "metric_stream.services.analysis", "metric_stream.services.packaging",
    "metric_stream.report.messages", "metric_stream.charts.scene",
])
def test_core_modules_load_nothing_heavy(module: str) -> None:
    assert loaded_after(f"import {module}").isdisjoint(HEAVY)


def test_embedded_backend_in_use_loads_nothing_heavy(tmp_path: Path) -> None:
    code = f"""
from pathlib import Path
from metric_stream.bootstrap import build_services
from metric_stream.settings import Settings
from metric_stream.ports import Key, Put
s = build_services(Settings(home=Path({str(tmp_path)!r})))
s.init()
s.records.write([Put(Key('a', 'b'), {{'v': 1}})])
assert s.records.get(Key('a', 'b')) == {{'v': 1}}
s.queue.send('analysis', {{'traceId': 't'}})
s.blobs.put('x/y.txt', b'1')
"""
    assert loaded_after(code).isdisjoint(HEAVY)


def test_cryptography_is_loaded_only_to_seal_or_open_an_endpoint(tmp_path: Path) -> None:
    """Ingestion, the registry's KPIs and an empty endpoint list never load it (~8 ms
    of a cold start); a sealed endpoint does."""
    code = f"""
import json, sys
from pathlib import Path
from metric_stream.api.app import build_api
from metric_stream.api.http import Request
from metric_stream.bootstrap import build_services
from metric_stream.models import KpiDefinition, N8nSource
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.settings import Settings
s = build_services(Settings(home=Path({str(tmp_path)!r}), ingestion_key='k'))
s.init()
s.registry.kpis.create(KpiDefinition(id='btc', name='BTC', kpi_type='price',
    source=N8nSource(webhook_url='http://127.0.0.1:9/webhook/btc')))
body = json.dumps({{'traceId': 'boundary', 'kpiId': 'btc', 'kpiType': 'price',
                   'timestamp': '2026-01-01T00:00:00Z', 'data': 1.5}}).encode()
answer = build_api(s).handle(Request('POST', '/api/kpi-data', {{'x-api-key': 'k'}}, body, {{}}))
assert answer.status < 300 and b'stored' in answer.body, answer.body
assert s.registry.endpoints.all() == []
assert 'cryptography' not in sys.modules
s.registry.endpoints.create(DeliveryEndpoint(id='e', name='e', url='https://example.org/in'))
assert 'cryptography' in sys.modules
"""
    loaded_after(code)


def test_aws_backend_is_only_loaded_when_chosen() -> None:
    code = """
from metric_stream.bootstrap import build_services
from metric_stream.settings import Settings
build_services(Settings(backend='aws'))
"""
    loaded = loaded_after(code)
    assert "boto3" in loaded
    assert loaded.isdisjoint({"textual", "chalice", "matplotlib", "reportlab"})


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is part of the dev install"
    result = subprocess.run([lint_imports], capture_output=True, text=True, cwd=REPO,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
