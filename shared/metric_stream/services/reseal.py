"""`metric-stream reseal`: every delivery endpoint sealed with the current record key.

Endpoints stored in clear (before sealing existed) and endpoints sealed with a former
key (`METRIC_STREAM_RECORD_KEYS_OLD`) are sealed again with `METRIC_STREAM_RECORD_KEY`;
then the backend's files are scrubbed of the former versions (the embedded database
keeps overwritten rows in free pages and its write-ahead log until then).
"""

from __future__ import annotations

from dataclasses import dataclass

from metric_stream.bootstrap import Services
from metric_stream.storage.sealing import ResealReport


@dataclass
class Resealed:
    endpoints: ResealReport
    scrubbed: bool | None
    """Whether the backend's files were scrubbed (None: a dry run, nothing touched)."""


def reseal(services: Services, *, dry_run: bool = False) -> Resealed:
    report = services.registry.endpoints.reseal(dry_run=dry_run)
    return Resealed(report, None if dry_run else services.records.scrub())
