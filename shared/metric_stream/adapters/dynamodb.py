"""The DynamoDB backend of `RecordStore`: one table, every record a native item.

An item is `{pk, sk, expiresAt?, **body}`. DynamoDB's TTL deletes expired items
lazily (often days later), so every condition rendered here counts an item whose
`expiresAt` has passed as absent, and an `Update` never builds on an expired
item's leftovers: it clears that item first and tries again. The result reads
exactly like the embedded backend.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from metric_stream.adapters.aws import AwsClients, storage_error, translated
from metric_stream.errors import (
    ConditionFailed,
    ConfigurationError,
    InvalidInput,
    StorageError,
    StorageUnavailable,
)
from metric_stream.ports import (
    Absent,
    AllOf,
    AnyOf,
    Check,
    Clock,
    Condition,
    Delete,
    Exists,
    FieldAtMost,
    FieldIn,
    Item,
    Key,
    Op,
    Put,
    RecordStore,
    Update,
    epoch,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
R = TypeVar("R")

EXPIRES = "expiresAt"
_CONDITION_FAILED = "ConditionalCheckFailedException"
_GET_CHUNK = 100  # BatchGetItem's limit
_WRITE_CHUNK = 25  # BatchWriteItem's limit
_IN_OPERANDS = 100  # the IN comparator's limit
_WORKERS = 8
_ATTEMPTS = 8  # for unprocessed batch items, transaction conflicts and expired clean-ups

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


# ---------------------------------------------------------------- values
def to_dynamo(value: Any) -> Any:
    """`value` with every float made an exact `Decimal` (boto3 refuses floats)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """`value` with every `Decimal` made an int (written as an integer) or a float."""
    if isinstance(value, Decimal):
        # Ints are written with exponent 0; a positive exponent comes from a float's
        # scientific repr (1e+100), which must come back as that float, not 10**100.
        return int(value) if value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def encode(value: Any, field: str = "") -> dict[str, Any]:
    """One DynamoDB attribute value."""
    try:
        return dict(_SERIALIZER.serialize(to_dynamo(value)))
    except (ArithmeticError, TypeError, ValueError) as error:
        raise InvalidInput(f"value cannot be stored in DynamoDB: {error}", field=field) from None


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: encode(value, name) for name, value in item.items()}


def decode_item(raw: Mapping[str, Any]) -> Item:
    return {name: from_dynamo(_DESERIALIZER.deserialize(value)) for name, value in raw.items()}


def encode_key(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key.pk}, "sk": {"S": key.sk}}


# ---------------------------------------------------------------- expressions
class Expression:
    """The placeholders of one request's expressions: `#pk`, `#sk`, `#exp` for the key
    and TTL attributes, `#n0`... for body fields (whatever characters they hold), `:v0`...
    (or a given name) for values, `:now` for the write's moment in epoch seconds."""

    _FIXED = {"pk": "#pk", "sk": "#sk", EXPIRES: "#exp"}

    def __init__(self, now: int) -> None:
        self.now = now
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._fields = 0
        self._counted = 0

    def name(self, field: str) -> str:
        ref = self._names.get(field)
        if ref is None:
            ref = self._FIXED.get(field)
            if ref is None:
                ref, self._fields = f"#n{self._fields}", self._fields + 1
            self._names[field] = ref
        return ref

    def value(self, value: Any, ref: str | None = None) -> str:
        if ref is None:
            ref, self._counted = f":v{self._counted}", self._counted + 1
        self._values[ref] = value
        return ref

    def now_ref(self) -> str:
        return self.value(self.now, ":now")

    def params(self) -> dict[str, Any]:
        """`ExpressionAttributeNames`/`Values` for what was used (DynamoDB refuses unused)."""
        params: dict[str, Any] = {}
        if self._names:
            params["ExpressionAttributeNames"] = {ref: f for f, ref in self._names.items()}
        if self._values:
            params["ExpressionAttributeValues"] = {
                ref: encode(value) for ref, value in self._values.items()
            }
        return params


def alive(expr: Expression) -> str:
    """True unless the item exists and has expired (true for a missing item)."""
    expires = expr.name(EXPIRES)
    return f"(attribute_not_exists({expires}) OR {expires} > {expr.now_ref()})"


def render_condition(condition: Condition, expr: Expression) -> str | None:
    """A condition expression meaning what `condition.holds` means, expired counting as
    absent; None for a condition that always holds."""
    if isinstance(condition, Absent):
        pk, expires = expr.name("pk"), expr.name(EXPIRES)
        return f"(attribute_not_exists({pk}) OR {expires} <= {expr.now_ref()})"
    if isinstance(condition, Exists):
        return f"(attribute_exists({expr.name('pk')}) AND {alive(expr)})"
    if isinstance(condition, FieldIn):
        return _render_field_in(condition, expr)
    if isinstance(condition, FieldAtMost):
        field = expr.name(condition.field)
        return (f"(attribute_exists({expr.name('pk')}) AND {alive(expr)} AND "
                f"{field} <= {expr.value(condition.limit)})")
    if isinstance(condition, AllOf):
        parts = [p for p in (render_condition(c, expr) for c in condition.conditions) if p]
        return None if not parts else parts[0] if len(parts) == 1 else f"({' AND '.join(parts)})"
    if isinstance(condition, AnyOf):
        rendered = [render_condition(c, expr) for c in condition.conditions]
        if not rendered or any(r is None for r in rendered):
            return None  # one branch always holds
        return rendered[0] if len(rendered) == 1 else f"({' OR '.join(r for r in rendered if r)})"
    raise TypeError(f"no DynamoDB rendering for condition {condition!r}")


def _render_field_in(condition: FieldIn, expr: Expression) -> str:
    pk = expr.name("pk")
    if not condition.values:
        return f"(attribute_exists({pk}) AND attribute_not_exists({pk}))"  # never holds
    field = expr.name(condition.field)
    refs = [expr.value(v) for v in dict.fromkeys(condition.values, None)]
    groups = [refs[i:i + _IN_OPERANDS] for i in range(0, len(refs), _IN_OPERANDS)]
    tests = [f"{field} = {g[0]}" if len(g) == 1 else f"{field} IN ({', '.join(g)})"
             for g in groups]
    if None in condition.values:  # `item.get(field)` is None for a missing field too
        tests.append(f"attribute_not_exists({field})")
    matches = tests[0] if len(tests) == 1 else f"({' OR '.join(tests)})"
    return f"(attribute_exists({pk}) AND {alive(expr)} AND {matches})"


def render_update(op: Update, expr: Expression) -> str | None:
    """An update expression leaving what `ports.apply_update` leaves; None when `op`
    changes nothing. Overlapping fields (which DynamoDB refuses) are folded first."""
    removed = set(op.remove)
    sets = {k: v for k, v in op.set.items() if k not in removed}
    adds: dict[str, int | float] = {}
    for name, amount in op.add.items():
        if name in removed:
            continue
        if name in sets:
            base = sets[name]
            is_number = isinstance(base, int | float) and not isinstance(base, bool)
            sets[name] = (base if is_number else 0) + amount
        else:
            adds[name] = amount
    clauses = []
    if sets:
        clauses.append("SET " + ", ".join(f"{expr.name(k)} = {expr.value(v)}"
                                          for k, v in sets.items()))
    if adds:
        clauses.append("ADD " + ", ".join(f"{expr.name(k)} {expr.value(v)}"
                                          for k, v in adds.items()))
    if removed:
        clauses.append("REMOVE " + ", ".join(expr.name(k) for k in dict.fromkeys(op.remove)))
    return " ".join(clauses) or None


def _both(first: str | None, second: str) -> str:
    return second if first is None else f"{first} AND {second}"


# ---------------------------------------------------------------- the store
class _Failed(Exception):
    """Conditions of these operations were false (internal; may still be retried)."""

    def __init__(self, indexes: Sequence[int]) -> None:
        super().__init__(indexes)
        self.indexes = tuple(indexes)


class _Request:
    """One operation rendered: its TransactWriteItems kind and parameters."""

    __slots__ = ("guarded", "index", "kind", "params")

    def __init__(self, index: int, kind: str, params: dict[str, Any], guarded: bool) -> None:
        self.index = index
        self.kind = kind
        self.params = params
        self.guarded = guarded  # an Update that refuses to build on an expired item


class DynamoRecordStore(RecordStore):
    def __init__(self, clients: AwsClients, table_name: str, clock: Clock) -> None:
        super().__init__(clock)
        self.clients = clients
        self.table_name = table_name

    @property
    def _db(self) -> DynamoDBClient:
        return self.clients.dynamodb

    # ---- setup
    def create(self) -> list[str]:
        created: list[str] = []
        db, name = self._db, self.table_name
        try:
            with translated(f"DynamoDB CreateTable {name}", keep={"ResourceInUseException"}):
                db.create_table(
                    TableName=name,
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                               {"AttributeName": "sk", "KeyType": "RANGE"}],
                    BillingMode="PAY_PER_REQUEST",
                )
        except ClientError:
            pass  # it exists already (or is being created)
        else:
            created.append(f"DynamoDB table {name} (pk, sk; on demand)")
        with translated(f"DynamoDB DescribeTable {name}"):
            db.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
            table = db.describe_table(TableName=name)["Table"]
            ttl = db.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        schema = {(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])}
        if schema != {("pk", "HASH"), ("sk", "RANGE")}:
            raise ConfigurationError(f"DynamoDB table {name} exists with another key schema "
                                     f"({sorted(schema)}); it needs pk (HASH) and sk (RANGE)",
                                     field="table_name")
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if ttl.get("AttributeName") != EXPIRES:
                raise ConfigurationError(f"DynamoDB table {name} has TTL on "
                                         f"{ttl.get('AttributeName')!r}; it needs {EXPIRES!r}",
                                         field="table_name")
        else:
            with translated(f"DynamoDB UpdateTimeToLive {name}"):
                db.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": EXPIRES})
            created.append(f"DynamoDB TTL on {name}.{EXPIRES}")
        return created

    # ---- reads
    def _get_many(self, keys: Sequence[Key]) -> dict[Key, Item]:
        found: dict[Key, Item] = {}
        for chunk in _chunks(keys, _GET_CHUNK):
            pending: Any = {self.table_name: {"Keys": [encode_key(k) for k in chunk],
                                              "ConsistentRead": True}}
            for attempt in _attempts("DynamoDB BatchGetItem kept leaving keys unprocessed"):
                with translated("DynamoDB BatchGetItem"):
                    response = self._db.batch_get_item(RequestItems=pending)
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = decode_item(raw)
                    found[Key(item["pk"], item["sk"])] = item
                pending = response.get("UnprocessedKeys")
                if not pending:
                    break
                _backoff(attempt)
        return found

    def _query(self, pk: str, start: str | None, end: str | None, prefix: str | None,
               limit: int | None, descending: bool) -> list[tuple[str, Item]]:
        start = start or None  # DynamoDB refuses an empty key value; every sk is >= ""
        if (limit is not None and limit <= 0) or end == "" or (start and end and start > end):
            return []
        now = epoch(self.clock.now())
        expr = Expression(now)
        condition = f"{expr.name('pk')} = {expr.value(pk, ':pk')}"
        # The key condition takes the prefix, else the range; the rest is checked here.
        if prefix:
            condition += f" AND begins_with({expr.name('sk')}, {expr.value(prefix)})"
        elif start is not None and end is not None:
            condition += (f" AND {expr.name('sk')} BETWEEN {expr.value(start)}"
                          f" AND {expr.value(end)}")
        elif start is not None:
            condition += f" AND {expr.name('sk')} >= {expr.value(start)}"
        elif end is not None:
            condition += f" AND {expr.name('sk')} <= {expr.value(end)}"

        def wanted(sk: str) -> bool:
            return ((start is None or sk >= start) and (end is None or sk <= end)
                    and (prefix is None or sk.startswith(prefix)))

        def beyond(sk: str) -> bool:  # this and every later sk are out of range
            if descending:
                return start is not None and sk < start
            return end is not None and sk > end

        params: dict[str, Any] = {"TableName": self.table_name,
                                  "KeyConditionExpression": condition,
                                  "ScanIndexForward": not descending, "ConsistentRead": True,
                                  **expr.params()}
        rows: list[tuple[str, Item]] = []
        while True:
            if limit is not None:
                params["Limit"] = limit - len(rows)
            with translated("DynamoDB Query"):
                page = self._db.query(**params)
            for raw in page.get("Items", []):
                item = decode_item(raw)
                sk = item["sk"]
                if beyond(sk):
                    return rows
                if wanted(sk) and self._alive(item, now):
                    rows.append((sk, item))
                    if limit is not None and len(rows) >= limit:
                        return rows
            last = page.get("LastEvaluatedKey")
            if not last:
                return rows
            params["ExclusiveStartKey"] = last

    # ---- writes
    def _write(self, ops: Sequence[Op], now: datetime) -> None:
        moment = epoch(now)
        requests = [r for r in (self._render(i, op, moment) for i, op in enumerate(ops)) if r]
        if not requests:
            return
        for _ in range(_ATTEMPTS):
            try:
                if len(requests) == 1 and requests[0].kind != "ConditionCheck":
                    self._write_one(requests[0])
                else:
                    self._transact(requests)
                return
            except _Failed as failed:
                if not self._worth_retrying(ops, requests, failed.indexes, moment):
                    raise ConditionFailed(failed.indexes) from None
        raise StorageError("records kept changing under concurrent writers; try again")

    def _render(self, index: int, op: Op, now: int) -> _Request | None:
        expr = Expression(now)
        params: dict[str, Any] = {"TableName": self.table_name}
        condition = render_condition(op.condition, expr) if op.condition else None
        guarded = False
        if isinstance(op, Put):
            params["Item"] = encode_item(self._stored(op))
            kind = "Put"
        elif isinstance(op, Update) and (update := render_update(op, expr)):
            params.update(Key=encode_key(op.key), UpdateExpression=update)
            condition, guarded, kind = _both(condition, alive(expr)), True, "Update"
        elif isinstance(op, Delete):
            params["Key"] = encode_key(op.key)
            kind = "Delete"
        elif isinstance(op, Check | Update):  # an Update changing nothing is a check
            if condition is None:
                return None
            params["Key"] = encode_key(op.key)
            kind = "ConditionCheck"
        else:
            raise TypeError(f"unknown operation {op!r}")
        if condition:
            params["ConditionExpression"] = condition
        params.update(expr.params())
        return _Request(index, kind, params, guarded)

    def _write_one(self, request: _Request) -> None:
        calls: dict[str, Callable[..., object]] = {
            "Put": self._db.put_item, "Update": self._db.update_item,
            "Delete": self._db.delete_item,
        }
        try:
            with translated(f"DynamoDB {request.kind}Item", keep={_CONDITION_FAILED}):
                calls[request.kind](**request.params)
        except ClientError:
            raise _Failed([request.index]) from None

    def _transact(self, requests: Sequence[_Request]) -> None:
        items: Any = [{r.kind: r.params} for r in requests]
        for attempt in _attempts("DynamoDB transactions kept conflicting; try again"):
            try:
                with translated("DynamoDB TransactWriteItems",
                                keep={"TransactionCanceledException"}):
                    self._db.transact_write_items(TransactItems=items)
                return
            except ClientError as error:
                reasons = [str(r.get("Code") or "None")
                           for r in error.response.get("CancellationReasons", [])]
                failed = [requests[i].index for i, code in enumerate(reasons)
                          if code == "ConditionalCheckFailed"]
                if failed:
                    raise _Failed(failed) from None
                if not {"TransactionConflict", "ThrottlingError"} & set(reasons):
                    raise storage_error(error, "DynamoDB TransactWriteItems") from error
            _backoff(attempt)

    def _worth_retrying(self, ops: Sequence[Op], requests: Sequence[_Request],
                        failed: Sequence[int], now: int) -> bool:
        """Whether a failed write should be tried again: an `Update` failed on an expired
        item (now cleared), or on a record that has changed since and would pass now."""
        retry = False
        for request in requests:
            if request.index not in failed or not request.guarded:
                continue
            op = ops[request.index]
            current = self._get_many([op.key]).get(op.key)
            if current is not None and not self._alive(current, now):
                self._delete_if_expired(op.key, now)
                retry = True
            elif op.condition is None or op.condition.holds(
                    None if current is None else self._strip(current)):
                retry = True
        return retry

    def _delete_if_expired(self, key: Key, now: int) -> bool:
        expr = Expression(now)
        expired = f"{expr.name(EXPIRES)} <= {expr.now_ref()}"
        try:
            with translated("DynamoDB DeleteItem", keep={_CONDITION_FAILED}):
                self._db.delete_item(TableName=self.table_name, Key=encode_key(key),
                                     ConditionExpression=expired, **expr.params())
        except ClientError:
            return False
        return True

    def _put_many(self, puts: Sequence[Put], now: datetime) -> list[bool]:
        self._batch_write({p.key: {"PutRequest": {"Item": encode_item(self._stored(p))}}
                           for p in puts if p.condition is None})
        conditional = [(i, p) for i, p in enumerate(puts) if p.condition is not None]

        def put(indexed: tuple[int, Put]) -> bool:
            try:
                self._write([indexed[1]], now)
            except ConditionFailed:
                return False
            return True

        results = [True] * len(puts)
        for (i, _), written in zip(conditional, _parallel(put, conditional), strict=True):
            results[i] = written
        return results

    def _delete_many(self, keys: Sequence[Key]) -> None:
        self._batch_write({k: {"DeleteRequest": {"Key": encode_key(k)}} for k in keys})

    def _purge_expired(self, now: datetime) -> int:
        moment = epoch(now)
        expr = Expression(moment)
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": f"{expr.name(EXPIRES)} <= {expr.now_ref()}",
            "ProjectionExpression": f"{expr.name('pk')}, {expr.name('sk')}",
        }
        params.update(expr.params())
        expired: list[Key] = []
        with translated("DynamoDB Scan"):
            for page in self._db.get_paginator("scan").paginate(**params):
                expired.extend(Key(i["pk"]["S"], i["sk"]["S"]) for i in page.get("Items", []))
        return sum(_parallel(lambda k: self._delete_if_expired(k, moment), expired))

    # ---- helpers
    @staticmethod
    def _stored(put: Put) -> Item:
        item: Item = {**put.item, "pk": put.key.pk, "sk": put.key.sk}
        if put.expires_at is not None:
            item[EXPIRES] = epoch(put.expires_at)
        return item

    def _batch_write(self, requests: Mapping[Key, dict[str, Any]]) -> None:
        """Unconditional puts or deletes, 25 a request (one per key: DynamoDB refuses
        a key twice in one batch)."""
        for chunk in _chunks(list(requests.values()), _WRITE_CHUNK):
            pending: Any = {self.table_name: chunk}
            for attempt in _attempts("DynamoDB BatchWriteItem kept leaving items unprocessed"):
                with translated("DynamoDB BatchWriteItem"):
                    response = self._db.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems")
                if not pending:
                    break
                _backoff(attempt)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _attempts(give_up: str) -> Iterator[int]:
    """Attempt numbers; `StorageUnavailable(give_up)` once they run out."""
    yield from range(_ATTEMPTS)
    raise StorageUnavailable(give_up)


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2 ** attempt)))


def _parallel(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(items))) as pool:
        return list(pool.map(work, items))

