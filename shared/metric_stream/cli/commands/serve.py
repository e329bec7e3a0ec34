"""`metric-stream serve`: the HTTP API on this machine."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from metric_stream.cli.common import EXIT_OK, bounded_int, port, settings_from


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve", help="run the HTTP API on this machine",
        description="Serve the HTTP API (ingestion, health, OpenAPI at /api/openapi.json) "
                    "until SIGINT/SIGTERM; requests in flight finish before it exits.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--threads", type=bounded_int(1, 256, "a thread count"), default=16,
                        help="request handler threads (default 16)")
    parser.add_argument("--workers", type=bounded_int(1, 64, "a process count"),
                        default=min(os.cpu_count() or 1, 4),
                        help="HTTP worker processes (default: one per CPU, at most 4)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.bootstrap import build_services
    from metric_stream.server.serve import serve

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(build_services(settings_from(args)), host=args.host, port=args.port,
          threads=args.threads, access_log=args.access_log, workers=args.workers)
    return EXIT_OK
