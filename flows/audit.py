"""The audit trail at the edges: open it for an archive, record CLI actions, verify, anchor and export it.

Every read path that shows documents to a person (search, show, export, web pages and downloads) and every
change (edits, users and roles, batch actions) records an entry before it answers, so an action that cannot be
recorded does not happen. The CLI's actor is ``--as USER`` or the operating-system user; its source is
``cli@<host>``.

The trail cannot be erased quietly (``verify_audit``): its head is anchored in ``ARCHIVE/audit.anchor`` with every
append and in the object store (``audit/anchor.json``) with every fixity run and backup (``anchor_in_store``) and
at least every ``Settings.audit_anchor_every`` appends or ``audit_anchor_every_s`` seconds; an archive whose
catalog holds documents has a trail (digitising records itself), so an empty trail there was wiped; a missing
database, dropped table or missing key is a problem, and verifying never creates a key. A trail whose first entry
is younger than the archive's first catalogued document or fixity run, and a missing store anchor where the store
shows fixity runs (or the trail backups), are problems too.

A new chain never starts quietly over an old one (``open_audit``): when the trail has no entry but the archive
shows a past one (``past_trail_evidence``: catalogued documents, stored objects, a store anchor, fixity reports,
corrections, register entries, an anchor file), the action stops (exit 7) while the key or any remnant of the old
trail is there. Only a copy of an archive's data without its trail and key (a test copy, a backup folder used to
restore) may start one, and its first entry (``audit.start``) names what it found; ``verify_audit`` then reports
its late start. ``init_trail`` (``sohoa audit init --incident``) is the explicit, recorded re-initialisation after
a confirmed incident: the old files and key are set aside, a new key is made, and the first entry
(``audit.init``) records the incident; anchors the new key does not verify belong to the superseded chain.

This module opens and records to the trail; ``flows.audit_anchor`` holds where it lives, reading it and its
anchors in the object store, ``flows.audit_verify`` its verification, ``flows.audit_views`` listing, exports and
what a reader may see. Their public names are re-exported here.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flows.audit_anchor import (
    ANCHOR_FILE,
    AUDIT_FILE,
    INIT_ACTION,
    INIT_FIX,
    KEY_FILE,
    KEY_FILES,
    RESTORE_FIX,
    START_ACTION,
    STORE_ANCHOR,
    anchor_in_store,
    archive_object_store,
    archive_of_store,
    copy_anchor,
    documents_in_catalog,
    key_file,
    key_fix,
    open_trail,
    read_entries,
    trail_database,
)
from flows.audit_verify import verify_audit
from flows.audit_views import (
    DOC_ID_RE,
    EXPORT_FIELDS,
    WITHHELD,
    export_entries,
    filing_filter,
    list_line,
    readable_entries,
    visible_audit,
    write_export,
)
from flows.wiring import open_audit_log
from schemas.errors import ConfigError, ExitCode, SohoaError
from schemas.settings import Settings
from storage.audit import (
    AuditEntry,
    AuditKeyError,
    AuditKeyMissing,
    AuditLog,
    has_entries,
    load_key,
    load_or_create_key,
    trail_exists,
)
from storage.layout import COPY_REGISTER, CORRECTIONS, DOCUMENTS, FIXITY_REPORTS, QUARANTINE
from storage.objects import ObjectMissing, ObjectStore


class AuditTrailError(SohoaError):
    """The audit trail cannot be used as it is (lost key): nothing is recorded, so nothing is done."""

    exit_code = ExitCode.PRESERVATION_PROBLEMS


def open_audit(settings: Settings) -> AuditLog:
    """The archive's audit trail, to append to. A brand-new trail gets its key here; an existing one (entries or
    anchors) whose key is missing is an ``AuditTrailError``: a new key would hide whatever happened to the old.
    A trail without entries in an archive that shows a past one (``past_trail_evidence``) is an
    ``AuditTrailError`` too, unless neither the key nor any remnant of the trail is left (a copy of the data
    alone): then the new chain's first entry (``audit.start``) records what was found."""
    root = settings.archive_path()
    db, anchor, path = root / AUDIT_FILE, root / ANCHOR_FILE, key_file(settings)
    database = trail_database(settings)
    key: bytes | None
    try:
        key = load_key(path)
    except AuditKeyMissing as exc:
        if trail_exists(db, anchor, database=database):
            raise AuditTrailError(f"Mất khóa nhật ký kiểm soát {path} trong khi nhật ký đã có mục: không ghi được "
                                  "nhật ký, thao tác không được thực hiện", fix=key_fix(path)) from exc
        key = None
    except AuditKeyError as exc:
        raise AuditTrailError(f"Khóa nhật ký kiểm soát không dùng được ({exc.reason}): không ghi được nhật ký, "
                              "thao tác không được thực hiện", fix=key_fix(path)) from exc
    started_beside: list[str] | None = None
    if not has_entries(db, database=database):
        evidence = past_trail_evidence(settings)
        if evidence:
            if key is not None or settings.audit_key_file is not None or trail_exists(db, anchor, database=database):
                raise AuditTrailError(
                    "Nhật ký kiểm soát không còn mục nào trong khi kho có dấu vết của nhật ký cũ ("
                    + "; ".join(evidence) + "): nhật ký đã bị xóa hoặc thay. Không bắt đầu chuỗi mới: thao tác "
                    "không được thực hiện", fix=INIT_FIX)
            started_beside = evidence
    if key is None:
        key = load_or_create_key(path)
    KEY_FILES[root] = path
    log = open_trail(root, key, create=True, store_anchor=_store_anchoring(settings),
                     store_every=settings.audit_anchor_every, store_seconds=settings.audit_anchor_every_s)
    if started_beside is not None:
        try:
            log.append(actor=cli_actor(), source=cli_source(), action=START_ACTION,
                       details={"evidence": started_beside,
                                "note": "chuỗi mới bắt đầu bên dữ liệu đã có, không có nhật ký và khóa cũ"})
        except BaseException:
            log.close()
            raise
    return log


_STORE_EVIDENCE = (
    (FIXITY_REPORTS, "báo cáo kiểm tra toàn vẹn trong kho (audit/fixity/)"),
    (CORRECTIONS, "bản ghi chỉnh sửa trong kho (audit/corrections/)"),
    (COPY_REGISTER, "sổ quản lý sao, chụp trong kho (audit/copy-register/)"),
    (QUARANTINE, "tài liệu bị giữ lại trong kho (audit/quarantine/)"),
)


def past_trail_evidence(settings: Settings) -> list[str]:
    """What shows that the archive had an audit trail (every action that leaves these records is recorded first):
    remnants of the trail, catalogued documents, the store anchor, fixity reports, corrections, register and
    quarantine entries, stored documents (listed only when nothing else was found: the costliest). Creates
    nothing; empty for a brand-new archive."""
    root = settings.archive_path()
    found: list[str] = []
    if trail_exists(root / AUDIT_FILE, root / ANCHOR_FILE, database=trail_database(settings)):
        found.append("phần còn lại của nhật ký cũ (audit.anchor hoặc bản ghi đầu chuỗi)")
    if documents_in_catalog(settings):
        found.append("danh mục đã có văn bản (catalog.sqlite)")
    store = archive_object_store(settings)
    if store is not None:
        if store.exists(STORE_ANCHOR):
            found.append(f"bản ghi neo nhật ký trong kho ({STORE_ANCHOR})")
        found += [label for prefix, label in _STORE_EVIDENCE if next(store.list(prefix), None) is not None]
        if not found and next(store.list(DOCUMENTS), None) is not None:
            found.append("văn bản đã lưu trong kho (documents/)")
    return found


def _store_anchoring(settings: Settings) -> Callable[[], bool]:
    """The hook that writes the trail's head to the archive's object store (``anchor_in_store``); ``False`` while
    the archive has no store yet. The store is built once, when first needed."""
    root = settings.archive_path()
    stores: list[ObjectStore] = []

    def write() -> bool:
        if not stores:
            store = archive_object_store(settings)
            if store is None:
                return False
            stores.append(store)
        return anchor_in_store(root, stores[0]) != "none"

    return write


def init_trail(settings: Settings, incident: str, *, actor: str) -> AuditEntry:
    """Start a new chain after a confirmed incident (``sohoa audit init --incident``). Refused (exit 4) while the
    trail has entries, unless its first entry is an ``audit.start`` (a chain started beside old data). The old
    database, anchor file and key are set aside (renamed ``*.<time>.superseded``, never deleted), a new key is
    made, and the first entry records the incident, the evidence of the old trail and the store anchor it leaves;
    the store anchor is then the new head."""
    root = settings.archive_path()
    db, anchor, path = root / AUDIT_FILE, root / ANCHOR_FILE, key_file(settings)
    incident = " ".join(incident.split())
    if not incident:
        raise ConfigError("Cần ghi rõ sự cố (--incident)", fix="vd. --incident \"Biên bản số 12/BB: mất nhật ký\"")
    if trail_database(settings) is not None:
        raise ConfigError("Khởi tạo lại nhật ký kiểm soát nằm trong PostgreSQL chưa được hỗ trợ",
                          fix="đổi tên các bảng audit_entries, audit_head, audit_store_anchor (và chỉ mục của chúng) "
                              "trong cơ sở dữ liệu SOHOA_DATABASE_URL để lưu lại, rồi chạy lại lệnh")
    if has_entries(db):
        first = next(iter(read_entries(settings, limit=1)), None)
        if first is None or first.action != START_ACTION:
            count = len(read_entries(settings))
            raise ConfigError(f"Nhật ký kiểm soát đang có {count} mục: không khởi tạo lại",
                              fix="sohoa audit init chỉ dùng khi nhật ký đã mất và không khôi phục được; kiểm tra "
                                  "bằng sohoa audit verify")
    evidence = past_trail_evidence(settings)
    store = archive_object_store(settings)
    old_anchor: object = None
    if store is not None:
        try:
            body = store.get_bytes(STORE_ANCHOR).decode("utf-8", "replace")
        except ObjectMissing:
            body = ""
        try:
            old_anchor = json.loads(body) if body else None
        except ValueError:
            old_anchor = body
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    set_aside: list[str] = []
    for current in (db, anchor, path):
        for suffix in (("", "-wal", "-shm") if current == db else ("",)):
            source = Path(f"{current}{suffix}")
            if source.exists():
                target = current.with_name(f"{current.name}.{stamp}.superseded{suffix}")
                source.rename(target)
                set_aside.append(target.name)
    key = load_or_create_key(path)  # a new key: the superseded chain's anchors no longer verify under it
    KEY_FILES[root] = path
    log = open_audit_log(db, key, anchor=anchor)
    try:
        entry = log.append(actor=actor, source=cli_source(), action=INIT_ACTION,
                           details={"incident": incident, "evidence": evidence, "set_aside": set_aside,
                                    "superseded_store_anchor": old_anchor})
        head = log.head()
    finally:
        log.close()
    if store is not None and head is not None:
        store.put_bytes(STORE_ANCHOR, (head.to_json() + "\n").encode("ascii"))
    return entry


def cli_actor(as_user: str | None = None) -> str:
    if as_user:
        return as_user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cli_source() -> str:
    return f"cli@{socket.gethostname()}"


def record(settings: Settings, action: str, target: str = "", *, actor: str | None = None,
           source: str | None = None, details: dict[str, object] | None = None) -> AuditEntry:
    """Append one entry to the archive's audit trail (opened and closed here)."""
    log = open_audit(settings)
    try:
        return log.append(actor=actor or cli_actor(), source=source or cli_source(), action=action, target=target,
                          details=details)
    finally:
        log.close()


__all__ = [
    "ANCHOR_FILE", "AUDIT_FILE", "DOC_ID_RE", "EXPORT_FIELDS", "INIT_ACTION", "INIT_FIX", "KEY_FILE", "RESTORE_FIX",
    "START_ACTION", "STORE_ANCHOR", "WITHHELD", "AuditTrailError", "anchor_in_store", "archive_of_store", "cli_actor",
    "cli_source", "copy_anchor", "documents_in_catalog", "export_entries", "filing_filter", "init_trail", "key_file",
    "list_line", "open_audit", "past_trail_evidence", "read_entries", "readable_entries", "record", "verify_audit",
    "visible_audit", "write_export"
]
