"""`metric-stream schemas`: the data contract's JSON Schemas."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from metric_stream.cli.common import EXIT_FAILED, EXIT_OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "schemas", help="print or write the JSON Schemas of the data contract",
        description="The JSON Schemas that n8n workflow authors validate against.")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write one file per model here")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files in --out differ from the models")
    parser.set_defaults(handler=run, needs_out_for_check=True)


def run(args: argparse.Namespace) -> int:
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
