"""`metric-stream deliver TRACE_ID`: send a job's report again (Svix's "recover")."""

from __future__ import annotations

import argparse
import json
from typing import Any

from metric_stream.cli.common import EXIT_FAILED, EXIT_OK, settings_from


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "deliver", help="send a job's report to its endpoints again",
        description="Send the job's messages to every endpoint that wants them and has not "
                    "received them yet (a crashed or failed delivery), with the delivery "
                    "retries. --failed-only: only where the last try failed. --endpoint: "
                    "these endpoints, even if they received it already (the same message "
                    "id, so a receiver may drop it as a duplicate). Exit 0 when nothing "
                    "failed, 1 otherwise.")
    parser.add_argument("trace_id", metavar="TRACE_ID", help="the job, e.g. trace_20261130_...")
    parser.add_argument("--endpoint", action="append", metavar="ID", dest="endpoints",
                        help="only this endpoint (repeat for several)")
    parser.add_argument("--failed-only", action="store_true",
                        help="only the endpoints whose last try failed")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.bootstrap import build_services
    from metric_stream.services.delivery import deliver

    services = build_services(settings_from(args))
    outcome = deliver(services, args.trace_id, endpoint_ids=args.endpoints,
                      failed_only=args.failed_only, resend=bool(args.endpoints))
    records = {r.endpoint_id: r for r in services.deliveries.list(args.trace_id)}
    if args.json:
        print(json.dumps({**outcome.to_wire(), "deliveries": [
            r.model_dump(mode="json", by_alias=True, exclude_none=True)
            for r in records.values()]}))
    else:
        print(f"deliver {args.trace_id}: {outcome.sent} sent, {outcome.failed} failed, "
              f"{outcome.already_sent} already sent, {outcome.skipped} skipped "
              f"in {outcome.seconds:.2f} s")
        for record in records.values():
            if record.status.value == "failed":
                print(f"  ! {record.endpoint_id}: {record.last_error} "
                      f"({record.attempts} attempt(s))")
        if outcome.disabled:
            print(f"  disabled: {', '.join(outcome.disabled)}")
    return EXIT_OK if outcome.failed == 0 else EXIT_FAILED
