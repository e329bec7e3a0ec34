"""What each stage of the cycle does, in one place for `run`, `serve` and Lambda."""

from __future__ import annotations

from collections.abc import Sequence

from metric_stream.bootstrap import Services
from metric_stream.models.job import Job
from metric_stream.ports import Op
from metric_stream.services.cycle import StageWorkers


def _analyse(services: Services, job: Job) -> Sequence[Op]:
    from metric_stream.services.analysis import analyse_job

    return analyse_job(services, job)


def _package(services: Services, job: Job) -> Sequence[Op]:
    from metric_stream.services.packaging import package_job  # reportlab: this stage only

    return package_job(services, job)


def _deliver(services: Services, job: Job) -> Sequence[Op]:
    from metric_stream.services.delivery import deliver_job  # aiohttp: this stage only

    return deliver_job(services, job)


def default_workers() -> StageWorkers:
    return StageWorkers({"analysis": _analyse, "packaging": _package, "delivery": _deliver})
