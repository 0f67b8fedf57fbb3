"""Object store port and the embedded directory backend.

Keys are "/"-separated relative paths (``documents/<id>/document.json``). A put is atomic and verified: the
object is written to a temporary name, fsynced, its SHA-256 checked, then renamed into place, so an object is
visible only complete. Existing objects with the same checksum are left untouched (re-runs write nothing).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from schemas.checksums import sha256_file


class ObjectStore(Protocol):
    def put_file(self, key: str, source: Path, sha256: str) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> Iterator[str]: ...
    def delete(self, key: str) -> None: ...
    def locate(self, key: str) -> str: ...


class ChecksumMismatch(OSError):
    """What was written is not what was meant to be written."""


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key: {key!r}")
    return key


class DirectoryObjectStore:
    """Embedded object store: a directory tree under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".incoming"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def _commit(self, tmp: Path, key: str, sha256: str) -> None:
        if sha256_file(tmp) != sha256:
            tmp.unlink(missing_ok=True)
            raise ChecksumMismatch(f"checksum mismatch writing {key}")
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _already(self, key: str, sha256: str) -> bool:
        path = self._path(key)
        return path.is_file() and sha256_file(path) == sha256

    def put_file(self, key: str, source: Path, sha256: str) -> None:
        if self._already(key, sha256):
            return
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        with source.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        self._commit(tmp, key, sha256)

    def put_bytes(self, key: str, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if self._already(key, sha256):
            return sha256
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        with tmp.open("wb") as dst:
            dst.write(data)
            dst.flush()
            os.fsync(dst.fileno())
        self._commit(tmp, key, sha256)
        return sha256

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and not rel.startswith(".incoming/"):
                yield rel

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def locate(self, key: str) -> str:
        return str(self._path(key))
