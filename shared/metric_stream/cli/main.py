"""`metric-stream`: the operator's command line.

Every command builds its services through the composition root; a bad argument or
setting prints what is wrong and exits non-zero, never with a traceback (unless
`--debug`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metric_stream import __version__
from metric_stream.errors import InvalidInput, MetricStreamError
from metric_stream.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.backend:
        overrides["backend"] = args.backend
    if args.home:
        overrides["home"] = args.home
    return Settings(**overrides)


def cmd_init(args: argparse.Namespace) -> int:
    from metric_stream.bootstrap import build_services
    from metric_stream.cli.seed import load_seed, seed_registry

    settings = _settings(args)
    seed = load_seed(args.seed) if args.seed else []  # validate before creating anything
    services = build_services(settings)
    created = services.init()
    where = settings.home.resolve() if settings.backend == "embedded" else (
        f"AWS region {settings.aws_region}"
        + (f" at {settings.aws_endpoint_url}" if settings.aws_endpoint_url else ""))
    print(f"metric-stream {settings.backend} backend ready ({where})")
    for thing in created:
        print(f"  created {thing}")
    if not created:
        print("  everything already existed; nothing changed")
    if seed:
        added, kept = seed_registry(services, seed)
        print(f"  registry: {len(added)} KPI(s) added, {len(kept)} already present and kept")
    return EXIT_OK


def cmd_schemas(args: argparse.Namespace) -> int:
    from metric_stream.models.schemas import render_schemas, schema_drift, write_schemas

    if args.check:
        drift = schema_drift(args.out)
        for line in drift:
            print(line)
        if drift:
            print(f"schemas in {args.out} differ from the models; run "
                  f"'metric-stream schemas --out {args.out}'", file=sys.stderr)
            return EXIT_FAILED
        print(f"schemas in {args.out} match the models")
        return EXIT_OK
    if args.out is None:
        print(json.dumps({name: json.loads(text) for name, text in render_schemas().items()},
                         indent=2, sort_keys=True))
        return EXIT_OK
    for path in write_schemas(args.out):
        print(f"wrote {path}")
    return EXIT_OK


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init", help="create what the backend needs (idempotent)",
        description="Create the SQLite schema and blob folder (embedded), or the DynamoDB "
                    "table, S3 bucket and SQS queues (aws). Safe to run again: what exists "
                    "is left as it is.")
    init.add_argument("--seed", type=Path, metavar="FILE.json",
                      help="also add the KPI definitions of this JSON file (a list) to the "
                           "registry; ids already present are kept unchanged")
    init.set_defaults(handler=cmd_init)

    schemas = commands.add_parser(
        "schemas", help="print or write the JSON Schemas of the data contract",
        description="The JSON Schemas that n8n workflow authors validate against.")
    schemas.add_argument("--out", type=Path, metavar="DIR", help="write one file per model here")
    schemas.add_argument("--check", action="store_true",
                         help="exit 1 if the files in --out differ from the models")
    schemas.set_defaults(handler=cmd_schemas)
    return parser


def _explain_settings_error(error: ValidationError) -> str:
    lines = ["invalid setting(s):"]
    for item in error.errors(include_url=False):
        name = ".".join(str(p) for p in item["loc"])
        lines.append(f"  METRIC_STREAM_{name.upper()}: {item['msg']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "check", False) and args.out is None:
        parser.error("schemas --check needs --out DIR")
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValidationError as exc:
        if args.debug:
            raise
        print(f"metric-stream: {_explain_settings_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidInput as exc:
        if args.debug:
            raise
        print(f"metric-stream: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except MetricStreamError as exc:
        if args.debug:
            raise
        print(f"metric-stream: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if args.debug:
            raise
        print(f"metric-stream: unexpected {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
