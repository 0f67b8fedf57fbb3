"""Verifying an archive's audit trail (``sohoa audit verify``): the chain and its head against every anchor,
a missing key, database or table, a wiped or late-started trail, a missing store anchor. The design:
``flows.audit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from flows.audit_anchor import (
    ANCHOR_FILE,
    AUDIT_FILE,
    INIT_ACTION,
    INIT_FIX,
    PG_RESTORE_FIX,
    RESTORE_FIX,
    STORE_ANCHOR,
    archive_object_store,
    catalog_facts,
    documents_in_catalog,
    key_file,
    key_fix,
    open_trail,
    trail_database,
)
from schemas.settings import Settings
from storage.audit import (
    Anchor,
    AuditEntry,
    AuditKeyError,
    AuditKeyMissing,
    AuditLogMissing,
    AuditVerification,
    load_key,
    trail_exists,
)
from storage.db import driver_errors
from storage.layout import FIXITY_REPORTS
from storage.objects import ObjectMissing, ObjectStore


def verify_audit(settings: Settings, stores: Sequence[ObjectStore] = ()) -> AuditVerification:
    """Verify the archive's trail: the chain and its head, against the anchor file, the anchor in the archive's
    object store and in ``stores`` (backups); a missing key, database or table, an empty trail in an archive
    with documents, a trail that began after the archive's first catalogued document or fixity run, and a missing
    store anchor where fixity runs or backups have written one, are problems. A chain re-initialised by
    ``sohoa audit init`` is compared only with the anchors its key verifies (the others are the superseded
    chain's), and its late start is the recorded incident. Creates nothing."""
    root = settings.archive_path()
    db, path, database = root / AUDIT_FILE, key_file(settings), trail_database(settings)
    restore = RESTORE_FIX if database is None else PG_RESTORE_FIX
    result = AuditVerification(entries=0)
    anchors: list[Anchor] = []
    archive_store = archive_object_store(settings)
    store_anchor_missing = False
    for store in [s for s in (archive_store, *stores) if s is not None]:
        where = f"kho {store.describe()} ({STORE_ANCHOR})"
        try:
            anchors.append(Anchor.parse(store.get_bytes(STORE_ANCHOR), where))
        except ObjectMissing:
            store_anchor_missing = store_anchor_missing or store is archive_store
            continue
        except ValueError:
            result.add("anchor", f"bản ghi neo trong {where} không đọc được: bị sửa", fix=restore)
    documents = documents_in_catalog(settings)
    key: bytes | None = None
    key_problem: str | None = None
    try:
        key = load_key(path)
    except AuditKeyError as exc:
        key_problem = exc.reason
        stored = db.exists() if database is None else trail_exists(db, root / ANCHOR_FILE, database=database)
        if isinstance(exc, AuditKeyMissing) and not (stored or (root / ANCHOR_FILE).exists() or anchors
                                                     or result.problems or documents):
            return result  # a brand-new archive: no trail yet, nothing to verify
    if key_problem is not None:
        result.add("key", f"khóa nhật ký {path}: {key_problem}; không kiểm được mã băm các mục", fix=key_fix(path))
    if database is None and not db.is_file():
        result.add("missing", f"mất tệp nhật ký {db}" + (f" (kho có {documents} văn bản)" if documents else ""),
                   fix=restore)
        return result
    try:
        log = open_trail(root, key)
        try:
            first = next(log.entries(limit=1), None)
            if first is not None and first.action == INIT_ACTION and key is not None:
                anchors = [a for a in anchors if log.verifies(a)]  # the others: the superseded chain's
            checked = log.verify(anchors)
            backed_up = next(log.entries(action="backup", limit=1), None) is not None
            noted = log.store_anchored()
        finally:
            log.close()
    except AuditLogMissing:  # PostgreSQL: no table of the trail at all
        result.add("missing", "mất các bảng nhật ký trong PostgreSQL (SOHOA_DATABASE_URL)"
                   + (f" (kho có {documents} văn bản)" if documents else ""), fix=restore)
        return result
    except driver_errors() as exc:
        result.add("unreadable", f"không đọc được {db.name if database is None else 'nhật ký'}: {exc}",
                   fix=restore)
        return result
    result.entries, result.anchors = checked.entries, checked.anchors
    result.problems += [p if "fix" in p else p | {"fix": restore} for p in checked.problems]
    if documents and not checked.entries:
        result.add("wiped", f"kho có {documents} văn bản nhưng nhật ký kiểm soát không còn mục nào: nhật ký bị xóa",
                   fix=restore)
    if first is not None and first.action != INIT_ACTION:
        _check_start(result, settings, archive_store, first)
    if store_anchor_missing and archive_store is not None:
        reasons = (["kho có báo cáo kiểm tra toàn vẹn"] if next(archive_store.list(FIXITY_REPORTS), None) else []) + (
            ["nhật ký ghi đã sao lưu"] if backed_up else []) + (
            [f"nhật ký ghi đã neo vào kho ở mục {noted}"] if noted is not None else [])
        if reasons:
            result.add("anchor", f"mất bản ghi neo {STORE_ANCHOR} trong kho {archive_store.describe()} dù "
                                 f"{' và '.join(reasons)}: bản ghi neo bị xóa", fix=restore)
    return result


def _floor_seconds(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).replace(microsecond=0)


def _archive_began(settings: Settings, store: ObjectStore | None) -> list[tuple[datetime, str]]:
    """When the archive's history shows activity at the latest: its oldest catalog row, its first kept fixity
    report (``audit/fixity/<time>.json``)."""
    found: list[tuple[datetime, str]] = []
    oldest = catalog_facts(settings)[1]
    if oldest and (moment := _floor_seconds(oldest)) is not None:
        found.append((moment, "văn bản đầu tiên trong danh mục"))
    if store is not None:
        report = next(store.list(FIXITY_REPORTS), None)
        if report is not None:
            try:
                moment = datetime.strptime(report.rsplit("/", 1)[-1].removesuffix(".json"), "%Y%m%dT%H%M%S%fZ")
            except ValueError:
                pass
            else:
                found.append((moment.replace(tzinfo=UTC, microsecond=0), "lần kiểm tra toàn vẹn đầu tiên"))
    return found


def _check_start(result: AuditVerification, settings: Settings, store: ObjectStore | None,
                 first: AuditEntry) -> None:
    """A trail that began after the archive's history did: the trail before it was wiped or replaced (every
    digitisation and fixity run is recorded before it happens)."""
    began = _floor_seconds(first.at)
    if began is None:
        return
    for moment, what in _archive_began(settings, store):
        if moment < began:
            result.add("late_start", f"mục đầu tiên của nhật ký ({began:%Y-%m-%d %H:%M:%S} UTC) muộn hơn {what} "
                                     f"({moment:%Y-%m-%d %H:%M:%S} UTC): phần nhật ký trước đó đã bị xóa hoặc thay",
                       seq=first.seq, fix=INIT_FIX)
