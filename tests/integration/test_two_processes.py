"""The embedded backend with two processes at once (`serve` running while `run` is
invoked): nothing lost, nothing doubled, no 'database is locked'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from metric_stream.bootstrap import build_services
from metric_stream.ports import Key, Put
from metric_stream.settings import Settings

WORKER = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from metric_stream.bootstrap import build_services
from metric_stream.models import DataPoint
from metric_stream.ports import Key, Update
from metric_stream.settings import Settings

home, name = Path(sys.argv[1]), sys.argv[2]
s = build_services(Settings(home=home))
start = datetime(2025, 1, 1, tzinfo=UTC)
for i in range(300):
    s.timeseries.append([DataPoint(kpi_id=f"kpi-{name}", timestamp=start + timedelta(days=i),
                                   value=float(i))])
    s.timeseries.append([DataPoint(kpi_id="shared", timestamp=start + timedelta(days=i),
                                   value=float(i))])
    s.records.write([Update(Key("counter", "#"), add={"n": 1})])
    s.queue.send("analysis", {"from": name, "i": i})
print("done")
"""


def test_two_processes_write_the_same_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    services.init()
    services.records.write([Put(Key("counter", "#"), {"n": 0})])
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(home), name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert out.strip() == "done"

    assert services.records.get(Key("counter", "#")) == {"n": 600}
    assert len(services.timeseries.points("kpi-a")) == 300
    assert len(services.timeseries.points("kpi-b")) == 300
    shared = services.timeseries.points("shared")
    assert [p.value for p in shared] == [float(i) for i in range(300)]  # each once
    assert services.queue.depth("analysis").visible == 600
