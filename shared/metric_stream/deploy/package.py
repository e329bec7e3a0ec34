"""`metric-stream package`: the Lambda deployment, assembled, built by Chalice, completed
and measured, in one folder.

    functions/app.py ─┐
    chalice-config/   ├─▶ out/project/  a Chalice project: app.py, .chalice/config.json,
    shared/ (the core)┘                 vendor/metric_stream, requirements.txt (the light
                                        dependencies, at the versions installed here)
    chalice package   ─▶ out/chalice/   Chalice's template and deployment.zip
    pip (manylinux)   ─▶ out/layers/    render.zip, delivery.zip (`python/...`)
    complete_template ─▶ out/template.json + deployment.zip + layers: what `sam deploy`
                                        (or `aws cloudformation package`) takes
                         out/sizes.json: each artifact, zipped and unzipped, per function

Every module ships compiled (`__pycache__`, hash-based and unchecked): Lambda's code
folder is read-only, so a source-only package compiles every module again at each cold
start (about twice the import time).

Lambda's limits are checked here, not at deploy time: a function's code and layers
together must stay under 250 MB unzipped, and the code's zip under 50 MB, so that even a
direct upload (`chalice deploy`) takes it. Layers go through S3 (`sam deploy`), where
only the unzipped limit applies; their zipped size is reported.

The libraries are installed for Lambda's platform (manylinux x86_64 wheels for the
runtime's glibc, CPython of the packaging Python's version) from wheels only, so the
artifacts do not depend on this machine. A layer library gets the version installed
here, or the newest older one that has a wheel for Lambda's glibc (numpy 2.3 and later
need glibc 2.28: on python3.11's Amazon Linux 2 the layer has numpy 2.2).
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from metric_stream.deploy.stack import FUNCTIONS, LAYERS, StackOptions, complete_template
from metric_stream.errors import ConfigurationError, MetricStreamError

# The core's dependencies every function needs. boto3 is left out: Lambda's Python
# runtime provides it. cryptography (14 MB: it opens delivery endpoints' sealed secrets)
# is in the delivery layer, with the functions that send.
LIGHT_REQUIREMENTS = ("pydantic", "pydantic-settings", "httpx", "tenacity", "croniter")
# Lambda's runtime is the packaging Python's version (Chalice's rule); its glibc decides
# which manylinux wheels load there: 2.26 on Amazon Linux 2 (python3.11), 2.34 on
# Amazon Linux 2023 (python3.12 and later).
PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
RUNTIME_GLIBC_MINOR = 26 if sys.version_info < (3, 12) else 34
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(17, RUNTIME_GLIBC_MINOR + 1)),
             "manylinux2014_x86_64")
MAX_UNZIPPED = 262_144_000  # code + layers of one function
MAX_ZIPPED = 50 * 1024 * 1024  # a direct upload of the code
# Never shipped: caches, tests and type stubs of the libraries, which Lambda never reads.
_SKIP_DIRS = {"__pycache__", "tests", "test"}
_SKIP_SUFFIXES = (".pyc", ".pyi")

Log = Callable[[str], None]


class PackageError(MetricStreamError):
    code = "package_failed"


@dataclass
class Artifact:
    path: Path
    zipped: int
    unzipped: int

    def to_wire(self) -> dict[str, Any]:
        return {"file": self.path.name, "zippedBytes": self.zipped,
                "unzippedBytes": self.unzipped}


@dataclass
class FunctionSize:
    name: str
    memory_mb: int
    timeout_s: int
    layers: list[str]
    unzipped: int
    """Code and layers together (Lambda's 250 MB limit)."""

    def to_wire(self) -> dict[str, Any]:
        return {"function": self.name, "memoryMb": self.memory_mb, "timeoutS": self.timeout_s,
                "layers": self.layers, "unzippedBytes": self.unzipped}


@dataclass
class PackageReport:
    stage: str
    out: Path
    template: Path
    code: Artifact
    layers: dict[str, Artifact] = field(default_factory=dict)
    functions: list[FunctionSize] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"stage": self.stage, "template": str(self.template),
                "code": self.code.to_wire(),
                "layers": {k: v.to_wire() for k, v in self.layers.items()},
                "functions": [f.to_wire() for f in self.functions],
                "limits": {"unzippedBytes": MAX_UNZIPPED, "zippedBytes": MAX_ZIPPED}}


# ---------------------------------------------------------------- the source tree
def find_source(start: Path | None = None) -> Path:
    """The checkout holding `functions/` and `chalice-config/` (this package's own
    checkout when installed editable, else the working folder)."""
    candidates = [start] if start else [Path(__file__).resolve().parents[3], Path.cwd()]
    for candidate in candidates:
        if candidate and (candidate / "functions" / "app.py").is_file() \
                and (candidate / "chalice-config" / "config.json").is_file():
            return candidate
    where = start or Path.cwd()
    raise ConfigurationError(f"{where} holds no functions/app.py and chalice-config/"
                             "config.json: run from the metric-stream checkout or pass "
                             "--source", field="source")


def stage_config(source: Path, stage: str) -> dict[str, Any]:
    path = source / "chalice-config" / "config.json"
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}", field="config") from None
    stages = config.get("stages") or {}
    if stage not in stages:
        raise ConfigurationError(f"no stage {stage!r} in {path}; it has "
                                 f"{', '.join(sorted(stages)) or 'none'}", field="stage")
    return dict(stages[stage])


# ---------------------------------------------------------------- building
def assemble(source: Path, project: Path) -> None:
    """The Chalice project: the app, its config, the core vendored, the requirements."""
    if project.exists():
        shutil.rmtree(project)
    (project / ".chalice").mkdir(parents=True)
    shutil.copy2(source / "functions" / "app.py", project / "app.py")
    shutil.copy2(source / "chalice-config" / "config.json", project / ".chalice" / "config.json")
    core = Path(__file__).resolve().parents[1]
    shutil.copytree(core, project / "vendor" / "metric_stream", ignore=_ignored)
    (project / "requirements.txt").write_text(
        "".join(f"{name}=={metadata.version(name)}\n" for name in LIGHT_REQUIREMENTS))


def _ignored(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in _SKIP_DIRS or n.endswith(_SKIP_SUFFIXES)}


def build_layer(name: str, folder: Path, *, log: Log) -> Path:
    """A layer zip (`python/...`) of the layer's libraries, for Lambda's platform."""
    layer = LAYERS[name]
    target = folder / name / "python"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.mkdir(parents=True)
    pins = [f"{req}<={metadata.version(req)}" for req in layer.requirements]
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "--target", str(target), *platforms, "--implementation", "cp",
          "--python-version", PYTHON_VERSION, "--only-binary=:all:", *pins],
         what=f"pip install of the {name} layer")
    log(f"layer {name}: " + ", ".join(_installed(target, layer.requirements)))
    _prune(target)
    compile_tree(target)
    archive = folder / f"{name}.zip"
    _zip(target.parent, archive)
    return archive


def _installed(target: Path, names: Sequence[str]) -> list[str]:
    """`name==version` of each requested library as installed into `target`."""
    found = {d.metadata["Name"].lower().replace("_", "-"): d.version
             for d in metadata.distributions(path=[str(target)])}
    return [f"{n}=={found.get(n.lower().replace('_', '-'), '?')}" for n in names]


def _prune(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _SKIP_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(_SKIP_SUFFIXES):
            path.unlink()
    shutil.rmtree(folder / "bin", ignore_errors=True)


def compile_tree(folder: Path) -> None:
    """Byte-compile every module under `folder`, validated by nothing at import (the
    files never change once deployed, and zips carry no usable timestamps)."""
    compileall.compile_dir(str(folder), quiet=2, workers=0,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def with_bytecode(archive: Path, into: Path, work: Path) -> None:
    """`archive` rewritten to `into` with its modules compiled."""
    if work.exists():
        shutil.rmtree(work)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(work)
    compile_tree(work)
    _zip(work, into)
    shutil.rmtree(work)


def _zip(root: Path, archive: Path) -> None:
    """A reproducible zip of `root`'s contents (sorted, fixed timestamps)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, path.read_bytes())


def chalice_package(project: Path, stage: str, out: Path, env: dict[str, str]) -> Path:
    """Run `chalice package`; its CloudFormation template (`sam.json`)."""
    if out.exists():
        shutil.rmtree(out)
    chalice = shutil.which("chalice", path=str(Path(sys.executable).parent)) \
        or shutil.which("chalice")
    if chalice is None:
        raise ConfigurationError("chalice is not installed: pip install "
                                 "'metric-stream[deploy]' (or '.[dev]' in a checkout)",
                                 field="chalice")
    _run([chalice, "package", "--stage", stage, "--pkg-format", "cloudformation", str(out)],
         what="chalice package", cwd=project, env=env)
    return out / "sam.json"


def _run(command: Sequence[str], *, what: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True,  # noqa: S603 (our own fixed commands)
                          check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise PackageError(f"{what} failed (exit {done.returncode}):\n" + "\n".join(tail))


def measure(archive: Path) -> Artifact:
    with zipfile.ZipFile(archive) as opened:
        unzipped = sum(i.file_size for i in opened.infolist())
    return Artifact(archive, archive.stat().st_size, unzipped)


# ---------------------------------------------------------------- the command
def package(stage: str, out: Path, *, source: Path | None = None, region: str = "us-east-1",
            secrets_id: str | None = None, log: Log = print) -> PackageReport:
    """Build the stage's deployment into `out`; raises `PackageError` or
    `ConfigurationError` saying what failed, and leaves `out` as far as it got."""
    source = find_source(source)
    config = stage_config(source, stage)
    variables = {k: str(v) for k, v in (config.get("environment_variables") or {}).items()}
    prefix = variables.get("METRIC_STREAM_QUEUE_PREFIX", f"metric-stream-{stage}-")
    out.mkdir(parents=True, exist_ok=True)
    project = out / "project"
    log(f"assembling the Chalice project in {project}")
    assemble(source, project)
    log("chalice package (the light dependencies for Lambda's platform)")
    env = {**os.environ, "AWS_DEFAULT_REGION": region, "METRIC_STREAM_QUEUE_PREFIX": prefix}
    chalice_template = json.loads(chalice_package(project, stage, out / "chalice", env)
                                  .read_text())
    layers_dir = out / "layers"
    layers_dir.mkdir(exist_ok=True)
    layers = {name: build_layer(name, layers_dir, log=log) for name in LAYERS}
    with_bytecode(out / "chalice" / "deployment.zip", out / "deployment.zip", out / "code")
    for name, archive in layers.items():
        shutil.copy2(archive, out / f"layer-{name}.zip")
    options = StackOptions(
        stage=stage, queue_prefix=prefix,
        max_receives=int(variables.get("METRIC_STREAM_QUEUE_MAX_RECEIVES", "5")),
        secrets_id=secrets_id if secrets_id is not None else f"metric-stream/{stage}",
        layer_zips={name: f"./layer-{name}.zip" for name in layers})
    template = complete_template(chalice_template, options)
    template_path = out / "template.json"
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    report = PackageReport(stage, out, template_path, measure(out / "deployment.zip"),
                           {name: measure(out / f"layer-{name}.zip") for name in layers})
    report.functions = _function_sizes(template, report)
    (out / "sizes.json").write_text(json.dumps(report.to_wire(), indent=2) + "\n")
    check_limits(report)
    return report


def _function_sizes(template: dict[str, Any], report: PackageReport) -> list[FunctionSize]:
    sizes = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layers = [layer for layer in FUNCTIONS[name].layers if layer in report.layers]
        sizes.append(FunctionSize(
            name, int(properties.get("MemorySize", 128)), int(properties.get("Timeout", 3)),
            layers, report.code.unzipped + sum(report.layers[n].unzipped for n in layers)))
    return sorted(sizes, key=lambda f: f.name)


def check_limits(report: PackageReport) -> None:
    problems = [f"{report.code.path.name} is {report.code.zipped:,} bytes zipped "
                f"(limit {MAX_ZIPPED:,})"] if report.code.zipped > MAX_ZIPPED else []
    problems += [f"{f.name}: code and layers are {f.unzipped:,} bytes unzipped "
                 f"(limit {MAX_UNZIPPED:,})" for f in report.functions
                 if f.unzipped > MAX_UNZIPPED]
    if problems:
        raise PackageError("the artifacts exceed Lambda's limits: " + "; ".join(problems))

