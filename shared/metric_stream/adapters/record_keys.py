"""Where the record keys come from: `METRIC_STREAM_RECORD_KEY` seals (and opens),
`METRIC_STREAM_RECORD_KEYS_OLD` only open. Either may come from the environment or
from the Secrets Manager secret (`adapters/secrets.py`).

With no key configured, a machine of one's own (the embedded backend, or aws against
an emulator on loopback) makes one once, `HOME/record.key` (mode 0600), so that
`metric-stream run --demo` works with nothing set; once there, that file also opens
what it sealed after a key is configured (`metric-stream reseal` moves those records
to the configured key). The aws backend on AWS itself refuses instead: a key made
on one Lambda would not open records on the next.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from metric_stream.errors import ConfigurationError
from metric_stream.services.outbound import is_loopback
from metric_stream.settings import Settings
from metric_stream.storage.sealing import MAKE_ONE, Keyring, RecordKey

log = logging.getLogger(__name__)

REFUSAL = ("METRIC_STREAM_RECORD_KEY is not set: the aws backend keeps delivery endpoints' "
           f"URLs and signing secrets sealed with it. Set it ({MAKE_ONE}) in the "
           "environment or in the secret METRIC_STREAM_SECRETS_ID names")


def configured_keys(settings: Settings) -> tuple[RecordKey | None, list[RecordKey]]:
    """The configured sealing key and former keys (parsed: a malformed one is a
    `ConfigurationError` naming its setting, never its value)."""
    sealing = None
    if settings.record_key is not None:
        sealing = RecordKey.parse(settings.record_key.get_secret_value(),
                                  "METRIC_STREAM_RECORD_KEY")
    old_text = settings.record_keys_old.get_secret_value() if settings.record_keys_old else ""
    old = [RecordKey.parse(text, f"METRIC_STREAM_RECORD_KEYS_OLD (key {n})")
           for n, text in enumerate(filter(None, (t.strip() for t in old_text.split(","))), 1)]
    return sealing, old


def keeps_a_key_file(settings: Settings) -> bool:
    """The embedded backend, or aws pointed at an emulator on loopback (moto)."""
    if settings.backend == "embedded":
        return True
    host = urlsplit(settings.aws_endpoint_url or "").hostname
    return bool(host) and is_loopback(host or "")


def record_keyring(settings: Settings, sealing: bool) -> Keyring:
    """The keys now; with `sealing` and no key configured, the key file is made."""
    configured, old = configured_keys(settings)
    if not keeps_a_key_file(settings):
        return Keyring.of(configured, old, REFUSAL)
    path = settings.record_key_path
    from_file = read_key_file(path)
    if from_file is None and sealing and configured is None:
        from_file = make_key_file(path)
    if configured is None:
        return Keyring.of(from_file, old, f"no record key: {path} could not be made")
    return Keyring.of(configured, [*old, *filter(None, [from_file])])


def read_key_file(path: Path) -> RecordKey | None:
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the record key file {path}: {exc.strerror}",
                                 field="record_key") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the record key file %s can be read by others: chmod 600 it", path)
    return RecordKey.parse(text, f"the record key file {path}")


def make_key_file(path: Path) -> RecordKey:
    """A new key written to `path` (0600) unless another process wrote one first: the
    file appears whole or not at all, and the first one made is kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".record.key.")
        try:
            with os.fdopen(handle, "w") as out:  # mkstemp made it 0600
                out.write(RecordKey.generate() + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, path)
                log.info("made the record key %s (keep it with the database: it opens the "
                         "delivery endpoints' secrets)", path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise ConfigurationError(f"cannot make the record key file {path}: {exc.strerror}; "
                                 f"set METRIC_STREAM_RECORD_KEY ({MAKE_ONE})",
                                 field="record_key") from None
    found = read_key_file(path)
    assert found is not None
    return found
