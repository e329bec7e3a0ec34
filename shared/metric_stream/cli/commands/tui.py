"""`metric-stream tui`: the admin console, against this machine's store or an API.

The console (`metric_stream_tui`, Textual) is imported only when the command runs: the
core never loads Textual otherwise (`tests/integration/test_boundaries.py`).
"""

from __future__ import annotations

import argparse
from typing import Any

from metric_stream.cli.common import EXIT_OK, settings_from
from metric_stream.errors import InvalidInput, NotFound


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0.5-3600)")
    return value


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "tui", help="open the admin console (a keyboard-driven terminal UI)",
        description="The operator's console: dashboard, KPIs, jobs and more, by keyboard "
                    "(? lists the keys of each screen, : takes a command, ctrl+p opens the "
                    "palette). Without --url it opens this machine's store directly; "
                    "nothing else needs to run.")
    parser.add_argument("--url", metavar="URL",
                        help="manage the API at URL over HTTP instead (a `metric-stream "
                             "serve` or a deployment); the admin key comes from "
                             "METRIC_STREAM_ADMIN_KEY and is never shown")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo store that `metric-stream run --demo` fills "
                             "(HOME/demo); jobs run from the console are demo jobs")
    parser.add_argument("--refresh", type=_seconds, default=5.0, metavar="S",
                        help="seconds between two refreshes of the dashboard (default 5; "
                             "p pauses it)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    client: Any
    if args.url:
        from metric_stream_tui.client import HttpClient

        if args.demo:
            raise InvalidInput("opens the local demo store; with --url the server's store is "
                               "the one shown", field="--demo")
        if not args.url.startswith(("http://", "https://")):
            raise InvalidInput("must be an http(s) URL, e.g. http://127.0.0.1:8080",
                               field="--url")
        if settings.admin_key is None:
            raise InvalidInput("the console needs the server's admin key: set "
                               "METRIC_STREAM_ADMIN_KEY", field="METRIC_STREAM_ADMIN_KEY")
        client = HttpClient(args.url, settings.admin_key)
    else:
        from metric_stream_tui.client import LocalClient

        if args.demo:
            settings = settings.model_copy(update={"home": settings.home / "demo"})
            if settings.backend == "embedded" and not settings.database_path.is_file():
                raise NotFound(f"there is no demo store at {settings.home}: run "
                               "`metric-stream run --demo` first (it makes one with a year "
                               "of simulated history and a first job)")
        client = LocalClient(settings)
    from metric_stream_tui.app import AdminApp

    AdminApp(client, refresh_s=args.refresh, demo=args.demo).run()
    return EXIT_OK
