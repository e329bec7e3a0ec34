"""The embedded backend's blobs: plain files under the data folder, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from metric_stream.errors import NotFound, StorageUnavailable
from metric_stream.ports import BlobStore


class FileBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / key

    def create(self) -> list[str]:
        if self.root.is_dir():
            return []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from exc
        return [f"blob folder {self.root}"]

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        tmp_name = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)  # readers see the old file or the new one, never half
        except OSError as exc:
            if tmp_name:
                Path(tmp_name).unlink(missing_ok=True)
            raise StorageUnavailable(f"cannot write blob {key!r} under {self.root}: "
                                     f"{exc.strerror or exc}") from exc

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"blob {key!r} does not exist", field="key") from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read blob {key!r}: {exc.strerror}") from exc

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete blob {key!r}: {exc.strerror}") from exc

    def _list(self, prefix: str) -> Iterable[str]:
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return found

    def _url(self, key: str, expires_in: timedelta) -> str:
        return self._path(key).as_uri()
