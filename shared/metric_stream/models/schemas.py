"""The JSON Schemas (draft 2020-12) of the data contract, for n8n workflow authors.

They are generated from the models (`metric-stream schemas --out schemas/`) and
committed; a unit test fails when the committed files drift from the models. Most of
each schema is pydantic's own; `_PATCHES` adds the few rules that the models enforce
with validators pydantic cannot describe (unique id lists, http(s) URLs, a string
`error`, numeric execution ids, `kpiId` and `kpiIds` not both) so that a payload the
schema accepts is one the API accepts, as far as JSON Schema can say it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from metric_stream.models.kpi import KpiDefinition
from metric_stream.models.wire import (
    ErrorReport,
    KpiResult,
    KpiTrigger,
    MultiKpiResult,
    MultiKpiTrigger,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URL = "https://metric-stream.dev/schemas/"
SUFFIX = ".schema.json"

WIRE_MODELS: dict[str, type[BaseModel]] = {
    "kpi-trigger": KpiTrigger,
    "multi-kpi-trigger": MultiKpiTrigger,
    "kpi-result": KpiResult,
    "multi-kpi-result": MultiKpiResult,
    "error-report": ErrorReport,
    "kpi-definition": KpiDefinition,
}

JsonObject = dict[str, Any]


class _ContractSchema(GenerateJsonSchema):
    """Pydantic's generator without per-field titles ("Kpiids"): the camelCase property
    names say it better."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


# -- rules the validators enforce that pydantic's schema does not state -------------

_HTTP_URL: JsonObject = {"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"}


def _branch(prop: JsonObject, json_type: str) -> JsonObject:
    """The part of a (possibly nullable, `anyOf [..., null]`) property of `json_type`."""
    if prop.get("type") == json_type:
        return prop
    for option in prop.get("anyOf", []):
        if isinstance(option, dict) and option.get("type") == json_type:
            return option
    raise KeyError(f"no {json_type} branch in {prop}")


def _unique_kpi_ids(model: JsonObject) -> None:
    _branch(model["properties"]["kpiIds"], "array")["uniqueItems"] = True


def _kind_required(model: JsonObject) -> None:
    model["required"] = sorted({*model.get("required", []), "kind"})


def _patch_chart_ref(model: JsonObject) -> None:
    model["properties"]["url"].update(_HTTP_URL)


def _patch_n8n_source(model: JsonObject) -> None:
    model["properties"]["webhookUrl"].update(_HTTP_URL)
    _kind_required(model)


def _patch_kpi_definition(model: JsonObject) -> None:
    _unique_kpi_ids(model)
    model["properties"]["name"]["pattern"] = r"\S"  # not blank


def _patch_error_report(model: JsonObject) -> None:
    props = model["properties"]
    _unique_kpi_ids(model)
    error = props["error"]
    props["error"] = {
        key: value for key, value in error.items() if key not in ("type", "additionalProperties")
    } | {
        "anyOf": [
            {"type": "object", "additionalProperties": True, "minProperties": 1},
            {"type": "string"},
        ],
    }
    for name in ("workflowId", "executionId"):  # n8n sends numeric ids; kept as text
        props[name]["anyOf"].insert(1, {"type": "integer"})
    model["not"] = {
        "required": ["kpiId", "kpiIds"],
        "properties": {"kpiId": {"type": "string"}, "kpiIds": {"type": "array"}},
    }


_PATCHES: dict[str, Callable[[JsonObject], None]] = {
    "ChartRef": _patch_chart_ref,
    "CollectorSource": _kind_required,
    "ErrorReport": _patch_error_report,
    "KpiDefinition": _patch_kpi_definition,
    "MultiKpiResult": _unique_kpi_ids,
    "MultiKpiTrigger": _unique_kpi_ids,
    "N8nSource": _patch_n8n_source,
}


def _model_schemas(schema: JsonObject) -> Iterator[tuple[str, JsonObject]]:
    """(model name, its object schema) for the root and every `$defs` entry."""
    yield str(schema["title"]), schema
    yield from schema.get("$defs", {}).items()


def _closed_key_patterns(node: Any) -> None:
    """`dict[Id, ...]` becomes `patternProperties`; keys matching no pattern are refused
    by the models, so say so (`additionalProperties: false`)."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _closed_key_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _closed_key_patterns(value)


# -- the schemas ----------------------------------------------------------------------


def _schemas() -> dict[str, JsonObject]:
    schemas: dict[str, JsonObject] = {}
    patched: set[str] = set()
    for stem, model in WIRE_MODELS.items():
        schema = model.model_json_schema(
            by_alias=True, mode="validation", schema_generator=_ContractSchema
        )
        for name, model_schema in _model_schemas(schema):
            if name in _PATCHES:
                _PATCHES[name](model_schema)
                patched.add(name)
        _closed_key_patterns(schema)
        schema["$schema"] = DIALECT
        schema["$id"] = f"{BASE_URL}{stem}{SUFFIX}"
        schema["title"] = f"metric-stream {model.__name__} ({stem})"
        schemas[stem] = schema
    unused = sorted(set(_PATCHES) - patched)
    if unused:  # a model was renamed or dropped: its extra rules would silently vanish
        raise RuntimeError(f"schema patches for models no schema uses: {unused}")
    return schemas


def render_schemas() -> dict[str, str]:
    """File name (`kpi-result.schema.json`) -> its JSON text, byte-for-byte deterministic."""
    return {
        f"{stem}{SUFFIX}": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for stem, schema in _schemas().items()
    }


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder` (created if needed) and remove `*.schema.json`
    files no model writes any more; returns the paths of the schemas, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in sorted(folder.glob(f"*{SUFFIX}")):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, text in sorted(rendered.items()):
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
        paths.append(path)
    return paths


def schema_drift(folder: Path) -> list[str]:
    """What differs between the schema files in `folder` and the models, one line per
    file (missing, different or unexpected); empty when they match."""
    rendered = render_schemas()
    present = {p.name for p in folder.glob(f"*{SUFFIX}")} if folder.is_dir() else set()
    drift = []
    for name, text in sorted(rendered.items()):
        path = folder / name
        if name not in present:
            drift.append(f"missing: {path}")
            continue
        on_disk = path.read_text(encoding="utf-8")
        if on_disk != text:
            drift.append(f"different: {path} (first difference at line "
                         f"{_first_different_line(on_disk, text)})")
    for name in sorted(present - set(rendered)):
        drift.append(f"unexpected: {folder / name} (no model has this schema)")
    return drift


def _first_different_line(old: str, new: str) -> int:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if a != b:
            return number
    return min(len(old_lines), len(new_lines)) + 1
