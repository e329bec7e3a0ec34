"""`metric-stream reseal`: seal every delivery endpoint with the current record key."""

from __future__ import annotations

import argparse
from typing import Any

from metric_stream.cli.common import EXIT_FAILED, EXIT_OK, settings_from


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "reseal", help="seal every delivery endpoint's secrets with the current record key",
        description="Seal the delivery endpoints stored in clear (before sealing existed) "
                    "or with a former key (METRIC_STREAM_RECORD_KEYS_OLD) again with "
                    "METRIC_STREAM_RECORD_KEY, then scrub the former versions from the "
                    "embedded database's file. Safe to run again, and while metric-stream "
                    "runs. To rotate the key: move the key to METRIC_STREAM_RECORD_KEYS_OLD, "
                    "set a new METRIC_STREAM_RECORD_KEY, run reseal, then drop the old key.")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be sealed again; change nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.adapters.record_keys import keeps_a_key_file
    from metric_stream.bootstrap import build_services
    from metric_stream.services.reseal import reseal

    services = build_services(settings_from(args))
    done = reseal(services, dry_run=args.dry_run)
    report = done.endpoints
    verb = "would seal" if report.dry_run else "sealed"
    total = len(report.current) + report.written + len(report.unreadable) + len(report.changed)
    print(f"reseal: {total} delivery endpoint(s); sealing key {report.key_id}"
          + (" (dry run: nothing changed)" if report.dry_run else ""))
    print(f"  {len(report.current)} already sealed with it")
    if report.from_clear:
        print(f"  {verb} {len(report.from_clear)} stored in clear: "
              f"{_some(report.from_clear)}")
    for old, ids in sorted(report.rotated.items()):
        print(f"  {verb} {len(ids)} sealed with former key {old}: {_some(ids)}")
    for problem in report.unreadable:
        print(f"  left as is: {problem}")
    if report.changed:
        print(f"  changed by other writers meanwhile (run reseal again): "
              f"{_some(report.changed)}")
    if done.scrubbed is False:
        print("  the database's former versions are not all scrubbed yet (another process "
              "was reading it): run reseal again once it is idle")
    if report.unreadable or report.changed:
        return EXIT_FAILED
    settings = services.settings
    if settings.record_keys_old and not report.dry_run:
        print("  no endpoint needs the former key(s) any more: "
              "METRIC_STREAM_RECORD_KEYS_OLD can go")
    if settings.record_key and keeps_a_key_file(settings) and settings.record_key_path.exists() \
            and not report.dry_run:
        print(f"  no endpoint needs {settings.record_key_path} any more: it can go")
    return EXIT_OK


def _some(ids: list[str], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more
