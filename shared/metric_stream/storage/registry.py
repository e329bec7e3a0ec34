"""The registry: KPIs, delivery endpoints and schedules.

A multi-KPI source yields several KPI ids; an index partition maps every yielded id
to its registry entry, kept in the same atomic writes as the entries, so that
ingestion resolves ids with one batch read and no two entries yield the same id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from metric_stream.errors import AlreadyExists, ConditionFailed, NotFound
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.models.kpi import KpiDefinition
from metric_stream.models.schedule import Schedule
from metric_stream.ports import (
    Absent,
    AllOf,
    Delete,
    Exists,
    FieldIn,
    Item,
    Key,
    Op,
    Put,
    RecordStore,
)
from metric_stream.storage import keys
from metric_stream.storage.collection import ModelCollection, to_item
from metric_stream.storage.sealing import SealedCollection, Sealer

KPI_INDEX = "registry:kpi-yield"
ENDPOINT_SECRETS = ("url", "signingSecret")
"""A delivery endpoint's fields sealed at rest: the URL carries passwords, bot tokens,
webhook paths and query tokens; the signing secret signs what it is sent."""


def _index_key(kpi_id: str) -> Key:
    return Key(KPI_INDEX, kpi_id)


class KpiCatalog(ModelCollection[KpiDefinition]):
    def __init__(self, records: RecordStore) -> None:
        super().__init__(records, keys.KPI_REGISTRY, KpiDefinition, lambda k: k.id, "KPI")

    def resolve(self, kpi_ids: Iterable[str],
                prefetched: Mapping[Key, Item] | None = None) -> dict[str, str]:
        """Registry entry id of each known KPI id (unknown ids are left out);
        `prefetched` holds records already read with `resolve_keys`."""
        wanted = self.resolve_keys(kpi_ids)
        found = prefetched if prefetched is not None else self.records.get_many(wanted)
        return {key.sk: str(found[key]["entryId"]) for key in wanted if key in found}

    @staticmethod
    def resolve_keys(kpi_ids: Iterable[str]) -> list[Key]:
        return [_index_key(k) for k in kpi_ids]

    def create(self, model: KpiDefinition) -> KpiDefinition:
        ops: list[Op] = [Put(self.key(model.id), to_item(model), Absent())]
        ops += [Put(_index_key(k), {"entryId": model.id}, Absent()) for k in model.yields]
        self._write(ops, model)
        return model

    def replace(self, model: KpiDefinition) -> KpiDefinition:
        old = self.require(model.id)
        stamp = to_item(old).get("updatedAt")  # optimistic: fail if changed since read
        guard = Exists() if stamp is None else AllOf((Exists(), FieldIn("updatedAt", (stamp,))))
        ops: list[Op] = [Put(self.key(model.id), to_item(model), guard)]
        ops += [Delete(_index_key(k), FieldIn("entryId", (model.id,)))
                for k in old.yields if k not in model.yields]
        ops += [Put(_index_key(k), {"entryId": model.id}, Absent())
                for k in model.yields if k not in old.yields]
        self._write(ops, model)
        return model

    def delete(self, item_id: str) -> None:
        old = self.require(item_id)
        ops: list[Op] = [Delete(self.key(item_id), Exists())]
        ops += [Delete(_index_key(k)) for k in old.yields]
        try:
            self.records.write(ops)
        except ConditionFailed:
            raise NotFound(f"KPI {item_id!r} does not exist", field="id") from None

    def _write(self, ops: list[Op], model: KpiDefinition) -> None:
        try:
            self.records.write(ops)
        except ConditionFailed as failed:
            if 0 in failed.indexes:
                if isinstance(ops[0], Put) and isinstance(ops[0].condition, Absent):
                    raise AlreadyExists(f"KPI {model.id!r} already exists", field="id") from None
                raise NotFound(f"KPI {model.id!r} changed or was deleted meanwhile; "
                               "read it again", field="id") from None
            taken = self.resolve(model.yields)
            clash = sorted(k for k, owner in taken.items() if owner != model.id)
            raise AlreadyExists(
                f"KPI id(s) {clash} are already yielded by another registry entry",
                field="kpiIds" if model.kpi_ids else "id") from None


class Registry:
    """KPIs, delivery endpoints (their secrets sealed by `sealer`) and schedules."""

    def __init__(self, records: RecordStore, sealer: Sealer) -> None:
        self.kpis = KpiCatalog(records)
        self.endpoints = SealedCollection(
            records, keys.ENDPOINT_REGISTRY, DeliveryEndpoint, lambda e: e.id,
            "delivery endpoint", sealer=sealer, secret_fields=ENDPOINT_SECRETS,
            shown={"maskedUrl": lambda e: e.masked_url})
        self.schedules = ModelCollection(records, keys.SCHEDULE_REGISTRY, Schedule,
                                         lambda s: s.id, "schedule")

    def kpi_sources(self) -> dict[str, KpiDefinition]:
        """Every KPI id any registry entry yields, mapped to that entry."""
        return {kpi_id: entry for entry in self.kpis.all() for kpi_id in entry.yields}
