"""What each stage of the cycle does, in one place for `run`, `serve` and Lambda."""

from __future__ import annotations

from metric_stream.services.cycle import StageWorkers


def default_workers() -> StageWorkers:
    from metric_stream.services.analysis import analyse_job

    return StageWorkers({"analysis": analyse_job})
