"""`metric-stream retention`: archive and prune the points older than the retention window."""

from __future__ import annotations

import argparse
from typing import Any

from metric_stream.cli.common import EXIT_OK, bounded_int, settings_from


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "retention", help="archive then prune points older than the retention window",
        description="For every KPI in the registry, export the points older than the window "
                    "to the blob archive (archive/timeseries/KPI/YEAR.jsonl.gz, merged with "
                    "what is there) and only then delete them from the active store. Safe "
                    "to run again: nothing is archived twice or lost.")
    parser.add_argument("--days", type=bounded_int(1, 36_500, "a number of days"),
                        help="the window in days (default: the configured retentionDays, 365)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be archived and pruned; change nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.bootstrap import build_services
    from metric_stream.models.base import iso
    from metric_stream.services.retention import apply_retention
    from metric_stream.storage import keys

    services = build_services(settings_from(args))
    report = apply_retention(services, days=args.days, dry_run=args.dry_run)
    verb = "would archive" if report.dry_run else "archived"
    print(f"retention: {report.days} days; points before {iso(report.cutoff)}"
          + (" (dry run: nothing changed)" if report.dry_run else ""))
    if report.stage_files:
        print(f"  {'would delete' if report.dry_run else 'deleted'} "
              f"{len(report.stage_files)} file(s) left by ended jobs ({keys.STAGE_FILES})")
    touched = [k for k in report.kpis if k.archived or k.pruned]
    if not touched:
        print(f"  nothing to archive among {len(report.kpis)} KPI(s)")
        return EXIT_OK
    width = max(len("KPI"), *(len(k.kpi_id) for k in touched))
    print(f"  {'KPI':<{width}}  {verb:>13}  {'pruned':>9}  files")
    for k in touched:
        pruned = "-" if report.dry_run else f"{k.pruned:,}"
        print(f"  {k.kpi_id:<{width}}  {k.archived:>13,}  {pruned:>9}  {', '.join(k.files)}")
    total_pruned = "-" if report.dry_run else f"{report.pruned:,}"
    print(f"  {'total':<{width}}  {report.archived:>13,}  {total_pruned:>9}  "
          f"{len(report.files)} file(s); {len(report.kpis) - len(touched)} KPI(s) "
          "had nothing to archive")
    return EXIT_OK
