"""Operator alerts: short messages to the endpoints marked `operator`, never reports.

Causes: a job that ended partial or failed (which KPIs, why), an LLM chain that failed,
an endpoint disabled by delivery, a queue's dead letters growing, storage past the
configured size. Each alert is sent once per cause (per job, or per level for the
operational ones): a record `alert:{scope}`/`{cause}` is written first, on the
condition that it does not exist, and only the writer sends. Alerts go through the
same channels, engine and retries as reports.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from metric_stream.bootstrap import Services
from metric_stream.errors import ConditionFailed, MetricStreamError
from metric_stream.models.base import iso
from metric_stream.models.job import Job, JobStatus
from metric_stream.ports import Absent, Key, Put

if TYPE_CHECKING:
    from metric_stream.services.delivery import DeliveryRun

log = logging.getLogger(__name__)

MAX_LINES = 10


def alert_key(scope: str, cause: str) -> Key:
    return Key(f"alert:{scope}", cause)


def alert_messages(title: str, lines: Sequence[str], *, scope: str, cause: str
                   ) -> dict[str, Any]:
    """The alert in every channel's shape (plain, short, escaped per channel)."""
    shown = list(lines[:MAX_LINES])
    if len(lines) > MAX_LINES:
        shown.append(f"... and {len(lines) - MAX_LINES} more")
    text = "\n".join([title, *(f"- {line}" for line in shown)])
    escaped = "\n".join(html.escape(line) for line in shown)
    return {
        "email": {"subject": f"[metric-stream] {title}"[:150], "text": text,
                  "html": f"<p><b>{html.escape(title)}</b></p><pre>{escaped}</pre>"},
        "telegram": (f"<b>{html.escape(title)}</b>\n{escaped}")[:4000],
        "discord": {"content": text[:1900], "allowed_mentions": {"parse": []}},
        "slack": {"text": text.replace("&", "&amp;").replace("<", "&lt;")
                  .replace(">", "&gt;")[:2900]},
        "sms": _sms(title),
        "webhook": {"type": "metric-stream.alert", "version": 1, "scope": scope,
                    "cause": cause, "title": title, "lines": list(lines)},
    }


def _sms(title: str) -> str:
    ascii_only = title.encode("ascii", "replace").decode().replace("?", "-")
    return f"metric-stream: {ascii_only}"[:160]


def operators(services: Services) -> list[Any]:
    return [e for e in services.registry.endpoints.all() if e.active and e.operator]


def raise_alert(services: Services, scope: str, cause: str, title: str,
                lines: Sequence[str], targets: Sequence[Any] | None = None) -> bool:
    """Send the alert to the operator channels (`targets`, if already read), once per
    (scope, cause). Answers whether this call sent it (False: already sent, or no
    operator channel)."""
    targets = operators(services) if targets is None else targets
    if not targets:
        return False
    try:
        services.records.write([Put(alert_key(scope, cause), {
            "title": title, "lines": list(lines)[:50], "at": iso(services.clock.now())},
            Absent())])
    except ConditionFailed:
        return False
    from metric_stream.delivery.base import Outgoing
    from metric_stream.delivery.channels import parse_channel
    from metric_stream.delivery.engine import Engine, Outcome, run_jobs
    from metric_stream.delivery.engine import Job as SendJob

    config = services.config.get()
    messages = alert_messages(title, lines, scope=scope, cause=cause)
    jobs = []
    for endpoint in targets:
        try:
            channel, error = parse_channel(endpoint.url), None
        except MetricStreamError as exc:
            channel, error = None, exc.message
        jobs.append(SendJob(Outgoing(trace_id=scope, endpoint_id=endpoint.id,
                                     messages=messages, kind=f"alert-{cause}",
                                     signing_secret=endpoint.signing_secret), channel, error))
    engine = Engine(services.settings, config.retry.delivery,
                    concurrency=config.delivery.concurrency, per_host=config.delivery.per_host,
                    timeout_s=config.delivery.timeout_s, jitter=config.delivery.jitter)
    failures: list[Outcome] = []
    run_jobs(engine, jobs, lambda o: None if o.result.ok else failures.append(o))
    for outcome in failures:
        log.warning("operator alert %s/%s to %s failed: %s", scope, cause,
                    outcome.endpoint_id, outcome.result.error)
    return True


def alert_after_delivery(services: Services, job: Job, run: DeliveryRun) -> None:
    """The job's alerts: partial/failed, failed LLM chains, endpoints disabled."""
    targets = operators(services) if run.operators is None else run.operators
    if not targets:
        return
    trace = job.trace_id
    if job.partial or job.status is JobStatus.FAILED:
        lines = [f"{k}: {_reason(job, k)}" for k in job.missing]
        raise_alert(services, trace, "partial",
                    f"job {trace} is partial: {len(job.missing)} of {len(job.kpi_ids)} "
                    "KPIs missing", lines, targets)
    consolidated = services.packages.consolidated(trace)
    llm = ((consolidated.analysis or {}) if consolidated else {}).get("llm") or {}
    failures = llm.get("failures") or []
    if failures:
        raise_alert(services, trace, "llm",
                    f"job {trace}: {len(failures)} LLM analysis chain(s) failed",
                    [f"{f.get('kpiId')}: {f.get('reason')}" for f in failures], targets)
    if run.disabled:
        lines = []
        for endpoint_id in run.disabled:
            endpoint = services.registry.endpoints.get(endpoint_id)
            reason = endpoint.health.disabled_reason if endpoint else None
            lines.append(f"{endpoint_id}: {reason}")
        raise_alert(services, trace, "disabled",
                    f"{len(run.disabled)} delivery endpoint(s) disabled", lines, targets)


def _reason(job: Job, kpi_id: str) -> str:
    state = job.state_of(kpi_id)
    message = (state.error or {}).get("message") if state.error else None
    return f"{state.status.value}" + (f" ({message})" if message else "")


def check_operations(services: Services) -> list[str]:
    """The tick's alerts: dead letters grown by `delivery.deadLetterAlert` since the last
    alert, storage past `delivery.storageAlertBytes`. Answers the causes alerted."""
    if not operators(services):
        return []
    config = services.config.get().delivery
    raised: list[str] = []
    for name in services.queue.names:
        dead = services.queue.depth(name).dead_letters
        if dead < config.dead_letter_alert:
            continue
        level = dead // config.dead_letter_alert * config.dead_letter_alert
        if raise_alert(services, "operations", f"dead-letters-{name}-{level}",
                       f"queue {name}: {dead} message(s) in its dead-letter queue",
                       [f"{dead} dead letter(s) on {name}; see GET /api/metrics"]):
            raised.append(f"dead-letters-{name}")
    limit = config.storage_alert_bytes
    if limit:
        from metric_stream.services.admin import storage_usage

        used = storage_usage(services.settings).get("totalBytes")
        if isinstance(used, int) and used >= limit:
            level = int(math.log2(used / limit))  # again each time usage doubles
            if raise_alert(services, "operations", f"storage-{level}",
                           f"storage at {used:,} bytes (limit {limit:,})",
                           ["retention (metric-stream retention) or a larger limit"]):
                raised.append("storage")
    return raised
