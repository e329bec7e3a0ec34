"""`metric-stream serve`: the HTTP API and the daily cycle on this machine."""

from __future__ import annotations

import argparse
import os
from typing import Any

from metric_stream.cli.common import EXIT_OK, bounded_int, port, settings_from
from metric_stream.errors import InvalidInput


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0.1-86400)")
    return value


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve", help="run the HTTP API and the daily cycle on this machine",
        description="Serve the HTTP API (ingestion, health, OpenAPI at /api/openapi.json) "
                    "and run the daily cycle: a tick that fires due schedules and recovers "
                    "stalled jobs, and a worker per stage queue. Runs until SIGINT/SIGTERM; "
                    "requests in flight and the stage message in hand finish first.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--threads", type=bounded_int(1, 256, "a thread count"), default=16,
                        help="request handler threads (default 16)")
    parser.add_argument("--workers", type=bounded_int(1, 64, "a process count"),
                        default=min(os.cpu_count() or 1, 4),
                        help="HTTP worker processes (default: one per CPU, at most 4)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--tick-seconds", type=_seconds, default=60.0, metavar="SECONDS",
                        help="seconds between two ticks of the schedules (default 60)")
    parser.add_argument("--no-workers", action="store_true",
                        help="API only: run neither the schedule tick nor the stage workers "
                             "(another process runs the cycle)")
    parser.add_argument("--emulate-aws", action="store_true",
                        help="run the aws backend against a local moto server (started and "
                             "stopped with serve; needs moto[server]), e.g. to try the AWS "
                             "code paths without an account")
    parser.add_argument("--moto-port", type=port, metavar="PORT",
                        help="port of the moto server with --emulate-aws (default: a free one)")
    parser.set_defaults(handler=run, default_log_level="info")


def run(args: argparse.Namespace) -> int:
    if args.moto_port is not None and not args.emulate_aws:
        raise InvalidInput("only goes with --emulate-aws", field="--moto-port")
    if not args.emulate_aws:
        _serve(args)
        return EXIT_OK
    from metric_stream.server.emulate import emulated_aws

    if args.backend == "embedded":
        raise InvalidInput("--emulate-aws runs the aws backend, not embedded",
                           field="--backend")
    with emulated_aws(port=args.moto_port) as endpoint:
        print(f"emulating AWS with moto at {endpoint} "
              f"(METRIC_STREAM_AWS_ENDPOINT_URL={endpoint})", flush=True)
        _serve(args)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> None:
    from metric_stream.bootstrap import build_services
    from metric_stream.server.loops import CycleLoops
    from metric_stream.server.serve import serve

    services = build_services(settings_from(args))
    loops = None if args.no_workers else CycleLoops(services, tick_seconds=args.tick_seconds)
    serve(services, host=args.host, port=args.port, threads=args.threads,
          access_log=args.access_log, workers=args.workers, loops=loops)
