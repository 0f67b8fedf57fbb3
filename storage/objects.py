"""Object store port and the embedded directory backend.

Keys are "/"-separated relative paths (``documents/<id>/document.json``). A put is atomic and verified: the
object becomes visible only complete, with its SHA-256 checked against what the caller meant to write. Putting
an object that already holds the same bytes writes nothing (re-runs are cheap). Originals are immutable: a put
that would change an existing original is refused (``storage.layout.is_immutable``).

Every backend (this one, ``storage.objects_s3.S3ObjectStore``) passes ``tests/test_object_store_contract.py``.
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
from storage.layout import is_immutable


class ObjectStore(Protocol):
    def put_file(self, key: str, source: Path, sha256: str) -> None:
        """Store ``source`` under ``key``; ``sha256`` is what the stored object must hash to."""

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``; returns its SHA-256."""

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; ``ObjectMissing`` if there is none."""

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to the local file ``dest`` (streamed; ``dest`` appears only complete)."""

    def sha256(self, key: str) -> str:
        """SHA-256 recomputed from the stored bytes now (a fixity check); ``ObjectMissing`` if absent."""

    def recorded_sha256(self, key: str) -> str | None:
        """The checksum recorded when the object was written (cheap), ``None`` if absent or unrecorded."""

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` (a folder such as ``documents/`` or ``""``), in path order (component by
        component, so ``abc/x`` comes before ``abc-2/x``)."""

    def delete(self, key: str) -> None:
        """Remove an object (no error if absent). Only maintenance and tests delete."""

    def locate(self, key: str) -> str:
        """Where the object is, for people: a file path or an ``s3://`` URL."""

    def describe(self) -> str:
        """The store itself, for messages and reports (no secrets)."""


class ChecksumMismatch(OSError):
    """What was written is not what was meant to be written."""


class ObjectMissing(FileNotFoundError):
    """No object under that key."""


class ImmutableObjectError(OSError):
    """A put would change an original (originals are written once and never modified)."""


class ObjectTooLarge(OSError):
    """A download stopped: the object is larger than the caller allowed (``S3ObjectStore.get_file(max_bytes=…)``)."""


class StoreUnavailable(OSError):
    """The store cannot be reached (after retries); the operation may succeed later."""


class StoreAccessDenied(PermissionError):
    """The store refused our credentials or permissions (not retried: waiting will not fix a wrong key)."""


def safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key: {key!r}")
    return key


_INCOMING = ".incoming"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: Path) -> int:
    """Delete entries named ``<name>.<pid>.<...>`` whose process no longer runs (a crashed run's temporary files
    and folders); entries of live processes (another run on the same archive) are left alone."""
    removed = 0
    for entry in folder.iterdir() if folder.is_dir() else []:
        parts = entry.name.split(".")
        if len(parts) < 3 or not parts[1].isdigit() or _pid_alive(int(parts[1])):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


class DirectoryObjectStore:
    """Embedded object store: a directory tree under ``root`` (temp file, fsync, verify, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / _INCOMING
        self._tmp.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self._tmp)

    def _part(self) -> Path:
        return self._tmp / f"{uuid.uuid4().hex}.{os.getpid()}.part"

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

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
        """True when ``key`` already holds these bytes; refuses to change an existing original."""
        path = self._path(key)
        if not path.is_file():
            return False
        if sha256_file(path) == sha256:
            return True
        if is_immutable(key):
            raise ImmutableObjectError(f"refusing to overwrite original {key} with different content")
        return False

    def put_file(self, key: str, source: Path, sha256: str) -> None:
        if self._already(key, sha256):
            return
        tmp = self._part()
        with source.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        self._commit(tmp, key, sha256)

    def put_bytes(self, key: str, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if self._already(key, sha256):
            return sha256
        tmp = self._part()
        with tmp.open("wb") as dst:
            dst.write(data)
            dst.flush()
            os.fsync(dst.fileno())
        self._commit(tmp, key, sha256)
        return sha256

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectMissing(key) from exc

    def get_file(self, key: str, dest: Path) -> None:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        shutil.copyfile(path, part)
        os.replace(part, dest)

    def sha256(self, key: str) -> str:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        return sha256_file(path)

    def recorded_sha256(self, key: str) -> str | None:
        path = self._path(key)
        return sha256_file(path) if path.is_file() else None  # a plain file keeps no checksum: compute it

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and not rel.startswith(_INCOMING + "/"):
                yield rel

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def locate(self, key: str) -> str:
        return str(self._path(key))

    def describe(self) -> str:
        return f"thư mục {self.root}"
