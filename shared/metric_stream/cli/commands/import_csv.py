"""`metric-stream import KPI_ID FILE.csv`: backfill a KPI's history from a CSV file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from metric_stream.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, settings_from

SHOWN_ERRORS = 10


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "import", help="import a KPI's history from a CSV file",
        description="Import the points of one KPI from a CSV file with the header row "
                    "timestamp,value,metadata (metadata optional: a JSON object). Timestamps "
                    "are ISO 8601 with a timezone, in chronological order. Good rows are "
                    "imported, bad rows refused and listed; points already stored with the "
                    "same value count as duplicates, so importing a file again adds nothing. "
                    "Exit status: 0 all rows taken, 1 some rows refused, 2 unusable input.")
    parser.add_argument("kpi_id", metavar="KPI_ID", help="a KPI id the registry yields")
    parser.add_argument("file", metavar="FILE.csv", type=Path, help="the CSV file (UTF-8)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.bootstrap import build_services
    from metric_stream.errors import NotFound
    from metric_stream.services.imports import MAX_BYTES, import_csv

    path: Path = args.file
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # enough to tell that it is too large
    except OSError as exc:
        print(f"metric-stream: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    services = build_services(settings_from(args))
    try:
        status = import_csv(services, args.kpi_id, data, filename=path.name)
    except NotFound as exc:
        print(f"metric-stream: {exc.message}; nothing was imported", file=sys.stderr)
        return EXIT_USAGE
    print(f"import {status.import_id} of {path.name} into {status.kpi_id}: "
          f"{status.rows_total:,} row(s)")
    print(f"  imported   {status.rows_imported:>9,}")
    print(f"  duplicates {status.rows_duplicate:>9,}  (already stored with the same value)")
    print(f"  refused    {status.rows_refused:>9,}")
    if not status.rows_refused:
        return EXIT_OK
    errors = services.imports.errors(status.kpi_id, status.import_id)
    print("refused rows (row 1 is the header):")
    for error in errors[:SHOWN_ERRORS]:
        print(f"  row {error.row}: {error.reason}")
        if error.line:
            print(f"      {error.line[:120]}")
    if status.rows_refused > SHOWN_ERRORS:
        print(f"  ... and {status.rows_refused - SHOWN_ERRORS:,} more (kept 30 days in the "
              f"import log of {status.kpi_id}, import {status.import_id})")
    print("fix the refused rows and import the file again: the rows already imported "
          "count as duplicates")
    return EXIT_FAILED
