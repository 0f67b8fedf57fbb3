"""Where an archive's audit trail lives and where its head is anchored: the trail's files and key file, reading
it without creating anything, and its head written to (and copied between) object stores (``audit/anchor.json``).
The design: ``flows.audit``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flows.wiring import open_audit_log
from schemas.settings import Settings
from storage.audit import Anchor, AuditEntry, AuditKeyError, AuditLog, AuditLogMissing, anchor_verifies, load_key
from storage.db import driver_errors
from storage.objects import DirectoryObjectStore, ObjectMissing, ObjectStore

AUDIT_FILE = "audit.sqlite3"
KEY_FILE = "audit.key"
ANCHOR_FILE = "audit.anchor"
STORE_ANCHOR = "audit/anchor.json"  # the head as of the last fixity run or backup, in the object store
RESTORE_FIX = ("khôi phục audit.sqlite3 cùng audit.anchor (và audit.key) từ bản sao lưu thư mục kho, rồi chạy lại "
               "`sohoa audit verify`; báo ngay cho người phụ trách an ninh: nhật ký kiểm soát đã bị can thiệp")
PG_RESTORE_FIX = ("khôi phục các bảng audit_entries, audit_head của cơ sở dữ liệu SOHOA_DATABASE_URL từ bản sao lưu "
                  "PostgreSQL (pg_dump) cùng audit.anchor (và audit.key), rồi chạy lại `sohoa audit verify`; báo ngay "
                  "cho người phụ trách an ninh: nhật ký kiểm soát đã bị can thiệp")
INIT_FIX = ("khôi phục audit.sqlite3 cùng audit.anchor và audit.key từ bản sao lưu thư mục kho rồi chạy "
            "`sohoa audit verify`; báo ngay cho người phụ trách an ninh. Chỉ khi sự cố đã được xác nhận và nhật ký "
            "cũ không khôi phục được, người phụ trách khởi tạo lại có ghi nhận: "
            "`sohoa audit init --incident \"<số biên bản, mô tả sự cố>\"`")
INIT_ACTION = "audit.init"  # the first entry of a chain re-initialised after a confirmed incident
START_ACTION = "audit.start"  # the first entry of a chain started beside an archive's data without its trail
KEY_FILES: dict[Path, Path] = {}  # archive -> its key file, as the settings of this process gave it
# archive -> the PostgreSQL URL its trail's tables live in (SOHOA_DATABASE_URL), as the settings of this process gave
# it (``trail_database``); an archive not in it keeps its trail in ``audit.sqlite3``
TRAIL_DATABASES: dict[Path, str] = {}


def trail_database(settings: Settings) -> str | None:
    """The PostgreSQL URL of the archive's trail (``None``: the SQLite file), noted for the calls that only know
    the archive's folder (``open_trail``)."""
    root = settings.archive_path().resolve()
    if settings.database_url is None:
        TRAIL_DATABASES.pop(root, None)
        return None
    TRAIL_DATABASES[root] = settings.database_url.get_secret_value()
    return TRAIL_DATABASES[root]


def database_of(archive: Path) -> str | None:
    return TRAIL_DATABASES.get(archive.resolve())


def unreadable_trail() -> tuple[type[Exception], ...]:
    """What opening or reading a trail raises when there is none, or it cannot be read (either database)."""
    return (AuditLogMissing, *driver_errors())


def open_trail(archive: Path, key: bytes | None, *, create: bool = False, **anchoring: Any) -> AuditLog:
    """The trail of the archive in ``archive``: its tables where ``trail_database`` put them, its anchor file
    beside the archive. ``create=False``: nothing is created (``AuditLogMissing``)."""
    return open_audit_log(archive / AUDIT_FILE, key, create=create, anchor=archive / ANCHOR_FILE,
                          database=database_of(archive), **anchoring)


def key_file(settings: Settings) -> Path:
    return settings.audit_key_file or settings.archive_path() / KEY_FILE


def key_fix(path: Path) -> str:
    return (f"khôi phục tệp khóa {path} từ bản sao lưu, hoặc gắn lại ổ chứa khóa (SOHOA_AUDIT_KEY_FILE); "
            "không tạo khóa mới: các mục đã ghi sẽ không còn kiểm chứng được")


def read_entries(settings: Settings, **filters: object) -> list[AuditEntry]:
    """Entries of the archive's trail (``AuditLog.entries`` filters), read without creating anything (no key is
    needed to read; a missing database has no entries)."""
    root = settings.archive_path()
    trail_database(settings)
    try:
        log = open_trail(root, None)
    except AuditLogMissing:
        return []
    try:
        return list(log.entries(**filters))  # type: ignore[arg-type]
    finally:
        log.close()


def archive_of_store(store: ObjectStore) -> Path | None:
    """The archive folder of an embedded store (``ARCHIVE/objects``), else ``None``."""
    from flows.wiring import OBJECTS_DIR

    if isinstance(store, DirectoryObjectStore) and store.root.name == OBJECTS_DIR:
        return store.root.parent
    return None


def _head_of(archive: Path) -> tuple[AuditLog, Anchor] | None:
    try:
        log = open_trail(archive, None)
    except unreadable_trail():
        return None
    try:
        head = log.head()
    except driver_errors():
        head = None
    if head is None:
        log.close()
        return None
    return log, head


def anchor_in_store(archive: Path, store: ObjectStore) -> str:
    """Write the head of ``archive``'s audit trail to ``store`` (``audit/anchor.json``). An anchor already there
    that this chain does not extend (longer, or another hash at its sequence number) is evidence of a wipe or a
    rollback: it is kept, for ``sohoa audit verify`` to report. Needs no key (the head carries its own MAC).
    Returns ``"written"``, ``"unchanged"``, ``"kept"`` or ``"none"`` (no trail here)."""
    found = _head_of(archive)
    if found is None:
        return "none"
    log, head = found
    try:
        try:
            existing: Anchor | None = Anchor.parse(store.get_bytes(STORE_ANCHOR))
        except ObjectMissing:
            existing = None
        except ValueError:
            return "kept"  # unreadable: someone wrote it; leave it to be reported
        if existing is not None:
            if (existing.seq > head.seq or log.hash_at(existing.seq) != existing.last) and not _superseded(
                    archive, log, existing):
                return "kept"
            if (existing.seq, existing.last, existing.mac) == (head.seq, head.last, head.mac):
                return "unchanged"
        store.put_bytes(STORE_ANCHOR, (head.to_json() + "\n").encode("ascii"))
        return "written"
    except driver_errors():
        return "none"
    finally:
        log.close()


def _superseded(archive: Path, log: AuditLog, anchor: Anchor) -> bool:
    """Whether ``anchor`` belongs to a chain superseded by ``sohoa audit init``: this chain begins with an
    ``audit.init`` entry and the anchor's MAC does not verify under this chain's key."""
    first = next(log.entries(limit=1), None)
    if first is None or first.action != INIT_ACTION:
        return False
    try:
        key = load_key(KEY_FILES.get(archive.resolve(), archive / KEY_FILE))
    except AuditKeyError:
        return False
    return not anchor_verifies(key, anchor)


def copy_anchor(source: ObjectStore, target: ObjectStore, archive: Path | None) -> None:
    """A backup's anchors: the archive's current head into both stores (``anchor_in_store``), or, backing up a
    store with no audit trail beside it (a restore from a backup), its anchor copied where there is none."""
    if archive is not None and anchor_in_store(archive, source) != "none":
        anchor_in_store(archive, target)
        return
    if not target.exists(STORE_ANCHOR):
        try:
            body = source.get_bytes(STORE_ANCHOR)
        except ObjectMissing:
            return
        target.put_bytes(STORE_ANCHOR, body)


def archive_object_store(settings: Settings) -> ObjectStore | None:
    from flows.wiring import OBJECTS_DIR, build_object_store

    if settings.object_store != "s3" and not (settings.archive_path() / OBJECTS_DIR).is_dir():
        return None  # nothing stored yet (and opening the embedded store would create its folder)
    return build_object_store(settings)


def catalog_facts(settings: Settings) -> tuple[int, str | None]:
    """The documents in the archive's catalog and when its oldest row was written ((0, None) when there is no
    catalog), read without creating or changing it: the SQLite file, or the PostgreSQL database of
    ``SOHOA_DATABASE_URL``."""
    from flows.wiring import CATALOG_FILE
    from storage.catalog import Catalog, catalog_exists

    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        if not catalog_exists(url):
            return 0, None
        catalog = Catalog(url)  # metadata only: no search index is opened
        try:
            return catalog.count(), catalog.first_catalogued()
        finally:
            catalog.close()
    path = settings.archive_path() / CATALOG_FILE
    if not path.is_file():
        return 0, None
    db = sqlite3.connect(path, timeout=30.0)
    try:
        row = db.execute("SELECT count(*), min(updated_at) FROM documents").fetchone()
        return int(row[0]), None if row[1] is None else str(row[1])
    except sqlite3.Error:
        return 0, None
    finally:
        db.close()


def documents_in_catalog(settings: Settings) -> int:
    """Documents in the archive's catalog (0 when there is none), read without creating or changing it."""
    return catalog_facts(settings)[0]
