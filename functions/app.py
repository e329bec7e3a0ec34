"""metric-stream on AWS Lambda, through Chalice: the core's routes behind API Gateway,
the schedule tick, and one consumer per stage queue.

Thin on purpose: every route of the core's table is handed to the same `Api.handle`
that `metric-stream serve` uses; the tick is serve's tick; a consumer runs each SQS
record through `cycle.run_stage`. Services are built on the first call (no I/O at
import), from `METRIC_STREAM_*` environment variables, once per container. Every
function of the app imports this module, so what only the tick or a consumer needs
(the fan-out's HTTP client and collectors, the stage work) is imported in them.
"""

from __future__ import annotations

import json
import logging
import os

# pydantic looks up plugins through importlib.metadata on first use (~25 ms of every
# cold start); metric-stream uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, CloudWatchEvent, Cron, Rate, SQSEvent
from chalice.app import Response as ChaliceResponse

from metric_stream.api.app import ROUTES, build_api
from metric_stream.api.http import Api, Request, Route
from metric_stream.errors import InvalidInput
from metric_stream.logs import configure_logging, job_context, request_context, trace_id_of

if TYPE_CHECKING:
    import httpx

    from metric_stream.bootstrap import Services
    from metric_stream.services.cycle import StageWorkers, Triggers

app = Chalice(app_name="metric-stream", configure_logs=False)  # its lines go through ours
# Bytes API Gateway must pass as binary (base64 in the Lambda response): PNG is in
# Chalice's defaults, the report's PDF is not. Clients ask for them with a matching
# Accept header (or */*), as API Gateway requires.
app.api.binary_types = [*app.api.binary_types, "application/pdf"]
TEXT_TYPES = ("application/json", "text/", "image/svg+xml")  # answered as UTF-8 text
log = logging.getLogger("metric_stream.functions")


def configure_lambda_logging() -> None:
    """On Lambda: JSON lines unless METRIC_STREAM_LOG_FORMAT says text, at
    METRIC_STREAM_LOG_LEVEL (default info), in place of the runtime's own handler."""
    configure_logging(default_format="json", default_level="info", replace_handlers=True)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    configure_lambda_logging()


@app.middleware("all")
def invocation_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every line an invocation logs carries its Lambda request id (on an HTTP request's
    lines, the API's own request id, answered in `x-request-id`, takes its place)."""
    context = getattr(event, "context", None) or getattr(event, "lambda_context", None)
    with request_context(getattr(context, "aws_request_id", None)):
        return get_response(event)

# Chalice needs the queue names when it reads this module; the services read the same
# variable, so the consumers and the senders agree.
QUEUE_PREFIX = os.environ.get("METRIC_STREAM_QUEUE_PREFIX", "metric-stream-")
BatchResponse = dict[str, list[dict[str, str]]]

_services: Services | None = None
_api: Api | None = None
_workers: StageWorkers | None = None
_http: httpx.Client | None = None


def current_services() -> Services:
    global _services
    if _services is None:
        from metric_stream.bootstrap import build_services

        _services = build_services()
    return _services


def current_api() -> Api:
    global _api
    if _api is None:
        _api = build_api(current_services())
    return _api


def stage_workers() -> StageWorkers:
    """What each stage does, built on the first stage message (stage work may load
    heavy libraries; the routes and the tick never need them)."""
    global _workers
    if _workers is None:
        from metric_stream.services.stages import default_workers

        _workers = default_workers()
    return _workers


def use_api(api: Api | None) -> None:
    """Bind the routes to another API (tests), or forget it (None)."""
    global _api
    _api = api


def use_services(services: Services | None) -> None:
    """Bind the whole app (routes, tick, consumers) to other services (tests), or
    forget them (None)."""
    global _services, _api
    _services, _api = services, None


# ---------------------------------------------------------------- HTTP routes
def _view(route: Route) -> Callable[..., ChaliceResponse]:
    def view(**params: str) -> ChaliceResponse:
        incoming = app.current_request
        assert incoming is not None  # Chalice sets it for every HTTP event
        raw = incoming.raw_body or b""
        request = Request(
            method=incoming.method,
            path=route.path.format(**params),
            headers={k.lower(): v for k, v in incoming.headers.items()},
            body=raw.encode() if isinstance(raw, str) else raw,
            query=dict(incoming.query_params or {}),
        )
        response = current_api().handle(request)
        body: Any = response.body
        if response.headers.get("content-type", "").startswith(TEXT_TYPES):
            body = response.body.decode()
        headers: dict[str, str | list[str]] = dict(response.headers)
        return ChaliceResponse(body=body, status_code=response.status, headers=headers)

    view.__name__ = route.operation_id
    return view


for _route in ROUTES:
    app.route(_route.path, methods=[_route.method],
              content_types=[_route.request_content, "text/plain"])(_view(_route))


# ---------------------------------------------------------------- schedule tick
@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick(event: CloudWatchEvent) -> dict[str, object]:
    """Fire the schedules that came due, settle due jobs, re-send lost stage messages."""
    from metric_stream.server.loops import cycle_tick

    return cycle_tick(current_services()).to_wire()


@app.schedule(Cron(30, 3, "*", "*", "?", "*"))
def retention(event: CloudWatchEvent) -> dict[str, object]:
    """Daily at 03:30 UTC: archive, then prune, the points older than the retention
    window (`metric-stream retention` on one machine)."""
    from metric_stream.services.retention import apply_retention

    report = apply_retention(current_services())
    return {"days": report.days, "cutoff": report.cutoff.isoformat(),
            "archived": report.archived, "pruned": report.pruned, "files": report.files}


def fan_out_triggers() -> Triggers:
    """How the fan-out consumer reaches the KPIs: one HTTP client per container."""
    global _http
    import httpx

    from metric_stream.services.cycle import Triggers

    if _http is None:
        _http = httpx.Client(timeout=10)
    return Triggers(_http)


# ---------------------------------------------------------------- stage consumers
def consume_batch(stage: str, event: SQSEvent) -> BatchResponse:
    """Run each record through its stage; answer an SQS partial batch response naming
    the records to retry, so one bad message does not re-run its neighbours. A
    malformed message is retried until the queue moves it to its dead-letter queue."""
    failed = [{"itemIdentifier": message_id} for message_id, body in
              ((str(r.to_dict().get("messageId", "")), r.body) for r in event)
              if not _consume_record(stage, message_id, body)]
    return {"batchItemFailures": failed}


def _consume_record(stage: str, message_id: str, raw: str) -> bool:
    """Whether the record is done with (False: SQS is to deliver it again)."""
    try:
        trace_id = trace_id_of(json.loads(raw))
    except ValueError:
        trace_id = None
    with job_context(trace_id):
        return _handle_record(stage, message_id, raw)


def _handle_record(stage: str, message_id: str, raw: str) -> bool:
    from metric_stream.services.cycle import FANOUT, run_fan_out, run_stage
    from metric_stream.services.runner import log_outcome

    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise InvalidInput("the message body is not a JSON object", field="body")
        if stage == FANOUT:
            outcome = run_fan_out(current_services(), body, fan_out_triggers())
        else:
            outcome = run_stage(current_services(), stage, body, stage_workers())
    except (json.JSONDecodeError, InvalidInput) as exc:  # not JSON, or no valid traceId
        log.warning("malformed %s message %s, left for the dead-letter queue: %s", stage,
                    message_id, getattr(exc, "message", None) or exc)
        return False
    except Exception:
        log.exception("stage %s failed for message %s; it will be retried", stage, message_id)
        return False
    log_outcome(outcome)
    if outcome.result == "busy":
        log.info("job %s: another worker holds the %s stage; retrying later",
                 outcome.trace_id, stage)
        return False
    return True


@app.on_sqs_message(queue=f"{QUEUE_PREFIX}fanout", batch_size=10)
def fanout_consumer(event: SQSEvent) -> BatchResponse:
    """Trigger the KPIs of the jobs the tick created (the HTTP work of the cycle)."""
    return consume_batch("fanout", event)


@app.on_sqs_message(queue=f"{QUEUE_PREFIX}analysis", batch_size=10)
def analysis_consumer(event: SQSEvent) -> BatchResponse:
    return consume_batch("analysis", event)


@app.on_sqs_message(queue=f"{QUEUE_PREFIX}packaging", batch_size=10)
def packaging_consumer(event: SQSEvent) -> BatchResponse:
    return consume_batch("packaging", event)


@app.on_sqs_message(queue=f"{QUEUE_PREFIX}delivery", batch_size=10)
def delivery_consumer(event: SQSEvent) -> BatchResponse:
    return consume_batch("delivery", event)
