"""`metric-stream package` for real: the Chalice project built by `chalice package`, the
layers installed for Lambda's platform, the template checked by cfn-lint, the sizes
within Lambda's limits, and each artifact importable on its own (slow: ~30 s, pip
downloads the Lambda wheels from the package registry, then its cache)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from metric_stream.deploy.package import MAX_UNZIPPED, MAX_ZIPPED, PackageReport, package
from tests.cli_support import run_cli

pytestmark = pytest.mark.slow

RUNTIME_LIBRARIES = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil",
                     "six.py")
HEAVY = ("matplotlib", "numpy", "reportlab", "aiohttp", "apprise", "textual", "PIL",
         "cryptography")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> PackageReport:
    out = tmp_path_factory.mktemp("package") / "build"
    return package("prod", out, region="eu-west-1", log=lambda _text: None)


def names_in(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as opened:
        return {n.split("/")[0] for n in opened.namelist()}


def test_the_template_passes_cfn_lint(built: PackageReport) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint is not None
    done = subprocess.run([cfn_lint, str(built.template)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_template_is_the_whole_stack(built: PackageReport) -> None:
    template: dict[str, Any] = json.loads(built.template.read_text())
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert kinds.count("AWS::Serverless::Function") == 7
    assert kinds.count("AWS::SQS::Queue") == 8
    assert kinds.count("AWS::Serverless::LayerVersion") == 2
    assert "AWS::DynamoDB::Table" in kinds and "AWS::S3::Bucket" in kinds
    tick = template["Resources"]["Tick"]["Properties"]
    assert tick["Events"]  # the schedule Chalice declared is kept
    for function in ("APIHandler", "AnalysisConsumer"):
        assert template["Resources"][function]["Properties"]["CodeUri"] == "./deployment.zip"
    for archive in ("deployment.zip", "layer-render.zip", "layer-delivery.zip"):
        assert (built.out / archive).is_file()


def test_every_artifact_is_within_lambdas_limits(built: PackageReport) -> None:
    sizes = json.loads((built.out / "sizes.json").read_text())
    assert {f["function"] for f in sizes["functions"]} == {
        "APIHandler", "Tick", "Retention", "FanoutConsumer", "AnalysisConsumer",
        "PackagingConsumer", "DeliveryConsumer"}
    for function in built.functions:
        assert function.unzipped <= MAX_UNZIPPED, function
    assert 0 < built.code.zipped <= MAX_ZIPPED  # even a direct upload takes the code
    for layer in built.layers.values():  # layers go through S3: only unzipped counts
        assert 0 < layer.zipped < layer.unzipped <= MAX_UNZIPPED, layer
    light = {f.name: f.unzipped for f in built.functions if not f.layers}
    assert set(light) == {"FanoutConsumer", "Retention"}
    assert all(size == built.code.unzipped < 30_000_000 for size in light.values())


def test_the_code_is_light_and_the_heavy_libraries_are_in_layers(built: PackageReport) -> None:
    code = names_in(built.out / "deployment.zip")
    assert {"app.py", "metric_stream", "pydantic", "pydantic_core", "httpx", "croniter"} <= code
    assert not code & {*HEAVY, "boto3", "botocore", "uvicorn", "metric_stream_tui"}
    assert names_in(built.out / "layer-render.zip") == {"python"}
    with zipfile.ZipFile(built.out / "layer-render.zip") as opened:
        top = {n.split("/")[1] for n in opened.namelist()}
    assert {"matplotlib", "numpy", "reportlab", "PIL"} <= top
    assert "metric_stream" not in top
    with zipfile.ZipFile(built.out / "layer-delivery.zip") as opened:
        top = {n.split("/")[1] for n in opened.namelist()}
    assert {"aiohttp", "apprise", "cryptography"} <= top
    assert not top & {"matplotlib", "numpy"}


def test_the_delivery_layer_has_a_cryptography_wheel_for_lambdas_glibc(
        built: PackageReport) -> None:
    from metric_stream.deploy.package import RUNTIME_GLIBC_MINOR

    with zipfile.ZipFile(built.out / "layer-delivery.zip") as opened:
        wheel = next(opened.read(n).decode() for n in opened.namelist()
                     if n.startswith("python/cryptography-") and n.endswith(".dist-info/WHEEL"))
    tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
    assert tags and all("-abi3-" in t and "x86_64" in t for t in tags), tags
    minors = [int(t.split("manylinux_2_")[1].split("_")[0]) if "manylinux_2_" in t else 17
              for t in tags]  # manylinux2014 is glibc 2.17
    assert min(minors) <= RUNTIME_GLIBC_MINOR, tags


def _unzip(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(into)
    return into


def _runtime(folder: Path) -> Path:
    """What Lambda's Python runtime provides beside the code: boto3 and its libraries."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    for name in RUNTIME_LIBRARIES:
        source = site / name
        (folder / name).symlink_to(source, target_is_directory=source.is_dir())
    return folder


def _isolated(paths: list[Path], code: str) -> dict[str, Any]:
    """Run `code` in an interpreter that sees only `paths` (no site-packages)."""
    prelude = f"import sys, json; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + code],
                          capture_output=True, text=True, check=False,
                          env={"PYDANTIC_DISABLE_PLUGINS": "__all__",
                               "METRIC_STREAM_QUEUE_PREFIX": "metric-stream-prod-",
                               "AWS_DEFAULT_REGION": "eu-west-1"})
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_every_module_ships_compiled(built: PackageReport) -> None:
    """Lambda's code folder is read-only: without bytecode every cold start compiles."""
    for archive in ("deployment.zip", "layer-render.zip"):
        with zipfile.ZipFile(built.out / archive) as opened:
            names = set(opened.namelist())
        sources = [n for n in names if n.endswith(".py")]
        compiled = {n for n in names if n.endswith(".pyc")}
        tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
        missing = [n for n in sources if "/" in n and
                   f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.{tag}.pyc"
                   not in compiled]
        assert len(missing) <= len(sources) // 100, (archive, missing[:10])


def test_the_light_functions_import_from_the_package_alone(
        built: PackageReport, tmp_path: Path) -> None:
    code = _unzip(built.out / "deployment.zip", tmp_path / "task")
    loaded = _isolated([code, _runtime(tmp_path / "runtime")], (
        "import app\n"
        "assert callable(app.tick) and callable(app.fanout_consumer)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"))
    assert loaded == []  # type: ignore[comparison-overlap]


def test_the_layers_load_on_their_own_and_render(built: PackageReport, tmp_path: Path) -> None:
    code = _unzip(built.out / "deployment.zip", tmp_path / "task")
    render = _unzip(built.out / "layer-render.zip", tmp_path / "render") / "python"
    delivery = _unzip(built.out / "layer-delivery.zip", tmp_path / "delivery") / "python"
    answer = _isolated([code, render, delivery, _runtime(tmp_path / "runtime")], (
        "from datetime import datetime, timedelta, UTC\n"
        "import numpy, aiohttp, apprise, reportlab.pdfgen.canvas as canvas, io\n"
        "from metric_stream.charts.render import ChartSpec, render_chart\n"
        "start = datetime(2026, 1, 1, tzinfo=UTC)\n"
        "points = [(start + timedelta(days=d), float(d * d)) for d in range(30)]\n"
        "png = render_chart(ChartSpec('layer check', series={'v': points}))\n"
        "pdf = io.BytesIO(); page = canvas.Canvas(pdf); page.drawString(72, 72, 'ok'); "
        "page.save()\n"
        "from metric_stream.storage.sealing import Keyring, RecordKey, Sealer\n"
        "ring = Keyring.of(RecordKey.parse(RecordKey.generate(), 'k'), [])\n"
        "sealer = Sealer(lambda _sealing: ring)\n"
        "opened = sealer.open(sealer.seal({'url': 'tgram://t/c'}, 'ctx'), 'ctx', 'e')\n"
        "print(json.dumps({'png': png[:8].hex(), 'pdf': pdf.getvalue()[:5].decode(), "
        "'numpy': numpy.__version__, 'opened': opened}))"))
    assert answer["png"] == "89504e470d0a1a0a"  # a PNG, drawn by the layer's matplotlib
    assert answer["pdf"] == "%PDF-"
    assert answer["numpy"].split(".")[0] in ("1", "2")
    assert answer["opened"] == {"url": "tgram://t/c"}  # the layer's cryptography seals


def test_a_stage_missing_from_the_config_is_named(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    code, _out, err = run_cli(capsys, "package", "--stage", "staging", "--out", str(tmp_path))
    assert code == 1
    assert "no stage 'staging'" in err and "dev, prod" in err
    assert not any(tmp_path.iterdir())


def test_a_bad_stage_name_or_source_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    code, _out, err = run_cli(capsys, "package", "--stage", "Prod!", "--out", str(tmp_path))
    assert code == 2 and "is not a stage name" in err
    code, _out, err = run_cli(capsys, "package", "--source", str(tmp_path), "--out",
                              str(tmp_path / "out"))
    assert code == 1 and "holds no functions/app.py" in err
