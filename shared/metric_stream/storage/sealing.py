"""Secret fields sealed at rest: the fields of a record that must never be stored in
clear (a delivery endpoint's URL and signing secret) go into one AES-256-GCM blob per
record; the other fields stay readable, so listing, filtering and counting need no key.

    "sealed": "v1.{keyId}.{base64(nonce + ciphertext + tag)}"

The blob is bound to its record's address (the associated data): copied to another
record, it does not open. `keyId` names the key that sealed it (a digest, never the
key), so that former keys kept for reading open what they sealed and `reseal` can tell
what still needs the current key. `cryptography` is imported on first use: a process
that never touches a sealed record (ingestion) never loads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from metric_stream.errors import ConditionFailed, ConfigurationError, UnreadableRecord
from metric_stream.ports import (
    MAX_BATCH,
    AllOf,
    Condition,
    FieldIn,
    Item,
    RecordStore,
    Update,
)
from metric_stream.storage.collection import M, ModelCollection, to_item

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED = "sealed"
VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
MAKE_ONE = "32 random bytes in base64, e.g. `openssl rand -base64 32`"


@dataclass(frozen=True)
class RecordKey:
    material: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return hashlib.sha256(b"metric-stream record key\0" + self.material).hexdigest()[:8]

    @classmethod
    def parse(cls, text: str, where: str) -> RecordKey:
        """The key written as base64 (standard or URL-safe); the error names `where`
        and never the text."""
        cleaned = text.strip().replace("-", "+").replace("_", "/")
        try:
            material = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != KEY_BYTES:
            raise ConfigurationError(f"{where} is not a record key: it must be {MAKE_ONE}",
                                     field="record_key")
        return cls(material)

    @staticmethod
    def generate() -> str:
        return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class Keyring:
    """The key that seals (None: sealing is refused with `refusal`) and every key that
    opens, by id (the sealing key among them)."""

    sealing: RecordKey | None
    opening: Mapping[str, RecordKey]
    refusal: str = "no record key is configured: set METRIC_STREAM_RECORD_KEY"

    @classmethod
    def of(cls, sealing: RecordKey | None, others: list[RecordKey],
           refusal: str = "") -> Keyring:
        keys = [sealing, *others] if sealing else others
        return cls(sealing, {k.id: k for k in reversed(keys)},
                   refusal or cls.refusal)


KeyringSource = Callable[[bool], Keyring]
"""The keys now; called with True when a record is about to be sealed (the embedded
backend makes its key then, not before)."""


class Sealer:
    """Seals and opens the secret fields of records with the keyring, loaded once (and
    again when a record names a key it lacks: another process may have just made it)."""

    def __init__(self, source: KeyringSource) -> None:
        self._source = source
        self._keyring: Keyring | None = None
        self._ciphers: dict[str, AESGCM] = {}
        self._lock = threading.Lock()

    def keyring(self, *, sealing: bool = False, reload: bool = False) -> Keyring:
        with self._lock:
            ring = self._keyring
            if ring is None or reload or (sealing and ring.sealing is None):
                ring = self._keyring = self._source(sealing)
            return ring

    def sealing_key(self) -> RecordKey:
        ring = self.keyring(sealing=True)
        if ring.sealing is None:
            raise ConfigurationError(ring.refusal, field="record_key")
        return ring.sealing

    def seal(self, fields: Mapping[str, Any], context: str) -> str:
        key = self.sealing_key()
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self._cipher(key).encrypt(nonce, plain, context.encode())
        return f"{VERSION}.{key.id}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, blob: Any, context: str, what: str) -> dict[str, Any]:
        """The fields `blob` seals; `what` names the record in errors (never a secret)."""
        key_id, payload = parts(blob, what)
        key = self.keyring().opening.get(key_id) or \
            self.keyring(reload=True).opening.get(key_id)
        if key is None:
            raise ConfigurationError(
                f"{what} is sealed with record key {key_id}, which is not configured "
                f"(configured: {', '.join(self.keyring().opening) or 'none'}): set it as "
                "METRIC_STREAM_RECORD_KEY or among METRIC_STREAM_RECORD_KEYS_OLD, unless "
                "the record was altered", field="record_key")
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._cipher(key).decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:],
                                              context.encode())
            fields = json.loads(plain)
        except (InvalidTag, ValueError):
            fields = None
        if not isinstance(fields, dict):
            raise UnreadableRecord(f"{what}: its sealed fields fail authentication with "
                                   f"record key {key_id}, which sealed them: the record was "
                                   "altered or damaged")
        return fields

    def _cipher(self, key: RecordKey) -> AESGCM:
        cipher = self._ciphers.get(key.id)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[key.id] = AESGCM(key.material)
        return cipher


def key_id(blob: Any) -> str | None:
    """The id of the key that sealed `blob` (None if it is no blob of this format)."""
    if not isinstance(blob, str):
        return None
    version, _, rest = blob.partition(".")
    found, dot, _ = rest.partition(".")
    return found if version == VERSION and dot else None


def parts(blob: Any, what: str) -> tuple[str, bytes]:
    found = key_id(blob)
    try:
        payload = base64.b64decode(str(blob).split(".", 2)[2], validate=True)
    except (IndexError, binascii.Error, ValueError):
        payload = b""
    if found is None or len(payload) <= NONCE_BYTES:
        raise UnreadableRecord(f"{what}: its sealed fields are not a {VERSION} sealed blob: "
                               "the record was altered or damaged")
    return found, payload


# ---------------------------------------------------------------- sealed collections
@dataclass
class ResealReport:
    """What `reseal` found and did, by record id."""

    key_id: str
    dry_run: bool
    current: list[str] = field(default_factory=list)
    """Already sealed with the sealing key: left as they are."""
    from_clear: list[str] = field(default_factory=list)
    """Were stored in clear (written before sealing existed)."""
    rotated: dict[str, list[str]] = field(default_factory=dict)
    """Were sealed with a former key (by its id)."""
    unreadable: list[str] = field(default_factory=list)
    """Why a record could not be opened (it is left as it is)."""
    changed: list[str] = field(default_factory=list)
    """Kept changing under other writers while resealing (their writes seal it)."""

    @property
    def written(self) -> int:
        return len(self.from_clear) + sum(len(ids) for ids in self.rotated.values())


class SealedCollection(ModelCollection[M]):
    """A collection whose `secret_fields` (by their stored names) are sealed into one
    blob per record; `shown` adds readable stand-ins (a masked URL) to the record.
    Records stored in clear before sealing existed still read, and are sealed when
    next written (or by `reseal`)."""

    def __init__(self, records: RecordStore, partition: str, model: type[M],
                 id_of: Callable[[M], str], noun: str, *, sealer: Sealer,
                 secret_fields: tuple[str, ...],
                 shown: Mapping[str, Callable[[M], Any]] | None = None) -> None:
        super().__init__(records, partition, model, id_of, noun)
        self.sealer = sealer
        self.secret_fields = secret_fields
        self.shown = dict(shown or {})

    def context(self, item_id: str) -> str:
        return f"{self.partition}/{item_id}"

    def dump(self, model: M) -> Item:
        item = to_item(model)
        secrets = {name: item.pop(name) for name in self.secret_fields if name in item}
        item.update({name: show(model) for name, show in self.shown.items()})
        if secrets:
            item[SEALED] = self.sealer.seal(secrets, self.context(self.id_of(model)))
        return item

    def load(self, item_id: str, item: Item) -> M:
        if SEALED not in item and self.shown.keys().isdisjoint(item):
            return self.model.model_validate(item)  # stored in clear, before sealing
        fields = {k: v for k, v in item.items() if k != SEALED and k not in self.shown}
        if SEALED in item:
            fields.update(self.sealer.open(item[SEALED], self.context(item_id),
                                           f"{self.noun} {item_id!r}"))
        return self.model.model_validate(fields)

    # ---- reseal: every record sealed with the sealing key
    def reseal(self, *, dry_run: bool = False) -> ResealReport:
        """Seal the records stored in clear or with a former key again with the sealing
        key (conditionally: a record changed meanwhile is read again, up to 3 times)."""
        report = ResealReport(self.sealer.sealing_key().id, dry_run)
        pending = self.records.query(self.partition)
        for _ in range(3):
            changed = self._reseal_pass(pending, report)
            if not changed:
                return report
            found = self.records.get_many(self.key(sk) for sk in changed)
            pending = [(key.sk, item) for key, item in found.items()]
        report.changed = [sk for sk, _ in pending]
        return report

    def _reseal_pass(self, pending: list[tuple[str, Item]], report: ResealReport) -> list[str]:
        plans: list[tuple[str, str | None, Update]] = []
        for sk, item in pending:
            found = key_id(item.get(SEALED))
            has_clear = any(name in item for name in self.secret_fields)
            if (found == report.key_id and not has_clear) or \
                    (SEALED not in item and not has_clear):
                report.current.append(sk)
                continue
            try:
                plans.append((sk, found, self._resealed(sk, item)))
            except (UnreadableRecord, ConfigurationError) as exc:
                report.unreadable.append(exc.message)
            except ValidationError as exc:
                wrong = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
                report.unreadable.append(f"{self.noun} {sk!r} is not a valid {self.noun} "
                                         f"({', '.join(wrong)})")
        written = [True] * len(plans) if report.dry_run else \
            self._write_each([update for _, _, update in plans])
        changed = []
        for (sk, found, _), ok in zip(plans, written, strict=True):
            if not ok:
                changed.append(sk)
            elif found is None:
                report.from_clear.append(sk)
            else:
                report.rotated.setdefault(found, []).append(sk)
        return changed

    def _resealed(self, sk: str, item: Item) -> Update:
        fresh = self.dump(self.load(sk, item))
        if SEALED in item:  # unchanged since read: the same blob
            guard: Condition = FieldIn(SEALED, (item[SEALED],))
        else:  # still in clear, with the values read
            guard = AllOf((FieldIn(SEALED, (None,)),
                           *(FieldIn(name, (item.get(name),)) for name in self.secret_fields)))
        return Update(self.key(sk),
                      set={k: v for k, v in fresh.items() if k == SEALED or k in self.shown},
                      remove=tuple(name for name in self.secret_fields if name in item),
                      condition=guard)

    def _write_each(self, updates: list[Update]) -> list[bool]:
        """Whether each update was written (False: its record changed meanwhile)."""
        written: list[bool] = []
        for start in range(0, len(updates), MAX_BATCH):
            chunk = updates[start:start + MAX_BATCH]
            try:
                self.records.write(chunk)
                written += [True] * len(chunk)
                continue
            except ConditionFailed:
                pass
            for update in chunk:
                try:
                    self.records.write([update])
                    written.append(True)
                except ConditionFailed:
                    written.append(False)
        return written
