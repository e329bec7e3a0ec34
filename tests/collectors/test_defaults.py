"""The default registry: valid entries with unique KPI ids, seeded once by
`metric-stream init` (unless `--no-defaults`), and collectable end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.cli.main import main
from metric_stream.collectors import COLLECTORS
from metric_stream.collectors.defaults import default_registry, seed_defaults
from metric_stream.models.job import Job, KpiStatus
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.services.collect import collect_all
from metric_stream.settings import Settings
from tests.collectors.conftest import PREFIXES, RecordedApi, SleepLog

EXPECTED_KPIS = {
    "btc-price-usd", "eth-price-usd", "sol-price-usd", "cg-total-market-cap-usd",
    "cg-btc-dominance", "cg-eth-dominance", "cg-market-cap-change-24h", "fear-greed-index",
    "cbbi-btc-price-usd", "cbbi-confidence", "cbbi-mvrv", "cbbi-rhodl", "cbbi-puell",
    "defillama-stablecoin-mcap-usd", "binance-btcusdt-change-24h",
}


def test_the_default_entries_are_valid_and_yield_unique_ids() -> None:
    entries = default_registry()
    yielded = [k for entry in entries for k in entry.yields]
    assert len(yielded) == len(set(yielded))
    assert set(yielded) == EXPECTED_KPIS
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries:
        assert KpiDefinition.model_validate(entry.to_wire()) == entry  # survives a round trip
        assert isinstance(entry.source, CollectorSource)
        assert entry.source.collector in COLLECTORS
        assert entry.name and entry.description
    fng = next(e for e in entries if e.id == "fear-greed-index")
    assert (fng.thresholds_for("fear-greed-index").high,
            fng.thresholds_for("fear-greed-index").low) == (75, 25)


def test_seeding_adds_what_is_missing_and_only_that(services: Services) -> None:
    added = seed_defaults(services)
    assert sorted(added) == sorted(e.id for e in default_registry())
    assert set(services.registry.kpi_sources()) == EXPECTED_KPIS
    assert seed_defaults(services) == []


def test_the_default_registry_collects_end_to_end(
        tmp_path: Path, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    services = build_services(Settings(home=tmp_path / "home"))
    services.init()
    seed_defaults(services)
    entries = services.registry.kpis.all()
    trace = "trace_20261129_060000_defa17"
    services.jobs.create(Job(trace_id=trace, created_at=services.clock.now(),
                             kpi_ids=sorted(EXPECTED_KPIS)))
    mirrors = {name: api.url + prefix for name, prefix in PREFIXES.items()}

    outcomes = collect_all(services, trace, services.clock.now(), entries, http,
                           sleep=sleeps, base_urls=mirrors)

    assert len(outcomes) == len(entries)
    job = services.jobs.require(trace)
    assert sorted(job.with_status(KpiStatus.COLLECTED)) == sorted(EXPECTED_KPIS)
    for kpi_id in EXPECTED_KPIS:
        assert services.timeseries.latest(kpi_id) is not None


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_init_seeds_the_defaults_once(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    code, out = run(capsys, "--home", home, "init")
    assert code == 0
    assert f"{len(default_registry())} default KPI entries added" in out
    services = build_services(Settings(home=Path(home)))
    assert set(services.registry.kpi_sources()) == EXPECTED_KPIS

    services.registry.kpis.delete("fear-greed-index")
    code, out = run(capsys, "--home", home, "init")
    assert code == 0
    assert "registry:" not in out  # the registry is not empty: the operator's choice stands
    assert "fear-greed-index" not in services.registry.kpi_sources()


def test_init_no_defaults_leaves_the_registry_empty(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    code, out = run(capsys, "--home", home, "init", "--no-defaults")
    assert code == 0
    assert "registry:" not in out
    assert build_services(Settings(home=Path(home))).registry.kpis.ids() == []
