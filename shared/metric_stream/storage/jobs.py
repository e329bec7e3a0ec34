"""Jobs: a header record plus one record per KPI, under `job:{traceId}`.

Each KPI's state is its own record so that 200 callbacks landing at once update 200
different records with conditional writes: none waits on, or overwrites, another.
A `jobs` index partition lists jobs by creation time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from metric_stream.errors import ConditionFailed, NotFound
from metric_stream.models.base import iso
from metric_stream.models.job import Job, JobStatus, KpiState, KpiStatus, StageTiming
from metric_stream.ports import (
    Absent,
    AllOf,
    Exists,
    FieldIn,
    Item,
    Key,
    Op,
    Put,
    RecordStore,
    Update,
)
from metric_stream.storage import keys

_STAGE_START, _STAGE_END = "started_", "finished_"


def _header_body(job: Job) -> dict[str, Any]:
    body = job.model_dump(mode="json", by_alias=True, exclude_none=True,
                          exclude={"kpis", "stages"})
    for stage, timing in job.stages.items():
        body[_STAGE_START + stage] = iso(timing.started_at)
        if timing.finished_at:
            body[_STAGE_END + stage] = iso(timing.finished_at)
    return body


def _kpi_body(kpi_id: str, state: KpiState) -> dict[str, Any]:
    body = state.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["kpiId"] = kpi_id
    return body


class JobStore:
    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def create(self, job: Job) -> Job:
        """Store a new job. The per-KPI records go first; the header (with the index
        entry) is written last and atomically, so a job exists once its header does."""
        states = [
            Put(keys.job_kpi(job.trace_id, k), _kpi_body(k, job.state_of(k)), Absent())
            for k in job.kpi_ids
        ]
        self.records.put_many(states)
        self.records.write([
            Put(keys.job_header(job.trace_id), _header_body(job), Absent()),
            Put(keys.job_index(job.created_at, job.trace_id), {"traceId": job.trace_id}),
        ])
        return job

    def get(self, trace_id: str) -> Job | None:
        rows = self.records.query(keys.job(trace_id))
        header: dict[str, Any] | None = None
        kpis: dict[str, KpiState] = {}
        for sk, item in rows:
            if sk == keys.job_header(trace_id).sk:
                header = item
            elif sk.startswith("kpi:"):
                state = {k: v for k, v in item.items() if k != "kpiId"}
                kpis[sk.removeprefix("kpi:")] = KpiState.model_validate(state)
        if header is None:
            return None
        stages: dict[str, dict[str, Any]] = {}
        fields: dict[str, Any] = {}
        for name, value in header.items():
            if name.startswith(_STAGE_START):
                stages.setdefault(name.removeprefix(_STAGE_START), {})["startedAt"] = value
            elif name.startswith(_STAGE_END):
                stages.setdefault(name.removeprefix(_STAGE_END), {})["finishedAt"] = value
            else:
                fields[name] = value
        fields["kpis"] = {k: kpis[k] for k in fields.get("kpiIds", []) if k in kpis}
        fields["stages"] = {s: StageTiming.model_validate(t) for s, t in stages.items()
                            if "startedAt" in t}
        return Job.model_validate(fields)

    def require(self, trace_id: str) -> Job:
        job = self.get(trace_id)
        if job is None:
            raise NotFound(f"job {trace_id!r} does not exist", field="traceId")
        return job

    def exists(self, trace_id: str) -> bool:
        return self.records.get(keys.job_header(trace_id)) is not None

    def kpi_states(self, trace_id: str, kpi_ids: Sequence[str],
                   prefetched: Mapping[Key, Item] | None = None
                   ) -> tuple[bool, dict[str, KpiStatus]]:
        """Whether the job exists, and the state of those of `kpi_ids` that belong to it,
        in one batch read (or from `prefetched`, read with `state_keys`)."""
        wanted = self.state_keys(trace_id, kpi_ids)
        found = prefetched if prefetched is not None else self.records.get_many(wanted)
        states = {k: KpiStatus(found[keys.job_kpi(trace_id, k)]["status"])
                  for k in kpi_ids if keys.job_kpi(trace_id, k) in found}
        return keys.job_header(trace_id) in found, states

    @staticmethod
    def state_keys(trace_id: str, kpi_ids: Sequence[str]) -> list[Key]:
        return [keys.job_header(trace_id), *(keys.job_kpi(trace_id, k) for k in kpi_ids)]

    def has_pending(self, trace_id: str, *, near: str | None = None, window: int = 16) -> bool:
        """Whether a KPI of the job is still pending. With `near` (a KPI just settled),
        the `window` records after its own are looked at first: while the job waits,
        one of them is usually pending, and the rest of the job is not read."""
        pk = keys.job(trace_id)
        if near is not None:
            rows = self.records.query(pk, start=keys.job_kpi(trace_id, near).sk, prefix="kpi:",
                                      limit=window)
            if any(item.get("status") == KpiStatus.PENDING.value for _, item in rows):
                return True
        return any(item.get("status") == KpiStatus.PENDING.value
                   for _, item in self.records.query(pk, prefix="kpi:"))

    def headers(self, *, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """The newest jobs' header records only (status, times, claims): what a tick needs
        to look at, without reading every KPI record of every job."""
        rows = self.records.query(keys.JOB_INDEX, limit=limit, descending=True)
        trace_ids = [str(item["traceId"]) for _, item in rows]
        found = self.records.get_many(keys.job_header(t) for t in trace_ids)
        return [(t, found[keys.job_header(t)]) for t in trace_ids if keys.job_header(t) in found]

    def list(self, *, limit: int = 50, before: datetime | None = None) -> list[Job]:
        """The newest jobs first."""
        rows = self.records.query(keys.JOB_INDEX, end=iso(before) if before else None,
                                  limit=limit, descending=True)
        jobs = (self.get(item["traceId"]) for _, item in rows)
        return [j for j in jobs if j is not None]

    def mark_kpi_op(self, trace_id: str, kpi_id: str, status: KpiStatus, now: datetime, *,
                    error: dict[str, Any] | None = None, detail: dict[str, Any] | None = None,
                    only_from: Sequence[KpiStatus] = (KpiStatus.PENDING,)) -> Update:
        changes: dict[str, Any] = {"status": status.value, "updatedAt": iso(now)}
        if error is not None:
            changes["error"] = error
        if detail:
            changes["detail"] = detail
        return Update(
            keys.job_kpi(trace_id, kpi_id),
            set=changes,
            remove=() if error is not None else ("error", "detail"),
            condition=FieldIn("status", tuple(s.value for s in only_from)),
        )

    def mark_kpi(self, trace_id: str, kpi_id: str, status: KpiStatus, now: datetime, *,
                 error: dict[str, Any] | None = None, detail: dict[str, Any] | None = None,
                 only_from: Sequence[KpiStatus] = (KpiStatus.PENDING,)) -> bool:
        """Move one KPI to `status` if it is in one of `only_from`; False if it was not
        (already settled, or not part of the job)."""
        op = self.mark_kpi_op(trace_id, kpi_id, status, now, error=error, detail=detail,
                              only_from=only_from)
        try:
            self.records.write([op])
        except ConditionFailed:
            return False
        return True

    def advance(self, trace_id: str, to: JobStatus, now: datetime, *,
                only_from: Sequence[JobStatus], finish_stage: str | None = None,
                changes: dict[str, Any] | None = None, also: Sequence[Op] = ()) -> bool:
        """Move the job to `to` if it is in one of `only_from` (exactly one caller wins),
        stamping the stage timings, together with the `also` operations in one atomic
        write; False if another caller moved it first (then nothing is written)."""
        op = self.advance_op(trace_id, to, now, only_from=only_from, finish_stage=finish_stage,
                             changes=changes)
        try:
            self.records.write([op, *also])
        except ConditionFailed as failed:
            if 0 not in failed.indexes:
                raise  # one of the caller's own conditions
            return False
        return True

    @staticmethod
    def stage_fields(stage: str, *, started: datetime | None = None,
                     finished: datetime | None = None) -> dict[str, str]:
        """The header fields that stamp a stage's start and/or end (for an `Update`)."""
        fields = {}
        if started is not None:
            fields[_STAGE_START + stage] = iso(started)
        if finished is not None:
            fields[_STAGE_END + stage] = iso(finished)
        return fields

    def finish_stage(self, trace_id: str, stage: str, now: datetime) -> None:
        """Stamp the end of a stage that moves no status (the fan-out within collecting)."""
        with contextlib.suppress(ConditionFailed):  # the job was deleted meanwhile
            self.records.write([Update(keys.job_header(trace_id),
                                       set=self.stage_fields(stage, finished=now),
                                       condition=Exists())])

    @staticmethod
    def advance_op(trace_id: str, to: JobStatus, now: datetime, *,
                   only_from: Sequence[JobStatus], finish_stage: str | None = None,
                   changes: dict[str, Any] | None = None) -> Update:
        stamp = iso(now)
        updates: dict[str, Any] = {"status": to.value, "updatedAt": stamp, **(changes or {})}
        if not to.terminal:
            updates[_STAGE_START + to.value] = stamp
        if finish_stage:
            updates[_STAGE_END + finish_stage] = stamp
        return Update(
            keys.job_header(trace_id),
            set=updates,
            condition=AllOf((Exists(), FieldIn("status", tuple(s.value for s in only_from)))),
        )
