"""The stack Chalice's template is completed into (`deploy/stack.py`), checked on a
template shaped as `chalice package` writes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metric_stream.deploy.stack import (
    FUNCTIONS,
    LAYERS,
    StackOptions,
    complete_template,
    logical_id,
    visibility_timeout,
)
from metric_stream.ports import STAGE_QUEUES

OPTIONS = StackOptions(stage="prod", queue_prefix="ms-prod-", max_receives=4,
                       secrets_id="metric-stream/prod",
                       layer_zips={"render": "./layer-render.zip",
                                   "delivery": "./layer-delivery.zip"})
TIMEOUTS = {"APIHandler": 29, "Tick": 55, "Retention": 900, "FanoutConsumer": 120,
            "AnalysisConsumer": 600, "PackagingConsumer": 300, "DeliveryConsumer": 900}


def chalice_template() -> dict[str, Any]:
    resources: dict[str, Any] = {"DefaultRole": {"Type": "AWS::IAM::Role", "Properties": {}}}
    for name, timeout in TIMEOUTS.items():
        properties: dict[str, Any] = {
            "Runtime": "python3.11", "Handler": f"app.{name}", "CodeUri": "./deployment.zip",
            "Timeout": timeout, "MemorySize": 512,
            "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
            "Environment": {"Variables": {"PYDANTIC_DISABLE_PLUGINS": "__all__"}}}
        queue = FUNCTIONS[name].consumes
        if queue:
            properties["Events"] = {f"{name}SqsEventSource": {"Type": "SQS", "Properties": {
                "Queue": {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:"
                                     f"${{AWS::AccountId}}:ms-prod-{queue}"},
                "BatchSize": 10}}}
        resources[name] = {"Type": "AWS::Serverless::Function", "Properties": properties}
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::Serverless-2016-10-31", "Resources": resources,
            "Outputs": {"EndpointURL": {"Value": "https://example/api/"}}}


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return complete_template(chalice_template(), OPTIONS)


def resources_of(stack: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in stack["Resources"].items() if v["Type"] == kind}


def test_the_table_has_the_adapters_keys_and_ttl_and_survives_the_stack(
        stack: dict[str, Any]) -> None:
    table = stack["Resources"]["Table"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt",
                                                     "Enabled": True}
    bucket = stack["Resources"]["Bucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_each_stage_queue_has_a_dead_letter_queue_and_outlives_its_consumer(
        stack: dict[str, Any]) -> None:
    queues = resources_of(stack, "AWS::SQS::Queue")
    assert len(queues) == 2 * len(STAGE_QUEUES)
    consumers = {f.consumes: name for name, f in FUNCTIONS.items() if f.consumes}
    for queue in STAGE_QUEUES:
        properties = queues[f"{queue.capitalize()}Queue"]["Properties"]
        assert properties["QueueName"] == f"ms-prod-{queue}"
        dead = queues[f"{queue.capitalize()}DeadLetterQueue"]["Properties"]
        assert dead["QueueName"] == f"ms-prod-{queue}-dlq"
        assert properties["RedrivePolicy"]["maxReceiveCount"] == 4
        assert properties["RedrivePolicy"]["deadLetterTargetArn"] == {
            "Fn::GetAtt": [f"{queue.capitalize()}DeadLetterQueue", "Arn"]}
        consumer_timeout = TIMEOUTS[consumers[queue]]
        assert properties["VisibilityTimeout"] > consumer_timeout
        assert properties["VisibilityTimeout"] == min(43_200, 6 * consumer_timeout)
    assert visibility_timeout(10_000) == 43_200


def test_every_consumer_reports_partial_batch_failures_from_its_own_queue(
        stack: dict[str, Any]) -> None:
    sources = 0
    for name, function in resources_of(stack, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            sources += 1
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            queue = FUNCTIONS[name].consumes
            assert queue is not None
            assert event["Properties"]["Queue"] == {
                "Fn::GetAtt": [f"{queue.capitalize()}Queue", "Arn"]}
    assert sources == len(STAGE_QUEUES)


def test_heavy_layers_reach_only_the_functions_that_use_them(stack: dict[str, Any]) -> None:
    layers = {name: [ref["Ref"] for ref in f["Properties"].get("Layers", [])]
              for name, f in resources_of(stack, "AWS::Serverless::Function").items()}
    assert layers == {
        "APIHandler": ["RenderLayer", "DeliveryLayer"], "Tick": ["DeliveryLayer"],
        "Retention": [], "FanoutConsumer": [], "AnalysisConsumer": ["RenderLayer"],
        "PackagingConsumer": ["RenderLayer"], "DeliveryConsumer": ["DeliveryLayer"]}
    render = stack["Resources"]["RenderLayer"]["Properties"]
    assert render["ContentUri"] == "./layer-render.zip"
    assert render["CompatibleRuntimes"] == ["python3.11"]


def _statements(stack: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role_id = stack["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = stack["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    statements: list[dict[str, Any]] = role["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"]
    return statements


def test_each_function_has_its_own_least_privilege_role(stack: dict[str, Any]) -> None:
    assert "DefaultRole" not in stack["Resources"]
    roles = {stack["Resources"][name]["Properties"]["Role"]["Fn::GetAtt"][0]
             for name in TIMEOUTS}
    assert len(roles) == len(TIMEOUTS)
    for name in TIMEOUTS:
        for statement in _statements(stack, name):
            actions = statement["Action"]
            assert not any(a.endswith(":*") or a == "*" for a in actions), (name, actions)
            if statement["Resource"] == "*":  # SMS: phone numbers have no ARN
                assert actions == ["sns:Publish"], name
    fanout = {s["Sid"]: s for s in _statements(stack, "FanoutConsumer")}
    assert "BlobObjects" not in fanout and "Sms" not in fanout and "Email" not in fanout
    assert fanout["OwnQueue"]["Resource"] == {"Fn::GetAtt": ["FanoutQueue", "Arn"]}
    assert "dynamodb:Scan" not in fanout["Table"]["Action"]
    retention = {s["Sid"]: s for s in _statements(stack, "Retention")}
    assert "dynamodb:Scan" in retention["Table"]["Action"]
    assert "OwnQueue" not in retention
    delivery = {s["Sid"]: s for s in _statements(stack, "DeliveryConsumer")}
    assert delivery["BlobObjects"]["Action"] == ["s3:GetObject"]
    assert delivery["Email"]["Action"] == ["ses:SendRawEmail"]
    keys = delivery["Keys"]
    assert keys["Action"] == ["secretsmanager:GetSecretValue"]
    assert "secret:metric-stream/prod-*" in json.dumps(keys["Resource"])


def test_every_function_is_told_where_its_data_lives(stack: dict[str, Any]) -> None:
    for name in TIMEOUTS:
        variables = stack["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["METRIC_STREAM_BACKEND"] == "aws"
        assert variables["METRIC_STREAM_TABLE_NAME"] == {"Ref": "Table"}
        assert variables["METRIC_STREAM_BUCKET_NAME"] == {"Ref": "Bucket"}
        assert variables["METRIC_STREAM_QUEUE_PREFIX"] == "ms-prod-"
        assert variables["METRIC_STREAM_SECRETS_ID"] == "metric-stream/prod"
        assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"  # Chalice's kept
    assert {"TableName", "BucketName", "QueuePrefix", "SecretsId", "EndpointURL"} <= set(
        stack["Outputs"])


def test_a_function_the_stack_does_not_describe_is_refused() -> None:
    template = chalice_template()
    template["Resources"]["Surprise"] = {"Type": "AWS::Serverless::Function",
                                         "Properties": {"Handler": "app.surprise"}}
    with pytest.raises(ValueError, match="Surprise"):
        complete_template(template, OPTIONS)


def test_chalice_names_map_to_the_templates() -> None:
    assert logical_id("api_handler") == "APIHandler"
    assert logical_id("analysis_consumer") == "AnalysisConsumer"
    assert logical_id("tick") == "Tick"


def test_the_functions_that_read_delivery_endpoints_have_cryptography() -> None:
    """Endpoints' URLs are sealed: the API, the tick (operator alerts) and the delivery
    stage open them, with the delivery layer's cryptography; the others never do."""
    assert "cryptography" in LAYERS["delivery"].requirements
    with_it = {name for name, f in FUNCTIONS.items() if "delivery" in f.layers}
    assert with_it == {"APIHandler", "Tick", "DeliveryConsumer"}
