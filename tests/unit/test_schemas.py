"""The committed JSON Schemas (schemas/) match the models, and say what the API accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metric_stream.errors import InvalidInput
from metric_stream.models.base import parse
from metric_stream.models.schemas import (
    WIRE_MODELS,
    render_schemas,
    schema_drift,
    write_schemas,
)

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
STEMS = ["kpi-trigger", "multi-kpi-trigger", "kpi-result", "multi-kpi-result",
         "error-report", "kpi-definition"]


def test_committed_schemas_match_the_models() -> None:
    drift = schema_drift(REPO_SCHEMAS)
    assert drift == [], (
        "schemas/ differs from the models; regenerate with "
        "'metric-stream schemas --out schemas/':\n" + "\n".join(drift)
    )


def test_one_schema_file_per_wire_model() -> None:
    assert sorted(WIRE_MODELS) == sorted(STEMS)
    assert sorted(render_schemas()) == sorted(f"{stem}.schema.json" for stem in STEMS)


def test_rendering_is_deterministic_and_carries_dialect_id_and_title() -> None:
    first, second = render_schemas(), render_schemas()
    assert first == second
    for name, text in first.items():
        stem = name.removesuffix(".schema.json")
        schema = json.loads(text)
        assert text == json.dumps(schema, indent=2, sort_keys=True) + "\n"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://metric-stream.dev/schemas/{stem}.schema.json"
        assert WIRE_MODELS[stem].__name__ in schema["title"]


def _schema(stem: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_schemas()[f"{stem}.schema.json"])
    return loaded


def test_schemas_state_the_validators_rules() -> None:
    result = _schema("kpi-result")
    props = result["properties"]
    for name in ("traceId", "kpiId", "kpiType"):
        assert props[name] == {"type": "string", "pattern": ID_PATTERN}
    assert props["timestamp"] == {"type": "string", "format": "date-time"}
    number = {"type": "number", "minimum": -1e100, "maximum": 1e100}
    assert props["data"]["oneOf"][0] == number
    assert result["$defs"]["DataObject"]["properties"]["value"] == number
    assert result["additionalProperties"] is True  # unknown fields are kept
    assert sorted(result["required"]) == ["data", "kpiId", "kpiType", "timestamp", "traceId"]

    multi = _schema("multi-kpi-result")["properties"]
    assert multi["kpiIds"]["items"] == {"type": "string", "pattern": ID_PATTERN}
    assert multi["kpiIds"]["uniqueItems"] is True
    assert list(multi["data"]["patternProperties"]) == [ID_PATTERN]
    assert multi["data"]["additionalProperties"] is False

    definition = _schema("kpi-definition")
    assert definition["additionalProperties"] is False  # admin models refuse unknown fields
    assert "kind" in definition["$defs"]["N8nSource"]["required"]


def test_drift_names_missing_different_and_unexpected_files(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    assert schema_drift(folder) == [f"missing: {folder / n}" for n in sorted(render_schemas())]

    written = write_schemas(folder)
    assert sorted(p.name for p in written) == sorted(render_schemas())
    assert schema_drift(folder) == []

    (folder / "kpi-result.schema.json").write_text("{}\n", encoding="utf-8")
    (folder / "kpi-trigger.schema.json").unlink()
    (folder / "old-model.schema.json").write_text("{}\n", encoding="utf-8")
    (folder / "README.md").write_text("not a schema\n", encoding="utf-8")
    assert schema_drift(folder) == [
        f"different: {folder / 'kpi-result.schema.json'} (first difference at line 1)",
        f"missing: {folder / 'kpi-trigger.schema.json'}",
        f"unexpected: {folder / 'old-model.schema.json'} (no model has this schema)",
    ]

    write_schemas(folder)
    assert schema_drift(folder) == []
    assert not (folder / "old-model.schema.json").exists()
    assert (folder / "README.md").exists()


# -- example payloads against the committed files (needs the optional jsonschema) ----

TS = "2026-11-29T06:00:00Z"
SINGLE: dict[str, Any] = {
    "traceId": "trace_20261129_060000_a1b2c3", "kpiId": "cmc-btc-dominance",
    "timestamp": TS, "kpiType": "cmc", "data": 57.3,
}
MULTI: dict[str, Any] = {
    "traceId": "trace_20261129_060000_a1b2c3", "timestamp": "2026-11-29T01:00:00-05:00",
    "kpiType": "cbbi", "kpiIds": ["cbbi-rhodl", "cbbi-mvrv"],
    "data": {"cbbi-rhodl": 0.61, "cbbi-mvrv": {"value": 2.1, "source": "cbbi.info"}},
}
ERROR = {"traceId": "trace_20261129_060000_a1b2c3", "kpiId": "cmc-btc-dominance",
         "error": {"message": "429 Too Many Requests", "status": 429}, "executionId": 4711}
DEFINITION = {"id": "cmc-btc-dominance", "name": "BTC dominance", "kpiType": "cmc",
              "source": {"kind": "n8n", "webhookUrl": "https://n8n.example.com/webhook/cmc"}}

EXAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("kpi-trigger", {k: v for k, v in SINGLE.items() if k != "data"}, True),
    ("multi-kpi-trigger", {k: v for k, v in MULTI.items() if k != "data"}, True),
    ("kpi-result", SINGLE, True),
    ("kpi-result", {**SINGLE, "data": {"value": 57.3, "volume": 12}, "workflowRun": 3}, True),
    ("kpi-result", {**SINGLE, "chart": {"url": "https://c.example.com/a.png", "type": "line",
                                        "timeRange": "30d"}}, True),
    ("kpi-result", {**SINGLE, "data": "57.3"}, False),
    ("kpi-result", {**SINGLE, "data": {"volume": 12}}, False),
    ("kpi-result", {**SINGLE, "data": 1e101}, False),
    ("kpi-result", {**SINGLE, "kpiId": "-starts-with-dash"}, False),
    ("kpi-result", {**SINGLE, "traceId": 12345}, False),
    ("kpi-result", {**SINGLE, "chart": {"url": "ftp://c.example.com/a.png", "type": "line",
                                        "timeRange": "30d"}}, False),
    ("kpi-result", {k: v for k, v in SINGLE.items() if k != "kpiType"}, False),
    ("multi-kpi-result", MULTI, True),
    ("multi-kpi-result", {**MULTI, "kpiIds": ["cbbi-rhodl", "cbbi-rhodl"]}, False),
    ("multi-kpi-result", {**MULTI, "data": {**MULTI["data"], "bad key": 1}}, False),
    ("multi-kpi-result", {**MULTI, "kpiIds": []}, False),
    ("error-report", ERROR, True),
    ("error-report", {**ERROR, "error": "timed out after 30 s"}, True),
    ("error-report", {**ERROR, "kpiId": None, "kpiIds": ["a", "b"]}, True),
    ("error-report", {**ERROR, "error": {}}, False),
    ("error-report", {**ERROR, "kpiIds": ["a", "b"]}, False),
    ("error-report", {**ERROR, "retryCount": -1}, False),
    ("kpi-definition", DEFINITION, True),
    ("kpi-definition", {**DEFINITION, "colour": "red"}, False),
    ("kpi-definition", {**DEFINITION, "name": "   "}, False),
    ("kpi-definition", {**DEFINITION, "source": {"webhookUrl": "https://x.example.com/"}}, False),
    ("kpi-definition", {**DEFINITION, "source": {"kind": "collector", "collector": "cbbi"}},
     True),
]


@pytest.mark.parametrize(("stem", "payload", "valid"), EXAMPLES)
def test_committed_schema_and_model_agree_on_examples(
    stem: str, payload: dict[str, Any], valid: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO_SCHEMAS / f"{stem}.schema.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    schema_errors = [e.message for e in validator.iter_errors(payload)]
    assert (schema_errors == []) is valid, schema_errors

    if valid:
        parse(WIRE_MODELS[stem], payload)
    else:
        with pytest.raises(InvalidInput):
            parse(WIRE_MODELS[stem], payload)


def test_naive_timestamps_are_refused_by_the_schema_format() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator_class = jsonschema.Draft202012Validator
    if "date-time" not in validator_class.FORMAT_CHECKER.checkers:
        pytest.skip("jsonschema checks date-time only with rfc3339-validator installed")
    schema = json.loads((REPO_SCHEMAS / "kpi-result.schema.json").read_text(encoding="utf-8"))
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    assert validator.is_valid({**SINGLE, "timestamp": "2026-11-29T01:00:00-05:00"})
    naive = {**SINGLE, "timestamp": "2026-11-29T06:00:00"}
    assert [e.json_path for e in validator.iter_errors(naive)] == ["$.timestamp"]
    with pytest.raises(InvalidInput) as refused:
        parse(WIRE_MODELS["kpi-result"], naive)
    assert [p.field for p in refused.value.problems] == ["timestamp"]
