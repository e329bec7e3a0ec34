"""A set of one kind of model kept under one partition, addressed by an id field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from metric_stream.errors import AlreadyExists, ConditionFailed, NotFound
from metric_stream.ports import Absent, Condition, Delete, Exists, Item, Key, Put, RecordStore

M = TypeVar("M", bound=BaseModel)


def to_item(model: BaseModel) -> Item:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class ModelCollection(Generic[M]):
    def __init__(self, records: RecordStore, partition: str, model: type[M],
                 id_of: Callable[[M], str], noun: str) -> None:
        self.records = records
        self.partition = partition
        self.model = model
        self.id_of = id_of
        self.noun = noun

    def key(self, item_id: str) -> Key:
        return Key(self.partition, item_id)

    def get(self, item_id: str) -> M | None:
        item = self.records.get(self.key(item_id))
        return None if item is None else self.load(item_id, item)

    def require(self, item_id: str) -> M:
        found = self.get(item_id)
        if found is None:
            raise NotFound(f"{self.noun} {item_id!r} does not exist", field="id")
        return found

    def all(self) -> list[M]:
        return [self.load(sk, item) for sk, item in self.records.query(self.partition)]

    def ids(self) -> list[str]:
        return [sk for sk, _ in self.records.query(self.partition)]

    def put(self, model: M) -> M:
        self._put(model, None)
        return model

    def create(self, model: M) -> M:
        try:
            self._put(model, Absent())
        except ConditionFailed:
            raise AlreadyExists(f"{self.noun} {self.id_of(model)!r} already exists",
                                field="id") from None
        return model

    def replace(self, model: M) -> M:
        try:
            self._put(model, Exists())
        except ConditionFailed:
            raise NotFound(f"{self.noun} {self.id_of(model)!r} does not exist",
                           field="id") from None
        return model

    def delete(self, item_id: str) -> None:
        try:
            self.records.write([Delete(self.key(item_id), Exists())])
        except ConditionFailed:
            raise NotFound(f"{self.noun} {item_id!r} does not exist", field="id") from None

    def put_op(self, model: M, condition: Condition | None = None) -> Put:
        return Put(self.key(self.id_of(model)), self.dump(model), condition)

    def load(self, item_id: str, item: Item) -> M:
        """The model a stored record holds."""
        return self.model.model_validate(item)

    def dump(self, model: M) -> Item:
        """The record a model is stored as."""
        return to_item(model)

    def _put(self, model: M, condition: Condition | None) -> None:
        self.records.write([self.put_op(model, condition)])


def validated(model: type[M], items: list[tuple[str, Any]]) -> list[M]:
    return [model.model_validate(item) for _, item in items]
