"""`metric-stream`: the operator's command line.

Every command builds its services through the composition root; a bad argument or
setting prints what is wrong and exits non-zero, never with a traceback (unless
`--debug`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metric_stream import __version__
from metric_stream.cli.commands import COMMANDS
from metric_stream.cli.common import EXIT_FAILED, EXIT_USAGE
from metric_stream.errors import InvalidInput, MetricStreamError
from metric_stream.logs import FORMATS, LEVELS, active_format, configure_logging

Handler = Callable[[argparse.Namespace], int]
log = logging.getLogger("metric_stream.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metric-stream",
        description="The Daily Index Tracker: collects crypto market KPIs every day, keeps "
                    "their history, analyses them and delivers one report.",
        epilog="Settings come from METRIC_STREAM_* environment variables; the options "
               "below override them. See the README for every setting.",
    )
    parser.add_argument("--version", action="version", version=f"metric-stream {__version__}")
    parser.add_argument("--backend", choices=["embedded", "aws"],
                        help="where data lives (default: $METRIC_STREAM_BACKEND or embedded)")
    parser.add_argument("--home", type=Path, metavar="PATH",
                        help="data folder of the embedded backend "
                             "(default: $METRIC_STREAM_HOME or ./.metric-stream)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    _log_options(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    for subparser in commands.choices.values():  # also after the command: `run --log-format json`
        _log_options(subparser, argparse.SUPPRESS)
    return parser


def _log_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--log-format", choices=FORMATS, type=str.lower, default=default,
                        help="log lines on stderr as readable text or as one JSON object "
                             "per line (default: $METRIC_STREAM_LOG_FORMAT or text)")
    parser.add_argument("--log-level", choices=LEVELS, type=str.lower, default=default,
                        help="the least severe lines logged (default: "
                             "$METRIC_STREAM_LOG_LEVEL, or info for serve, warning otherwise)")


def _explain_settings_error(error: ValidationError) -> str:
    lines = ["invalid setting(s):"]
    for item in error.errors(include_url=False):
        name = ".".join(str(p) for p in item["loc"])
        lines.append(f"  METRIC_STREAM_{name.upper()}: {item['msg']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "needs_out_for_check", False) and args.check and args.out is None:
        parser.error("schemas --check needs --out DIR")
    handler: Handler = args.handler
    try:
        configure_logging(args.log_format, args.log_level,
                          default_level=getattr(args, "default_log_level", "warning"),
                          capture_warnings=True)
        return handler(args)
    except KeyboardInterrupt:
        _tell("interrupted", 130)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message, code = _explain(exc)
        _tell(f"metric-stream: {message}", code)
        return code


def _tell(message: str, code: int) -> None:
    """The reason a command failed: a JSON log line when lines are JSON, else plain."""
    if active_format() == "json":
        log.error(message, extra={"exitCode": code})
    else:
        print(message, file=sys.stderr)


def _explain(error: Exception) -> tuple[str, int]:
    """What to tell the operator about a failed command, and the exit code."""
    if isinstance(error, ValidationError):
        return _explain_settings_error(error), EXIT_USAGE
    if isinstance(error, InvalidInput):
        return error.message, EXIT_USAGE
    if isinstance(error, MetricStreamError):
        return error.message, EXIT_FAILED
    return (f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)",
            EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
