"""What `chalice package` leaves out of the stack, added to its template.

Chalice writes the functions, the REST API, the schedules and the SQS event sources,
with one role for all. `complete_template` turns that into the whole deployment:

- the DynamoDB table (pk/sk, TTL on `expiresAt`, point-in-time recovery, kept on delete),
  the S3 bucket (private, encrypted, kept on delete);
- each stage queue with its dead-letter queue, visible again only after six times its
  consumer's timeout (AWS's advice for Lambda consumers), and every event source made
  to read the consumers' partial batch answers (`ReportBatchItemFailures`);
- the heavy libraries as layers, attached only to the functions that use them
  (`FUNCTIONS`): rendering (matplotlib, numpy, reportlab) and sending (aiohttp, Apprise,
  and cryptography, which opens the delivery endpoints' sealed secrets);
- a role per function allowing only what that function does, on this stack's
  resources: its own queue to receive from, the table, the bucket's objects, the
  secret with the keys;
- the names every function reads (`METRIC_STREAM_TABLE_NAME`, ...) and the outputs an
  operator needs (table, bucket, queue prefix, secret, API URL).

Pure functions on the template's dict: tested without AWS, checked by cfn-lint.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metric_stream.ports import STAGE_QUEUES

Template = dict[str, Any]

RUNTIME = "python3.11"
DLQ_RETENTION_S = 14 * 24 * 3600
VISIBILITY_FACTOR = 6
MAX_VISIBILITY_S = 43_200
EXPIRES = "expiresAt"  # the TTL attribute of the DynamoDB adapter


@dataclass(frozen=True)
class Layer:
    logical_id: str
    name: str
    requirements: tuple[str, ...]
    """Distributions installed into the layer (with their dependencies)."""
    description: str


LAYERS: dict[str, Layer] = {
    "render": Layer("RenderLayer", "render", ("matplotlib", "numpy", "reportlab", "rl_accel"),
                    "charts and the PDF report: matplotlib, numpy, reportlab"),
    # cryptography opens the endpoints' sealed URLs: only the functions that send (or
    # show endpoints: the API) read endpoints, and they all have this layer
    "delivery": Layer("DeliveryLayer", "delivery", ("aiohttp", "apprise", "cryptography", "cffi"),
                      "sending reports: aiohttp, Apprise, cryptography"),
}

# What the DynamoDB adapter calls: BatchGetItem, BatchWriteItem, Query, DeleteItem and
# TransactWriteItems, which IAM checks as the Put/Update/Delete/ConditionCheck inside it.
TABLE_RW = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem")
BLOBS_READ = ("s3:GetObject",)
BLOBS_RW = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


@dataclass(frozen=True)
class Function:
    """What one Lambda function of the app does, hence what it may do."""

    logical_id: str
    layers: tuple[str, ...] = ()
    consumes: str | None = None
    """The stage queue it receives from."""
    blobs: tuple[str, ...] = ()
    scan: bool = False
    """Reads the whole table (retention)."""
    sends_mail: bool = False
    """Email through SES and SMS through SNS (delivery, test sends, operator alerts)."""


FUNCTIONS: dict[str, Function] = {f.logical_id: f for f in (
    # every route: charts render, documents are read, test sends and re-deliveries send
    Function("APIHandler", ("render", "delivery"), blobs=BLOBS_RW, sends_mail=True),
    # schedules, recovery, operator alerts (which send)
    Function("Tick", ("delivery",), sends_mail=True),
    Function("Retention", blobs=BLOBS_RW, scan=True),
    Function("FanoutConsumer", consumes="fanout"),
    Function("AnalysisConsumer", ("render",), consumes="analysis", blobs=BLOBS_RW),
    Function("PackagingConsumer", ("render",), consumes="packaging", blobs=BLOBS_RW),
    Function("DeliveryConsumer", ("delivery",), consumes="delivery", blobs=BLOBS_READ,
             sends_mail=True),
)}


def logical_id(chalice_name: str) -> str:
    """The template's name of a Chalice function (`analysis_consumer` -> AnalysisConsumer)."""
    if chalice_name == "api_handler":
        return "APIHandler"
    return "".join(part.capitalize() for part in chalice_name.split("_"))


def queue_ids(stage_queue: str) -> tuple[str, str]:
    """The logical ids of a stage queue and its dead-letter queue."""
    base = stage_queue.capitalize()
    return f"{base}Queue", f"{base}DeadLetterQueue"


@dataclass(frozen=True)
class StackOptions:
    stage: str
    queue_prefix: str
    max_receives: int = 5
    secrets_id: str = ""
    layer_zips: Mapping[str, str] | None = None
    """Layer name -> the zip's path relative to the template."""


def complete_template(chalice_template: Template, options: StackOptions) -> Template:
    """The deployable template: Chalice's, with the rest of the stack added."""
    template = copy.deepcopy(chalice_template)
    resources: dict[str, Any] = template["Resources"]
    functions = {name: r for name, r in resources.items()
                 if r.get("Type") == "AWS::Serverless::Function"}
    unknown = sorted(set(functions) - set(FUNCTIONS))
    if unknown:
        raise ValueError(f"functions/app.py has functions this stack does not describe: "
                         f"{', '.join(unknown)} (add them to deploy/stack.py FUNCTIONS)")
    template.setdefault("Description",
                        f"metric-stream ({options.stage}): the Daily Index Tracker on Lambda")
    resources.pop("DefaultRole", None)
    resources.update(_data_resources(options))
    timeouts = {f.consumes: int(functions[name]["Properties"].get("Timeout", 60))
                for name, f in FUNCTIONS.items() if f.consumes and name in functions}
    resources.update(_queues(options, timeouts))
    layers = options.layer_zips or {}
    for name, path in layers.items():
        layer = LAYERS[name]
        resources[layer.logical_id] = {
            "Type": "AWS::Serverless::LayerVersion",
            "Properties": {
                "LayerName": {"Fn::Sub": f"${{AWS::StackName}}-{layer.name}"},
                "Description": layer.description,
                "ContentUri": path,
                "CompatibleRuntimes": [RUNTIME],
                "CompatibleArchitectures": ["x86_64"],
                "RetentionPolicy": "Delete",
            },
        }
    for name, resource in functions.items():
        spec = FUNCTIONS[name]
        properties = resource["Properties"]
        role_id = f"{name}Role"
        resources[role_id] = _role(spec, options)
        properties["Role"] = {"Fn::GetAtt": [role_id, "Arn"]}
        wanted = [LAYERS[layer].logical_id for layer in spec.layers if layer in layers]
        if wanted:
            properties["Layers"] = [{"Ref": logical} for logical in wanted]
        variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
        variables.update({
            "METRIC_STREAM_BACKEND": "aws",
            "METRIC_STREAM_TABLE_NAME": {"Ref": "Table"},
            "METRIC_STREAM_BUCKET_NAME": {"Ref": "Bucket"},
            "METRIC_STREAM_AWS_REGION": {"Ref": "AWS::Region"},
            "METRIC_STREAM_QUEUE_PREFIX": options.queue_prefix,
            "METRIC_STREAM_QUEUE_MAX_RECEIVES": str(options.max_receives),
        })
        if options.secrets_id:
            variables["METRIC_STREAM_SECRETS_ID"] = options.secrets_id
        for event in properties.get("Events", {}).values():
            if event.get("Type") == "SQS":
                queue = spec.consumes
                if queue is None:
                    raise ValueError(f"{name} consumes a queue the stack does not know")
                event["Properties"]["Queue"] = {"Fn::GetAtt": [queue_ids(queue)[0], "Arn"]}
                event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    template.setdefault("Outputs", {}).update({
        "TableName": {"Value": {"Ref": "Table"}},
        "BucketName": {"Value": {"Ref": "Bucket"}},
        "QueuePrefix": {"Value": options.queue_prefix},
        "SecretsId": {"Value": options.secrets_id or "(none)"},
    })
    return template


def _data_resources(options: StackOptions) -> dict[str, Any]:
    return {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "sk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                "TimeToLiveSpecification": {"AttributeName": EXPIRES, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True, "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            },
        },
    }


def visibility_timeout(consumer_timeout_s: int) -> int:
    return min(MAX_VISIBILITY_S, VISIBILITY_FACTOR * consumer_timeout_s)


def _queues(options: StackOptions, timeouts: Mapping[str, int]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for stage_queue in STAGE_QUEUES:
        queue_id, dead_id = queue_ids(stage_queue)
        name = f"{options.queue_prefix}{stage_queue}"
        resources[dead_id] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": f"{name}-dlq",
                           "MessageRetentionPeriod": DLQ_RETENTION_S,
                           "SqsManagedSseEnabled": True},
        }
        resources[queue_id] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "VisibilityTimeout": visibility_timeout(timeouts.get(stage_queue, 300)),
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]},
                                  "maxReceiveCount": options.max_receives},
                "SqsManagedSseEnabled": True,
            },
        }
    return resources


def _arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:"
                       f"${{AWS::AccountId}}:{resource}"}


def _role(spec: Function, options: StackOptions) -> dict[str, Any]:
    """The function's own role: only the actions it performs, on this stack's resources."""
    all_queues = [{"Fn::GetAtt": [queue_id, "Arn"]}
                  for stage_queue in STAGE_QUEUES for queue_id in queue_ids(stage_queue)]
    statements: list[dict[str, Any]] = [
        {"Sid": "OwnLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": _arn("logs", "log-group:/aws/lambda/${AWS::StackName}-*")},
        {"Sid": "Table", "Effect": "Allow",
         "Action": [*TABLE_RW, *(("dynamodb:Scan",) if spec.scan else ())],
         "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
        # every function runs cycle steps that hand a job to the next stage, and reads
        # queue depths (metrics, dead-letter alerts)
        {"Sid": "StageQueues", "Effect": "Allow",
         "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
         "Resource": all_queues},
    ]
    if spec.consumes:
        statements.append({
            "Sid": "OwnQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                       "sqs:ChangeMessageVisibility"],
            "Resource": {"Fn::GetAtt": [queue_ids(spec.consumes)[0], "Arn"]}})
    if spec.blobs:
        statements.append({
            "Sid": "BlobObjects", "Effect": "Allow", "Action": list(spec.blobs),
            "Resource": {"Fn::Sub": "${Bucket.Arn}/*"}})
        # without ListBucket, S3 answers a missing key with 403 instead of 404, and the
        # adapter could not tell "no such report" from "not allowed"
        statements.append({
            "Sid": "BlobList", "Effect": "Allow", "Action": ["s3:ListBucket"],
            "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}})
    if spec.sends_mail:
        statements.append({
            "Sid": "Email", "Effect": "Allow", "Action": ["ses:SendRawEmail"],
            "Resource": _arn("ses", "identity/*")})
        # SMS goes to phone numbers, which have no ARN: SNS allows no narrower resource
        statements.append({
            "Sid": "Sms", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"})
    if options.secrets_id:
        statements.append({
            "Sid": "Keys", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
            "Resource": _arn("secretsmanager", f"secret:{options.secrets_id}-*")})
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": f"{spec.logical_id}Policy", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": statements}}],
        },
    }
