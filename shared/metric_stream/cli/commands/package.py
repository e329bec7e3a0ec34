"""`metric-stream package --stage prod --out build/`: the Lambda deployment, built and
checked (see `metric_stream.deploy.package`)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from metric_stream.cli.common import EXIT_OK

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def _stage(text: str) -> str:
    if not _STAGE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a stage name (lower-case letters, digits and '-', "
            "as in chalice-config/config.json)")
    return text


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "package", help="build the AWS Lambda deployment (Chalice + the rest of the stack)",
        description="Assemble the Chalice project from functions/ and chalice-config/, run "
                    "`chalice package`, build the layers (rendering, sending) for Lambda's "
                    "platform, and write OUT/template.json (tables, bucket, queues with "
                    "dead-letter queues, a role per function) with its zips, ready for "
                    "`sam deploy`. Checks every artifact against Lambda's size limits.")
    parser.add_argument("--stage", type=_stage, default="prod",
                        help="the stage of chalice-config/config.json (default: prod)")
    parser.add_argument("--out", type=Path, default=Path("build"), metavar="DIR",
                        help="where to write it (default: ./build)")
    parser.add_argument("--region", default="us-east-1",
                        help="the region Chalice builds for (the template itself takes the "
                             "region it is deployed in)")
    parser.add_argument("--secrets-id", metavar="NAME",
                        help="the Secrets Manager secret with the keys "
                             "(default: metric-stream/STAGE; '' for none)")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="the metric-stream checkout (default: found from the install)")
    parser.add_argument("--json", action="store_true", help="print the sizes as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.deploy.package import MAX_UNZIPPED, package

    quiet = args.json
    report = package(args.stage, args.out, source=args.source, region=args.region,
                     secrets_id=args.secrets_id,
                     log=(lambda _text: None) if quiet else (lambda text: print(f"  {text}")))
    if args.json:
        print(json.dumps(report.to_wire()))
        return EXIT_OK
    print(f"package {args.stage}: {report.template}")
    print(f"  {'artifact':<22} {'zipped':>10} {'unzipped':>10}")
    for artifact in (report.code, *report.layers.values()):
        print(f"  {artifact.path.name:<22} {_mb(artifact.zipped):>10} {_mb(artifact.unzipped):>10}")
    print(f"  {'function':<22} {'memory':>7} {'timeout':>8} {'code+layers':>12}  layers")
    for function in report.functions:
        print(f"  {function.name:<22} {function.memory_mb:>5} MB {function.timeout_s:>6} s "
              f"{_mb(function.unzipped):>12}  {', '.join(function.layers) or '-'}")
    print(f"  every function within {_mb(MAX_UNZIPPED)} unzipped; deploy with: sam deploy "
          f"--template-file {report.template} --stack-name metric-stream-{args.stage} "
          "--capabilities CAPABILITY_IAM --resolve-s3")
    return EXIT_OK


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
