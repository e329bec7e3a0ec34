"""The n8n workflow exports in n8n/: their wiring, and the code of their Code nodes run
under Node.js against the recorded source answers (those cases skip without `node`).

The same exports run in a real n8n in tests/integration/test_n8n_workflows.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from metric_stream.models.base import parse
from metric_stream.models.wire import (
    ErrorReport,
    KpiResult,
    KpiTrigger,
    MultiKpiResult,
    MultiKpiTrigger,
    parse_result,
)

ROOT = Path(__file__).resolve().parents[2]
N8N = ROOT / "n8n"
RECORDED = ROOT / "tests" / "integration" / "n8n_recorded"
SCHEMAS = ROOT / "schemas"
SOURCES: list[dict[str, Any]] = json.loads((RECORDED / "sources.json").read_text())["sources"]
STANDARD = ["cbbi-multi.json", "cmc-multi.json", "coingecko-price.json",
            "custom-kpi-template.json", "fear-greed.json"]
TRACE = "trace_20251129_060000_3fa9c1"
WEBHOOK = "n8n-nodes-base.webhook"
HTTP = "n8n-nodes-base.httpRequest"
CODE = "n8n-nodes-base.code"


def load(name: str) -> dict[str, Any]:
    export: dict[str, Any] = json.loads((N8N / name).read_text(encoding="utf-8"))
    return export


def source(name: str) -> dict[str, Any]:
    return next(s for s in SOURCES if s["export"] == name)


def node(export: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in export["nodes"] if n["name"] == name)


def outputs(export: dict[str, Any], name: str) -> list[list[str]]:
    """The names of the nodes each output of `name` leads to."""
    branches = export["connections"].get(name, {}).get("main", [])
    return [[link["node"] for link in branch] for branch in branches]


def reachable(export: dict[str, Any], start: str) -> Iterator[str]:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        for branch in outputs(export, current):
            for target in branch:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
                    yield target


def posts_to(http_node: dict[str, Any], route: str) -> bool:
    params = http_node["parameters"]
    url = params.get("url", "")
    return (params.get("method") == "POST" and "$env.METRIC_STREAM_API_URL" in url
            and url.endswith(f"}}}}{route}"))


def trigger_for(src: dict[str, Any]) -> dict[str, Any]:
    """The trigger the scheduler POSTs for this source's registry entry."""
    kpi = src["kpi"]
    fields = {"trace_id": TRACE, "timestamp": "2025-11-29T06:00:00Z", "kpi_type": kpi["kpiType"]}
    if kpi.get("kpiIds"):
        return MultiKpiTrigger(kpi_ids=kpi["kpiIds"], **fields).to_wire()
    return KpiTrigger(kpi_id=kpi["id"], **fields).to_wire()


@cache
def validator(stem: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / f"{stem}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.Draft202012Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(payload: dict[str, Any]) -> list[str]:
    if "error" in payload:
        stem = "error-report"
    else:
        stem = "multi-kpi-result" if "kpiIds" in payload else "kpi-result"
    return [f"{e.json_path}: {e.message}" for e in validator(stem).iter_errors(payload)]


# -- structure ----------------------------------------------------------------------


def test_an_export_per_standard_source_and_a_recorded_answer_for_each() -> None:
    assert sorted(p.name for p in N8N.glob("*.json")) == STANDARD
    assert sorted(s["export"] for s in SOURCES) == STANDARD
    for src in SOURCES:
        assert (RECORDED / src["recorded"]).is_file()


def test_ids_and_webhook_paths_are_set_and_unique() -> None:
    exports = [load(name) for name in STANDARD]
    ids = [e["id"] for e in exports]
    paths = [n["parameters"]["path"] for e in exports for n in e["nodes"] if n["type"] == WEBHOOK]
    hook_ids = [n["webhookId"] for e in exports for n in e["nodes"] if n["type"] == WEBHOOK]
    assert all(re.fullmatch(r"[a-z0-9-]{1,36}", i) for i in ids), ids
    assert len(set(ids)) == len(ids) == len(STANDARD)
    assert len(set(paths)) == len(paths) == len(STANDARD)
    assert len(set(hook_ids)) == len(STANDARD)


@pytest.mark.parametrize("name", STANDARD)
def test_export_is_an_importable_n8n_workflow(name: str) -> None:
    export = load(name)
    assert export["name"].startswith("metric-stream: ")
    assert export["settings"]["executionOrder"] == "v1"
    names = [n["name"] for n in export["nodes"]]
    assert len(set(names)) == len(names)
    for n in export["nodes"]:
        assert {"id", "name", "type", "typeVersion", "position", "parameters"} <= n.keys()
    for origin, kinds in export["connections"].items():
        assert origin in names
        for branch in kinds["main"]:
            assert all(link["node"] in names and link["type"] == "main" for link in branch)


@pytest.mark.parametrize("name", STANDARD)
def test_webhook_answers_at_once_then_fetch_format_and_send(name: str) -> None:
    export = load(name)
    hooks = [n for n in export["nodes"] if n["type"] == WEBHOOK]
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["name"] == "Webhook trigger"
    assert hook["parameters"]["httpMethod"] == "POST"
    assert hook["parameters"]["responseMode"] == "onReceived"
    assert hook["parameters"]["path"].startswith("metric-stream-")

    [[fetch_name]] = outputs(export, "Webhook trigger")
    fetch = node(export, fetch_name)
    assert fetch["type"] == HTTP
    assert fetch["retryOnFail"] is True and fetch["maxTries"] >= 3
    assert f"$env.{source(name)['env']}" in fetch["parameters"]["url"]
    assert outputs(export, fetch_name)[0] == ["Format result"]
    assert node(export, "Format result")["type"] == CODE
    assert outputs(export, "Format result")[0] == ["Send to metric-stream"]
    send = node(export, "Send to metric-stream")
    assert send["type"] == HTTP and posts_to(send, "/api/kpi-data")
    assert send["parameters"]["jsonBody"] == "={{ JSON.stringify($json) }}"
    assert send["retryOnFail"] is True


@pytest.mark.parametrize("name", STANDARD)
def test_every_step_that_can_fail_leads_to_kpi_error(name: str) -> None:
    export = load(name)
    [[fetch_name]] = outputs(export, "Webhook trigger")
    report = node(export, "Report error to metric-stream")
    assert posts_to(report, "/api/kpi-error")
    for step in (fetch_name, "Format result", "Send to metric-stream"):
        assert node(export, step)["onError"] == "continueErrorOutput"
        error_branch = outputs(export, step)[1]
        assert error_branch == ["Build error report"]
    assert list(reachable(export, "Build error report")) == [report["name"]]
    # the error path ends there: a failing error report must fail the execution visibly
    assert "onError" not in report and "onError" not in node(export, "Build error report")


@pytest.mark.parametrize("name", STANDARD)
def test_keys_come_from_header_auth_credentials_never_from_the_file(name: str) -> None:
    export = load(name)
    text = (N8N / name).read_text(encoding="utf-8").lower()
    assert "x-api-key" not in text and "x-cmc_pro_api_key" not in text
    for n in export["nodes"]:
        headers = n["parameters"].get("headerParameters", {}).get("parameters", [])
        assert all(h["name"].lower() not in ("x-api-key", "x-cmc_pro_api_key") for h in headers)
        for ref in n.get("credentials", {}).values():
            assert set(ref) == {"id", "name"}
    for step in ("Send to metric-stream", "Report error to metric-stream"):
        callback = node(export, step)
        assert callback["parameters"]["authentication"] == "genericCredentialType"
        assert callback["parameters"]["genericAuthType"] == "httpHeaderAuth"
        assert callback["credentials"]["httpHeaderAuth"]["name"] == "metric-stream ingestion key"


def test_coinmarketcap_key_is_its_own_credential() -> None:
    export = load("cmc-multi.json")
    fetch = node(export, "Fetch CoinMarketCap global metrics")
    assert fetch["parameters"]["genericAuthType"] == "httpHeaderAuth"
    assert fetch["credentials"]["httpHeaderAuth"]["name"] == "CoinMarketCap API key"
    assert fetch["parameters"]["url"].endswith("/v1/global-metrics/quotes/latest")


def test_readme_documents_the_credentials_the_exports_use() -> None:
    readme = (N8N / "README.md").read_text(encoding="utf-8")
    refs = {(ref["id"], ref["name"]) for name in STANDARD for n in load(name)["nodes"]
            for ref in n.get("credentials", {}).values()}
    assert refs == {("msIngestionKey01", "metric-stream ingestion key"),
                    ("msCmcApiKey00001", "CoinMarketCap API key")}
    for cred_id, cred_name in refs:
        assert f'"id": "{cred_id}", "name": "{cred_name}"' in readme
        assert f"`{cred_name}`" in readme
    for name in STANDARD:
        export = load(name)
        assert f"`{export['id']}`" in readme
        assert f"`{node(export, 'Webhook trigger')['parameters']['path']}`" in readme


# -- documented examples ------------------------------------------------------------


def readme_examples() -> dict[str, dict[str, Any]]:
    readme = (N8N / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example: (\S+) -->\n```json\n(.*?)\n```", readme, re.DOTALL)
    return {label: json.loads(body) for label, body in blocks}


def test_readme_has_an_example_per_export_and_an_error_report() -> None:
    assert sorted(readme_examples()) == sorted([*STANDARD, "error-report"])


@pytest.mark.parametrize(("label", "example"), sorted(readme_examples().items()))
def test_readme_examples_follow_the_data_contract(label: str, example: dict[str, Any]) -> None:
    assert schema_errors(example) == []
    if label == "error-report":
        assert parse(ErrorReport, example).message.startswith("Fetch Fear & Greed: 500")
        return
    result = parse_result(example)
    src = source(label)
    assert result.values == pytest.approx(src["expected"]["values"])
    assert result.timestamp == datetime.fromisoformat(src["expected"]["timestamp"])
    assert example["metadata"]["workflowId"] == load(label)["id"]


# -- the Code nodes, run under Node.js ----------------------------------------------

HARNESS = r"""
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const item = (json) => ({ json });
const $ = (name) => {
  if (name !== 'Webhook trigger') throw new Error(`no node named ${name}`);
  return { first: () => item({ headers: {}, params: {}, query: {}, body: input.trigger }) };
};
const $input = { first: () => item(input.json), all: () => [item(input.json)] };
const $workflow = { id: input.workflowId, name: input.workflowName, active: true };
const $execution = { id: '4711', mode: 'webhook' };
const $prevNode = { name: input.prevNode };
let out;
try {
  const run = new Function('$', '$input', '$workflow', '$execution', '$prevNode', input.code);
  out = { items: run($, $input, $workflow, $execution, $prevNode) };
} catch (error) {
  out = { error: error.message };
}
process.stdout.write(JSON.stringify(out));
"""


def run_code(name: str, node_name: str, trigger: dict[str, Any], json_in: Any, *,
             prev_node: str = "") -> dict[str, Any]:
    """Run a Code node's JavaScript as n8n does (one run for all items) and return
    `{items: [...]}` or `{error: message}`."""
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("Node.js is not installed: the Code nodes' JavaScript cannot run")
    export = load(name)
    payload = {"code": node(export, node_name)["parameters"]["jsCode"], "trigger": trigger,
               "json": json_in, "prevNode": prev_node, "workflowId": export["id"],
               "workflowName": export["name"]}
    done = subprocess.run([node_bin, "-e", HARNESS], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=30, check=True)
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


def format_result(name: str, trigger: dict[str, Any], answer: Any) -> dict[str, Any]:
    outcome = run_code(name, "Format result", trigger, answer)
    assert "error" not in outcome, outcome["error"]
    [item] = outcome["items"]
    result: dict[str, Any] = item["json"]
    return result


def recorded(src: dict[str, Any]) -> Any:
    return json.loads((RECORDED / src["recorded"]).read_text(encoding="utf-8"))


@pytest.mark.parametrize("src", SOURCES, ids=[s["export"] for s in SOURCES])
def test_format_result_shapes_the_recorded_answer(src: dict[str, Any]) -> None:
    trigger = trigger_for(src)
    payload = format_result(src["export"], trigger, recorded(src))

    assert schema_errors(payload) == []
    result = parse_result(payload)
    assert result.trace_id == TRACE
    assert result.kpi_type == src["kpi"]["kpiType"]
    assert result.values == src["expected"]["values"]
    assert result.timestamp == datetime.fromisoformat(src["expected"]["timestamp"])
    assert payload["timestamp"].endswith("Z")
    assert payload["metadata"]["workflowId"] == load(src["export"])["id"]
    assert payload["metadata"]["executionId"] == "4711"
    if "kpiIds" in src["kpi"]:
        assert isinstance(result, MultiKpiResult)
        assert result.kpi_ids == src["kpi"]["kpiIds"]
    else:
        assert isinstance(result, KpiResult)
        assert result.kpi_id == src["kpi"]["id"]


@pytest.mark.parametrize(
    ("name", "answer", "message"),
    [
        ("coingecko-price.json", {}, "CoinGecko has no quote for bitcoin"),
        ("coingecko-price.json", {"bitcoin": {"usd": None, "last_updated_at": 1764373880}},
         "bitcoin.usd is not a number: null"),
        ("coingecko-price.json", {"bitcoin": {"usd": 1.5}},
         "bitcoin.last_updated_at is not a number"),
        ("cmc-multi.json", {"status": {"error_code": 1002, "error_message": "API key missing."}},
         "CoinMarketCap error 1002: API key missing."),
        ("cmc-multi.json", {"data": {"btc_dominance": 58.7, "last_updated": "2025-11-28T23:57Z"}},
         "data.eth_dominance is not a number"),
        ("cbbi-multi.json", {"Price": {"1764288000": 91283.37}}, "CBBI has no RHODL series"),
        ("fear-greed.json", {"data": [], "metadata": {"error": "Invalid limit"}},
         "Fear & Greed error: Invalid limit"),
        ("fear-greed.json", {"data": [{"value": "n/a", "timestamp": "1764288000"}]},
         'data[0].value is not a number: "n/a"'),
        ("custom-kpi-template.json", {"value": 1.2, "timestamp": "yesterday"},
         'timestamp is not a date: "yesterday"'),
    ],
)
def test_format_result_refuses_answers_without_a_value_or_time(
    name: str, answer: Any, message: str
) -> None:
    outcome = run_code(name, "Format result", trigger_for(source(name)), answer)
    assert message in outcome.get("error", ""), outcome


@pytest.mark.parametrize("name", STANDARD)
def test_format_result_needs_the_triggers_trace_id(name: str) -> None:
    src = source(name)
    trigger = {k: v for k, v in trigger_for(src).items() if k != "traceId"}
    outcome = run_code(name, "Format result", trigger, recorded(src))
    assert outcome.get("error", "").startswith("the trigger has no traceId"), outcome


def test_multi_kpi_workflows_report_the_kpis_the_trigger_asks_for() -> None:
    src = source("cbbi-multi.json")
    subset = {**trigger_for(src), "kpiIds": ["cbbi-confidence", "cbbi-mvrv"]}
    payload = format_result("cbbi-multi.json", subset, recorded(src))
    assert payload["kpiIds"] == ["cbbi-confidence", "cbbi-mvrv"]
    assert payload["data"] == {"cbbi-confidence": 0.4463, "cbbi-mvrv": 0.4322}

    # the price alone has a value for the latest day: that day is reported
    price_only = {**trigger_for(src), "kpiIds": ["cbbi-btc-price-usd"]}
    payload = format_result("cbbi-multi.json", price_only, recorded(src))
    assert payload["timestamp"] == "2025-11-28T00:00:00.000Z"
    assert payload["data"] == {"cbbi-btc-price-usd": 91283.3711}

    unknown = {**trigger_for(src), "kpiIds": ["cbbi-mvrv", "cbbi-puell"]}
    outcome = run_code("cbbi-multi.json", "Format result", unknown, recorded(src))
    assert 'this source does not yield ["cbbi-puell"]' in outcome.get("error", ""), outcome


def test_coingecko_reads_the_coin_and_currency_from_the_trigger_metadata() -> None:
    trigger = {**trigger_for(source("coingecko-price.json")), "kpiId": "eth-price-eur",
               "metadata": {"coinId": "ethereum", "vsCurrency": "EUR"}}
    answer = {"ethereum": {"eur": 2761.04, "last_updated_at": 1764373880}}
    payload = format_result("coingecko-price.json", trigger, answer)
    assert payload["kpiId"] == "eth-price-eur"
    assert payload["data"] == {"value": 2761.04, "coin": "ethereum", "currency": "eur"}
    fetch = node(load("coingecko-price.json"), "Fetch CoinGecko price")
    query = {q["name"]: q["value"] for q in fetch["parameters"]["queryParameters"]["parameters"]}
    assert "coinId" in query["ids"] and "vsCurrency" in query["vs_currencies"]
    assert query["include_last_updated_at"] == "true"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [(1764331200, "2025-11-28T12:00:00.000Z"), (1764331200000, "2025-11-28T12:00:00.000Z"),
     ("2025-11-28T13:00:00+01:00", "2025-11-28T12:00:00.000Z")],
)
def test_custom_template_takes_unix_or_zoned_timestamps(stamp: Any, expected: str) -> None:
    src = source("custom-kpi-template.json")
    payload = format_result(src["export"], trigger_for(src), {"value": 3, "timestamp": stamp})
    assert payload["timestamp"] == expected
    assert payload["data"] == 3


AXIOS_500 = {"message": '500 - {"error":"boom"}', "name": "AxiosError", "code": "ERR_BAD_RESPONSE",
             "status": 500, "stack": "AxiosError: ...", "config": {"url": "http://x"}}


@pytest.mark.parametrize("name", STANDARD)
@pytest.mark.parametrize("raw_error", [AXIOS_500, "CoinGecko has no quote for bitcoin [line 35]"],
                         ids=["http-error", "code-error"])
def test_error_report_names_the_kpis_the_step_and_the_execution(name: str, raw_error: Any
                                                                ) -> None:
    src = source(name)
    trigger = trigger_for(src)
    outcome = run_code(name, "Build error report", trigger, {"error": raw_error},
                       prev_node="Format result")
    [item] = outcome["items"]
    report_payload = item["json"]

    assert schema_errors(report_payload) == []
    report = parse(ErrorReport, report_payload)
    assert report.trace_id == TRACE
    assert report.targets == src["kpi"].get("kpiIds", [src["kpi"]["id"]])
    assert report.workflow_id == load(name)["id"]
    assert report.execution_id == "4711"
    assert report.component == f"n8n: {load(name)['name']}"
    assert report.error["node"] == "Format result"
    assert report.message.startswith("Format result: ")
    if isinstance(raw_error, dict):
        assert report.message == 'Format result: 500 - {"error":"boom"}'
        assert report.error["status"] == 500 and report.error["code"] == "ERR_BAD_RESPONSE"
        assert "config" not in report.error and "stack" not in report.error
