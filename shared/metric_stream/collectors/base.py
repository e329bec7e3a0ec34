"""Built-in collectors: each fetches one source and answers with the very payload an
n8n workflow would POST, which then enters through the one ingestion path.

A collector is named in a KPI's source (`{"kind": "collector", "collector": NAME,
"params": {...}}`); `COLLECTORS` maps names to classes. `params.baseUrl` points a
KPI at a mirror (or a test server) instead of the collector's default base URL.

The helpers below read a source's answer defensively: a field that is missing or not
a number raises `MalformedAnswer`, which the fetching collector turns into a
`CollectionFailed` naming the source and URL.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import httpx

from metric_stream.models.config import RetryPolicy
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.models.wire import KpiResult, MultiKpiResult, parse_result

if TYPE_CHECKING:
    from metric_stream.collectors.http import ResponseCache

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class CollectRequest:
    """One KPI registry entry to collect for one job."""

    trace_id: str
    timestamp: datetime  # the job's trigger time; a source's own timestamp wins when it has one
    kpi: KpiDefinition


class Collector(ABC):
    name: ClassVar[str]
    default_base_url: ClassVar[str] = ""

    def __init__(self, http: httpx.Client, retry: RetryPolicy, base_url: str | None = None,
                 *, sleep: Sleep = time.sleep, cache: ResponseCache | None = None) -> None:
        self.http = http
        self.retry = retry
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.sleep = sleep
        self.cache = cache

    @abstractmethod
    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        """Fetch the source and shape its answer as a data-contract result; raise
        `CollectionFailed` with the reason when it cannot."""

    def base_url_for(self, request: CollectRequest) -> str:
        """`params.baseUrl` of the KPI's source if set, else this collector's base URL."""
        override = params_of(request).get("baseUrl")
        if override is None:
            return self.base_url
        if not isinstance(override, str) or urlsplit(override).scheme not in ("http", "https"):
            raise self.bad_params("params.baseUrl must be an absolute http(s) URL")
        return override.rstrip("/")

    def bad_params(self, message: str) -> CollectionFailed:
        return CollectionFailed(f"{self.name}: {message}", code="bad_params", source=self.name)

    def targets(self, request: CollectRequest, plural: str, singular: str | None = None
                ) -> dict[str, str]:
        """The source's names (coins, indicators, fields) mapped to the KPI ids the entry
        yields: `params[plural]` as `{name: kpiId}`, or a list of names in the order of
        the entry's ids, or (for a single KPI) `params[singular]` as one name."""
        params = params_of(request)
        yields = request.kpi.yields
        raw = params.get(plural)
        if raw is None and singular is not None and singular in params:
            raw = [params[singular]]
        if isinstance(raw, Mapping):
            mapping = dict(raw)
        elif isinstance(raw, list):
            if len(raw) != len(yields):
                raise self.bad_params(
                    f"params.{plural} lists {len(raw)} name(s) but the entry yields "
                    f"{len(yields)} KPI(s) {yields}; map them as {{name: kpiId}}")
            mapping = dict(zip(raw, yields, strict=True))
        else:
            expected = f"params.{plural}" + (f" (or params.{singular})" if singular else "")
            raise self.bad_params(f"{expected} is required: which {plural} to collect")
        if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in mapping.items()):
            raise self.bad_params(f"params.{plural} must map names to KPI ids (text)")
        mapped = list(mapping.values())
        if sorted(mapped) != sorted(yields):
            raise self.bad_params(
                f"params.{plural} maps to {sorted(mapped)}, but the entry yields {sorted(yields)}")
        return mapping

    def only_target(self, request: CollectRequest) -> str:
        """The one KPI id of an entry whose source has one value."""
        yields = request.kpi.yields
        if len(yields) != 1:
            raise self.bad_params(f"the source gives one value, but the entry yields {yields}")
        return yields[0]

    def result(self, request: CollectRequest, values: Mapping[str, float | dict[str, Any]],
               timestamp: datetime, **metadata: Any) -> KpiResult | MultiKpiResult:
        """The data-contract result for the entry: single-KPI unless it lists `kpiIds`.
        Built from the wire form, so the same checks as an n8n callback apply."""
        kpi = request.kpi
        payload: dict[str, Any] = {
            "traceId": request.trace_id,
            "timestamp": timestamp.isoformat(),
            "kpiType": kpi.kpi_type,
            "metadata": {"collector": self.name, **metadata},
        }
        if kpi.kpi_ids:
            payload.update(kpiIds=kpi.yields, data=dict(values))
        else:
            payload.update(kpiId=kpi.id, data=values[kpi.id])
        return parse_result(payload)


class CollectionFailed(Exception):
    """A source could not be collected; `error` is what `/api/kpi-error` would carry."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.error: dict[str, object] = {"message": message, "name": "CollectionFailed",
                                         **fields}


class MalformedAnswer(ValueError):
    """The source answered, but not in the shape its collector expects."""


COLLECTORS: dict[str, type[Collector]] = {}


def register(cls: type[Collector]) -> type[Collector]:
    COLLECTORS[cls.name] = cls
    return cls


def params_of(request: CollectRequest) -> dict[str, Any]:
    source = request.kpi.source
    return dict(source.params) if isinstance(source, CollectorSource) else {}


def member(container: Any, key: str | int, where: str) -> Any:
    """`container[key]`, or `MalformedAnswer` saying what is missing where."""
    if isinstance(key, int):
        if not isinstance(container, list) or not -len(container) <= key < len(container):
            raise MalformedAnswer(f"{where} is not a non-empty list")
        return container[key]
    if not isinstance(container, Mapping):
        raise MalformedAnswer(f"{where} is not an object")
    if key not in container:
        raise MalformedAnswer(f"{where} has no {key!r}")
    return container[key]


def number(value: Any, where: str) -> float:
    """A finite number from a JSON number or numeric text (many APIs send "42.1")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedAnswer(f"{where} is {value!r}, not a number")
    try:
        result = float(value)
    except ValueError:
        raise MalformedAnswer(f"{where} is {value!r}, not a number") from None
    if not math.isfinite(result):
        raise MalformedAnswer(f"{where} is {value!r}, not a finite number")
    return result


_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def unix_time(value: Any, where: str, *, millis: bool = False) -> datetime:
    """A UTC instant from Unix seconds (or milliseconds), as a number or text."""
    seconds = number(value, where) / (1000 if millis else 1)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        moment = _LATEST
    if not _EARLIEST <= moment < _LATEST:
        unit = "milliseconds" if millis else "seconds"
        raise MalformedAnswer(f"{where} is {value!r}, not a Unix time in {unit}")
    return moment
