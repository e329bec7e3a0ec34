"""`metric-stream init`: create what the backend needs, optionally seed the registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from metric_stream.cli.common import EXIT_OK, settings_from


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "init", help="create what the backend needs (idempotent)",
        description="Create the SQLite schema and blob folder (embedded), or the DynamoDB "
                    "table, S3 bucket and SQS queues (aws). Safe to run again: what exists "
                    "is left as it is.")
    parser.add_argument("--seed", type=Path, metavar="FILE.json",
                        help="also add the KPI definitions of this JSON file (a list) to the "
                             "registry; ids already present are kept unchanged")
    parser.add_argument("--no-defaults", action="store_true",
                        help="do not seed the built-in default KPIs (CoinGecko, Fear & Greed, "
                             "CBBI, DefiLlama, Binance), which are otherwise added when the "
                             "registry is empty")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metric_stream.adapters.record_keys import REFUSAL, keeps_a_key_file
    from metric_stream.bootstrap import build_services
    from metric_stream.cli.seed import load_seed, seed_registry
    from metric_stream.collectors.defaults import seed_defaults

    settings = settings_from(args)
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
    if services.settings.record_key is None and not keeps_a_key_file(services.settings):
        print(f"  warning: {REFUSAL}; until then delivery endpoints can be neither "
              "created nor read")
    if seed:
        added, kept = seed_registry(services, seed)
        print(f"  registry: {len(added)} KPI(s) added, {len(kept)} already present and kept")
    if not args.no_defaults and not services.registry.kpis.ids():
        defaults = seed_defaults(services)
        print(f"  registry: {len(defaults)} default KPI entr{'y' if len(defaults) == 1 else 'ies'}"
              " added (skip with --no-defaults)")
    return EXIT_OK
