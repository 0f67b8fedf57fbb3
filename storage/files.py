"""Hồ sơ records: the TT 05/2025 file-level fields an archivist sets for a hồ sơ (mã hồ sơ, tiêu đề, phông,
thời gian bắt đầu/kết thúc, thời hạn bảo quản, ngôn ngữ, ghi chú), in the archive's catalog database.

Like the batch registry, the table lives in the catalog's database (``catalog.sqlite``, or the PostgreSQL database
of ``SOHOA_DATABASE_URL``; one SQL through ``storage.db``) and is created with ``IF NOT EXISTS``, so older
archives keep working; it is not rebuilt by ``sohoa reindex`` (which rewrites the catalog's own table only).
Which documents a hồ sơ holds is NOT stored here: that is each document's ``file_code`` / ``sequence`` (its
manifest, with the archivists' corrections applied; the catalog's columns). ``FileRecords`` is the port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from storage.catalog import ddl
from storage.db import Database, open_database

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
)"""
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sohoa:ho_so schema'))"  # concurrent creators wait


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


class DatabaseFileRecords:
    """Hồ sơ records in the table ``ho_so`` of the catalog's database: the SQLite file at ``target`` (the
    archive's ``catalog.sqlite``) or the PostgreSQL database of a ``postgresql://`` URL."""

    def __init__(self, target: Path | str) -> None:
        self._db: Database = open_database(target)
        with self._db.transaction():
            if self._db.dialect == "postgres":
                self._db.execute(_SCHEMA_LOCK)
            self._db.execute(ddl(_SCHEMA, self._db.dialect))

    def close(self) -> None:
        self._db.close()

    def get(self, file_code: str) -> FileRecord | None:
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM ho_so WHERE file_code = ?", (file_code,)).fetchone()
        return None if row is None else FileRecord(**dict(zip(_COLUMNS, row, strict=True)))

    def all(self) -> list[FileRecord]:
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM ho_so ORDER BY file_code").fetchall()
        return [FileRecord(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def save(self, record: FileRecord) -> None:
        values = record.model_dump()
        self._db.execute(_SAVE, [values[c] for c in _COLUMNS])


_SAVE = (f"INSERT INTO ho_so ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
         "ON CONFLICT (file_code) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:]))

SqliteFileRecords = DatabaseFileRecords  # the name callers knew when the records were in SQLite only
