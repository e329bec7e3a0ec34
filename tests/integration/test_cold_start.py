"""The ingestion Lambda handler, cold: a fresh interpreter imports the Chalice app and
serves a real API Gateway event without loading any heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from metric_stream.bootstrap import build_services
from metric_stream.models import CollectorSource, KpiDefinition
from metric_stream.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "tests" / "events" / "apigw-kpi-data.json"

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import app as chalice_app
response = chalice_app.app(json.loads(open(sys.argv[2]).read()), None)
print(json.dumps({"status": response["statusCode"], "body": response["body"],
                  "loaded": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def test_ingestion_handler_cold_start_loads_nothing_heavy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    services.init()
    services.registry.kpis.create(KpiDefinition(id="btc-price-usd", name="BTC", kpi_type="price",
                                                source=CollectorSource(collector="demo")))
    env = {**os.environ, "METRIC_STREAM_HOME": str(home),
           "METRIC_STREAM_INGESTION_KEY": "cold-start-key", "METRIC_STREAM_BACKEND": "embedded"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "functions"), str(EVENT)],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    result = json.loads(out)
    assert result["status"] == 202, result["body"]
    assert json.loads(result["body"])["stored"] == ["btc-price-usd"]
    heavy = {"matplotlib", "reportlab", "textual", "boto3", "botocore", "numpy", "moto"}
    assert heavy.isdisjoint(result["loaded"])
    assert [p.value for p in services.timeseries.points("btc-price-usd")] == [97123.45]
