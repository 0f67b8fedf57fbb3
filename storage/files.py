"""Hồ sơ records: the TT 05/2025 file-level fields an archivist sets for a hồ sơ (mã hồ sơ, tiêu đề, phông,
thời gian bắt đầu/kết thúc, thời hạn bảo quản, ngôn ngữ, ghi chú), in the archive's catalog database.

Like the batch registry, the table lives in ``catalog.sqlite`` and is created with ``IF NOT EXISTS``, so older
archives keep working; it is not rebuilt by ``sohoa reindex`` (which rewrites the catalog's own table only).
Which documents a hồ sơ holds is NOT stored here: that is each document's ``file_code`` / ``sequence`` (its
manifest, with the archivists' corrections applied; the catalog's columns). ``FileRecords`` is the port.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ho_so (
    file_code TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    fonds TEXT,
    start_date TEXT,
    end_date TEXT,
    maintenance TEXT,
    language TEXT,
    note TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class FileRecord(BaseModel):
    """One hồ sơ as an archivist described it (the TT 05 fields sohoa keeps; dates ISO ``YYYY-MM-DD``)."""

    file_code: str  # mã hồ sơ
    title: str  # tiêu đề hồ sơ
    fonds: str | None = None  # phông lưu trữ
    start_date: str | None = None  # thời gian bắt đầu
    end_date: str | None = None  # thời gian kết thúc
    maintenance: str | None = None  # thời hạn bảo quản (TT 05 code and words, e.g. "01 - Vĩnh viễn")
    language: str | None = None  # ngôn ngữ
    note: str | None = None  # ghi chú
    created_by: str = ""
    created_at: str = ""
    updated_by: str = ""
    updated_at: str = ""


_COLUMNS = ("file_code", "title", "fonds", "start_date", "end_date", "maintenance", "language", "note",
            "created_by", "created_at", "updated_by", "updated_at")


class FileRecords(Protocol):
    """Where hồ sơ records are kept."""

    def get(self, file_code: str) -> FileRecord | None: ...

    def all(self) -> list[FileRecord]: ...

    def save(self, record: FileRecord) -> None:
        """Add or replace the record of ``record.file_code``."""

    def close(self) -> None: ...


class SqliteFileRecords:
    """Hồ sơ records in the table ``ho_so`` of the SQLite file ``path`` (the archive's ``catalog.sqlite``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, file_code: str) -> FileRecord | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM ho_so WHERE file_code = ?",
                                     (file_code,)).fetchone()
        return None if row is None else FileRecord(**dict(zip(_COLUMNS, row, strict=True)))

    def all(self) -> list[FileRecord]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM ho_so ORDER BY file_code").fetchall()
        return [FileRecord(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def save(self, record: FileRecord) -> None:
        values = record.model_dump()
        with self._lock:
            self._conn.execute(f"INSERT OR REPLACE INTO ho_so ({', '.join(_COLUMNS)}) "
                               f"VALUES ({', '.join('?' for _ in _COLUMNS)})", [values[c] for c in _COLUMNS])
