"""The Lambda functions of `metric-stream package`: artifact sizes (sizes.json) and the
cold start from the packaged artifacts: `import app` and a first call with a real event,
in a fresh `python -I -S -B` whose sys.path is Lambda's only: the unzipped deployment.zip
(/var/task), the function's layers merged in template order (/opt/python), and boto3,
botocore and their pure-Python dependencies copied from this venv and precompiled (as
Lambda's runtime provides them). AWS is a moto server on 127.0.0.1, emptied before each
run; the environment is the template's, and the secret it names holds the ingestion key.

    python bench/lambda_package.py [--out DIR] [--runs 5] [--json]

First calls: APIHandler, a point for a registered KPI; Tick, a due schedule over 4 demo
KPIs; Retention, 4 demo KPIs with 30 days of points past the window; each consumer, a job
over 4 demo KPIs (90 days of history) after the stages before it, run here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx

from metric_stream.bootstrap import Services, build_services
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.deploy.stack import LAYERS
from metric_stream.models import KpiDefinition, Schedule
from metric_stream.server.emulate import FAKE_CREDENTIALS, emulated_aws
from metric_stream.settings import Settings

EVENTS = Path(__file__).resolve().parents[1] / "tests" / "events"
KEY = "cold-start-key"  # the X-API-Key of tests/events/apigw-kpi-data.json
REGION, TABLE, BUCKET = "us-east-1", "metric-stream-bench", "metric-stream-bench"
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil", "six")
HEAVY = ("matplotlib", "numpy", "reportlab", "aiohttp", "apprise", "textual")
STAGES = ("fanout", "analysis", "packaging", "delivery")
MB = 1_000_000

PROBE = r"""
import json, os, sys, time
started = time.perf_counter()
heavy, *paths, handler, event_path = sys.argv[1:]
sys.path[0:0], heavy = paths, (*json.loads(heavy), "boto3")
import app
imported = time.perf_counter()
at_import = [m for m in heavy if m in sys.modules]
answer = getattr(app, handler)(json.load(open(event_path)), None)
called, allowed = time.perf_counter(), (*paths, os.path.dirname(os.__file__))
print(json.dumps({
    "import_ms": (imported - started) * 1000, "first_call_ms": (called - imported) * 1000,
    "total_ms": (called - started) * 1000, "answer": answer, "at_import": at_import,
    # VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec
    "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024,
    "heavy": [m for m in heavy[:-1] if m in sys.modules],
    "outside": sorted(n for n, m in list(sys.modules.items()) if not (getattr(
        m, "__file__", None) or next(iter(getattr(m, "__path__", None) or ()), None)
        or paths[0]).startswith(allowed))}))  # builtins have no file
"""


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    layers: tuple[str, ...]
    env: dict[str, str]
    unzipped: int


def read_functions(out: Path) -> list[Function]:
    resources = json.loads((out / "template.json").read_text())["Resources"]
    sizes = {f["function"]: f for f in json.loads((out / "sizes.json").read_text())["functions"]}
    layer_names = {layer.logical_id: name for name, layer in LAYERS.items()}
    refs = {"Table": TABLE, "Bucket": BUCKET, "AWS::Region": REGION}
    functions = [Function(
        name, props["Handler"].removeprefix("app."),
        tuple(layer_names[ref["Ref"]] for ref in props.get("Layers", [])),
        {k: refs[v["Ref"]] if isinstance(v, dict) else v
         for k, v in props["Environment"]["Variables"].items()},
        sizes[name]["unzippedBytes"])
        for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"
        for props in (r["Properties"],)]
    return sorted(functions, key=lambda f: f.name != "APIHandler")  # then the cycle's order


def unpack(out: Path, work: Path, functions: list[Function]) -> dict[str, list[Path]]:
    """Each function's sys.path: the task, its merged layers, the runtime."""
    task, runtime = work / "task", work / "runtime"
    zipfile.ZipFile(out / "deployment.zip").extractall(task)
    runtime.mkdir()
    for package in RUNTIME_PACKAGES:
        spec = find_spec(package)
        assert spec is not None and spec.origin is not None, f"{package} is not installed"
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, runtime / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, runtime / origin.name)
    paths: dict[str, list[Path]] = {}
    for function in functions:
        opt = work / "-".join(("opt", *function.layers))
        if function.layers and not opt.exists():
            for layer in function.layers:  # in order: a later layer's file wins, as on Lambda
                zipfile.ZipFile(out / f"layer-{layer}.zip").extractall(opt)
        paths[function.name] = [task, *([opt / "python"] if function.layers else []), runtime]
    # the package ships its bytecode; the runtime's boto3 is compiled here, as on Lambda
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                    "unchecked-hash", str(runtime)], check=True, stdout=subprocess.DEVNULL)
    return paths


def demo_kpis(services: Services, days: int, end_days_ago: int = 1) -> None:
    entries = demo_registry(4)
    for entry in entries:
        services.registry.kpis.create(entry)
    seed_history(services, entries, days, (datetime.now(UTC) - timedelta(days=end_days_ago)).date())


def prepare(function: Function, services: Services) -> tuple[dict[str, Any], str | None]:
    """The event of the function's first call, and the job it is about (if any)."""
    from metric_stream.services.cycle import Triggers, run_fan_out, run_stage, schedule_job
    from metric_stream.services.stages import default_workers

    if function.name == "APIHandler":
        services.registry.kpis.create(KpiDefinition.model_validate({
            "id": "btc-price-usd", "name": "BTC", "kpiType": "price",
            "source": {"kind": "collector", "collector": "demo"}}))
        return json.loads((EVENTS / "apigw-kpi-data.json").read_text()), None
    if function.name == "Tick":
        demo_kpis(services, 0)
        services.registry.schedules.create(Schedule(
            id="every-minute", cron="* * * * *", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    if function.name == "Retention":
        demo_kpis(services, 30, end_days_ago=services.config.get().retention_days + 10)
    if function.name in ("Tick", "Retention"):
        return json.loads((EVENTS / "cloudwatch-scheduled.json").read_text()), None
    queue = function.name.removesuffix("Consumer").lower()
    demo_kpis(services, 90)
    body = {"traceId": schedule_job(services).trace_id}
    for earlier in STAGES[:STAGES.index(queue)]:
        if earlier == "fanout":
            with httpx.Client(timeout=10) as http:
                run_fan_out(services, body, Triggers(http))
        else:
            run_stage(services, earlier, body, default_workers())
    event: dict[str, Any] = json.loads((EVENTS / "sqs-analysis.json").read_text())
    event["Records"][0]["body"] = json.dumps(body)
    event["Records"][0]["eventSourceARN"] = (f"arn:aws:sqs:{REGION}:123456789012:"
                                             f"{function.env['METRIC_STREAM_QUEUE_PREFIX']}{queue}")
    return event, body["traceId"]


def did(answer: dict[str, Any], status: str | None) -> str:
    if "statusCode" in answer:
        return f"HTTP {answer['statusCode']}"
    if "fired" in answer:
        return f"{sum(bool(f['traceId']) for f in answer['fired'])} job started"
    if "archived" in answer:
        return f"{answer['archived']} archived, {answer['pruned']} pruned"
    return f"{len(answer['batchItemFailures'])} failed, job -> {status}"


def run_once(function: Function, paths: list[Path], endpoint: str, work: Path) -> dict[str, Any]:
    import boto3

    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()  # an empty account
    services = build_services(Settings(
        backend="aws", aws_endpoint_url=endpoint, aws_region=REGION, table_name=TABLE,
        bucket_name=BUCKET, queue_prefix=function.env["METRIC_STREAM_QUEUE_PREFIX"]))
    services.init()
    boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint).create_secret(
        Name=function.env["METRIC_STREAM_SECRETS_ID"],
        SecretString=json.dumps({"METRIC_STREAM_INGESTION_KEY": KEY}))
    event, trace_id = prepare(function, services)
    (work / "event.json").write_text(json.dumps(event))
    home = Path(tempfile.mkdtemp(dir=work))  # empty, as a new Lambda sandbox's
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TZ": ":UTC",
           "LANG": "C.UTF-8", "LAMBDA_TASK_ROOT": str(paths[0]), "AWS_REGION": REGION,
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
           **FAKE_CREDENTIALS, **function.env, "METRIC_STREAM_AWS_ENDPOINT_URL": endpoint}
    done = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", PROBE, json.dumps(HEAVY),
                           *map(str, paths), function.handler, str(work / "event.json")],
                          env=env, cwd=paths[0], capture_output=True, text=True, check=False)
    shutil.rmtree(home)
    if done.returncode != 0:
        raise SystemExit(f"{function.name}: the packaged function failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    job = services.jobs.get(trace_id) if trace_id else None
    figures["did"] = did(figures.pop("answer"), job.status.value if job else None)
    return figures


def measure(out: Path, runs: int) -> dict[str, Any]:
    sizes = json.loads((out / "sizes.json").read_text())
    functions = read_functions(out)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, emulated_aws() as endpoint:
        paths = unpack(out, Path(tmp), functions)
        for function in functions:
            samples = [run_once(function, paths[function.name], endpoint, Path(tmp))
                       for _ in range(runs)]
            results[function.name] = {
                "layers": list(function.layers), "code_layers_unzipped_mb": function.unzipped / MB,
                "limit_share": function.unzipped / sizes["limits"]["unzippedBytes"],
                **{f"{key}_median": statistics.median(s[key] for s in samples)
                   for key in ("import_ms", "first_call_ms", "total_ms", "peak_rss_mb")},
                **{key: sorted({m for s in samples for m in s[key]})
                   for key in ("heavy", "at_import", "outside")},
                "first_call": sorted({s["did"] for s in samples}), "runs": samples}
    return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "package": str(out), "runs": runs,
            "artifacts": {"code": sizes["code"], **sizes["layers"]},
            "limit_unzipped_bytes": sizes["limits"]["unzippedBytes"], "functions": results}


def print_table(figures: dict[str, Any]) -> None:
    machine = figures["machine"]
    print(f"Lambda package {figures['package']}: medians of {figures['runs']} fresh "
          "isolated interpreters per function; "
          f"{machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}")
    print("  " + "; ".join(f"{a['file']} {a['zippedBytes'] / MB:.1f} MB zipped, "
                           f"{a['unzippedBytes'] / MB:.1f} MB unzipped"
                           for a in figures["artifacts"].values()))
    head = ("function", "layers", "code+layers MB", "import ms", "first call ms", "total ms",
            "peak MB", "heavy modules loaded", "first call")
    rows = [(name, ",".join(f["layers"]) or "-",
             f"{f['code_layers_unzipped_mb']:.1f} ({f['limit_share']:.0%})",
             *(f"{f[key + '_median']:.0f}" for key in
               ("import_ms", "first_call_ms", "total_ms", "peak_rss_mb")),
             ",".join(m + ("@import" if m in f["at_import"] else "")
                      for m in (*f["heavy"], *set(f["at_import"]) - set(f["heavy"]))) or "none",
             " / ".join(f["first_call"]))
            for name, f in figures["functions"].items()]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"code+layers: unzipped, share of Lambda's {figures['limit_unzipped_bytes'] / MB:.1f}"
          " MB (250 MiB) limit; @import: loaded by `import app` already")
    for name, f in figures["functions"].items():
        if f["outside"]:
            print(f"NOT ISOLATED, {name} loaded modules from elsewhere: {f['outside']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="an existing `metric-stream package` folder "
                        "(default: build one into a temporary folder)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "package"
        if args.out is None:
            subprocess.run([str(Path(sys.executable).parent / "metric-stream"), "package",
                            "--stage", "prod", "--out", str(out)], check=True,
                           stdout=sys.stderr if args.json else None)
        figures = measure(out, args.runs)
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)


if __name__ == "__main__":
    main()
