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
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from flows.access import TOP_LEVEL, Levels, Principal, visible_items
from flows.cells import neutralise_formula, visible_text
from schemas.errors import EXIT_PRESERVATION_PROBLEMS, ConfigError, SohoaError
from schemas.settings import Settings
from storage.audit import (
    Anchor,
    AuditEntry,
    AuditKeyError,
    AuditKeyMissing,
    AuditLog,
    AuditLogMissing,
    AuditVerification,
    anchor_verifies,
    has_entries,
    load_key,
    load_or_create_key,
    trail_exists,
)
from storage.layout import COPY_REGISTER, CORRECTIONS, DOCUMENTS, FIXITY_REPORTS, QUARANTINE
from storage.objects import DirectoryObjectStore, ObjectMissing, ObjectStore

AUDIT_FILE = "audit.sqlite3"
KEY_FILE = "audit.key"
ANCHOR_FILE = "audit.anchor"
STORE_ANCHOR = "audit/anchor.json"  # the head as of the last fixity run or backup, in the object store
EXPORT_FIELDS = ("seq", "at", "actor", "source", "action", "target", "details", "prev", "hash")

RESTORE_FIX = ("khôi phục audit.sqlite3 cùng audit.anchor (và audit.key) từ bản sao lưu thư mục kho, rồi chạy lại "
               "`sohoa audit verify`; báo ngay cho người phụ trách an ninh: nhật ký kiểm soát đã bị can thiệp")
INIT_FIX = ("khôi phục audit.sqlite3 cùng audit.anchor và audit.key từ bản sao lưu thư mục kho rồi chạy "
            "`sohoa audit verify`; báo ngay cho người phụ trách an ninh. Chỉ khi sự cố đã được xác nhận và nhật ký "
            "cũ không khôi phục được, người phụ trách khởi tạo lại có ghi nhận: "
            "`sohoa audit init --incident \"<số biên bản, mô tả sự cố>\"`")
INIT_ACTION = "audit.init"  # the first entry of a chain re-initialised after a confirmed incident
START_ACTION = "audit.start"  # the first entry of a chain started beside an archive's data without its trail
_KEY_FILES: dict[Path, Path] = {}  # archive -> its key file, as the settings of this process gave it


class AuditTrailError(SohoaError):
    """The audit trail cannot be used as it is (lost key): nothing is recorded, so nothing is done."""

    exit_code = EXIT_PRESERVATION_PROBLEMS


def key_file(settings: Settings) -> Path:
    return settings.audit_key_file or settings.archive_path() / KEY_FILE


def _key_fix(path: Path) -> str:
    return (f"khôi phục tệp khóa {path} từ bản sao lưu, hoặc gắn lại ổ chứa khóa (SOHOA_AUDIT_KEY_FILE); "
            "không tạo khóa mới: các mục đã ghi sẽ không còn kiểm chứng được")


def open_audit(settings: Settings) -> AuditLog:
    """The archive's audit trail, to append to. A brand-new trail gets its key here; an existing one (entries or
    anchors) whose key is missing is an ``AuditTrailError``: a new key would hide whatever happened to the old.
    A trail without entries in an archive that shows a past one (``past_trail_evidence``) is an
    ``AuditTrailError`` too, unless neither the key nor any remnant of the trail is left (a copy of the data
    alone): then the new chain's first entry (``audit.start``) records what was found."""
    root = settings.archive_path()
    db, anchor, path = root / AUDIT_FILE, root / ANCHOR_FILE, key_file(settings)
    key: bytes | None
    try:
        key = load_key(path)
    except AuditKeyMissing as exc:
        if trail_exists(db, anchor):
            raise AuditTrailError(f"Mất khóa nhật ký kiểm soát {path} trong khi nhật ký đã có mục: không ghi được "
                                  "nhật ký, thao tác không được thực hiện", fix=_key_fix(path)) from exc
        key = None
    except AuditKeyError as exc:
        raise AuditTrailError(f"Khóa nhật ký kiểm soát không dùng được ({exc.reason}): không ghi được nhật ký, "
                              "thao tác không được thực hiện", fix=_key_fix(path)) from exc
    started_beside: list[str] | None = None
    if not has_entries(db):
        evidence = past_trail_evidence(settings)
        if evidence:
            if key is not None or settings.audit_key_file is not None or trail_exists(db, anchor):
                raise AuditTrailError(
                    "Nhật ký kiểm soát không còn mục nào trong khi kho có dấu vết của nhật ký cũ ("
                    + "; ".join(evidence) + "): nhật ký đã bị xóa hoặc thay. Không bắt đầu chuỗi mới: thao tác "
                    "không được thực hiện", fix=INIT_FIX)
            started_beside = evidence
    if key is None:
        key = load_or_create_key(path)
    _KEY_FILES[root] = path
    log = AuditLog(db, key, anchor=anchor, store_anchor=_store_anchoring(settings),
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
    if trail_exists(root / AUDIT_FILE, root / ANCHOR_FILE):
        found.append("phần còn lại của nhật ký cũ (audit.anchor hoặc bản ghi đầu chuỗi)")
    if documents_in_catalog(root):
        found.append("danh mục đã có văn bản (catalog.sqlite)")
    store = _archive_store(settings)
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
            store = _archive_store(settings)
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
    if has_entries(db):
        first = next(iter(read_entries(settings, limit=1)), None)
        if first is None or first.action != START_ACTION:
            count = len(read_entries(settings))
            raise ConfigError(f"Nhật ký kiểm soát đang có {count} mục: không khởi tạo lại",
                              fix="sohoa audit init chỉ dùng khi nhật ký đã mất và không khôi phục được; kiểm tra "
                                  "bằng sohoa audit verify")
    evidence = past_trail_evidence(settings)
    store = _archive_store(settings)
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
    _KEY_FILES[root] = path
    log = AuditLog(db, key, anchor=anchor)
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


def read_entries(settings: Settings, **filters: object) -> list[AuditEntry]:
    """Entries of the archive's trail (``AuditLog.entries`` filters), read without creating anything (no key is
    needed to read; a missing database has no entries)."""
    root = settings.archive_path()
    try:
        log = AuditLog(root / AUDIT_FILE, None, create=False, anchor=root / ANCHOR_FILE)
    except AuditLogMissing:
        return []
    try:
        return list(log.entries(**filters))  # type: ignore[arg-type]
    finally:
        log.close()


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


# --- anchors in the object store ---------------------------------------------------------------------------


def archive_of_store(store: ObjectStore) -> Path | None:
    """The archive folder of an embedded store (``ARCHIVE/objects``), else ``None``."""
    from flows.wiring import OBJECTS_DIR

    if isinstance(store, DirectoryObjectStore) and store.root.name == OBJECTS_DIR:
        return store.root.parent
    return None


def _head_of(archive: Path) -> tuple[AuditLog, Anchor] | None:
    try:
        log = AuditLog(archive / AUDIT_FILE, None, create=False, anchor=archive / ANCHOR_FILE)
    except (AuditLogMissing, sqlite3.Error):
        return None
    try:
        head = log.head()
    except sqlite3.Error:
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
    except sqlite3.Error:
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
        key = load_key(_KEY_FILES.get(archive.resolve(), archive / KEY_FILE))
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


# --- verification --------------------------------------------------------------------------------------------


def _archive_store(settings: Settings) -> ObjectStore | None:
    from flows.wiring import OBJECTS_DIR, build_object_store

    if settings.object_store != "s3" and not (settings.archive_path() / OBJECTS_DIR).is_dir():
        return None  # nothing stored yet (and opening the embedded store would create its folder)
    return build_object_store(settings)


def documents_in_catalog(root: Path) -> int:
    """Documents in the archive's catalog (0 when there is none), read without creating or changing it."""
    from flows.wiring import CATALOG_FILE

    path = root / CATALOG_FILE
    if not path.is_file():
        return 0
    db = sqlite3.connect(path, timeout=30.0)
    try:
        return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def verify_audit(settings: Settings, stores: Sequence[ObjectStore] = ()) -> AuditVerification:
    """Verify the archive's trail: the chain and its head, against the anchor file, the anchor in the archive's
    object store and in ``stores`` (backups); a missing key, database or table, an empty trail in an archive
    with documents, a trail that began after the archive's first catalogued document or fixity run, and a missing
    store anchor where fixity runs or backups have written one, are problems. A chain re-initialised by
    ``sohoa audit init`` is compared only with the anchors its key verifies (the others are the superseded
    chain's), and its late start is the recorded incident. Creates nothing."""
    root = settings.archive_path()
    db, path = root / AUDIT_FILE, key_file(settings)
    result = AuditVerification(entries=0)
    anchors: list[Anchor] = []
    archive_store = _archive_store(settings)
    store_anchor_missing = False
    for store in [s for s in (archive_store, *stores) if s is not None]:
        where = f"kho {store.describe()} ({STORE_ANCHOR})"
        try:
            anchors.append(Anchor.parse(store.get_bytes(STORE_ANCHOR), where))
        except ObjectMissing:
            store_anchor_missing = store_anchor_missing or store is archive_store
            continue
        except ValueError:
            result.add("anchor", f"bản ghi neo trong {where} không đọc được: bị sửa", fix=RESTORE_FIX)
    documents = documents_in_catalog(root)
    key: bytes | None = None
    key_problem: str | None = None
    try:
        key = load_key(path)
    except AuditKeyError as exc:
        key_problem = exc.reason
        if isinstance(exc, AuditKeyMissing) and not (db.exists() or (root / ANCHOR_FILE).exists() or anchors
                                                     or result.problems or documents):
            return result  # a brand-new archive: no trail yet, nothing to verify
    if key_problem is not None:
        result.add("key", f"khóa nhật ký {path}: {key_problem}; không kiểm được mã băm các mục", fix=_key_fix(path))
    if not db.is_file():
        result.add("missing", f"mất tệp nhật ký {db}" + (f" (kho có {documents} văn bản)" if documents else ""),
                   fix=RESTORE_FIX)
        return result
    try:
        log = AuditLog(db, key, create=False, anchor=root / ANCHOR_FILE)
        try:
            first = next(log.entries(limit=1), None)
            if first is not None and first.action == INIT_ACTION and key is not None:
                anchors = [a for a in anchors if log.verifies(a)]  # the others: the superseded chain's
            checked = log.verify(anchors)
            backed_up = next(log.entries(action="backup", limit=1), None) is not None
            noted = log.store_anchored()
        finally:
            log.close()
    except sqlite3.DatabaseError as exc:
        result.add("unreadable", f"không đọc được {db.name}: {exc}", fix=RESTORE_FIX)
        return result
    result.entries, result.anchors = checked.entries, checked.anchors
    result.problems += [p if "fix" in p else p | {"fix": RESTORE_FIX} for p in checked.problems]
    if documents and not checked.entries:
        result.add("wiped", f"kho có {documents} văn bản nhưng nhật ký kiểm soát không còn mục nào: nhật ký bị xóa",
                   fix=RESTORE_FIX)
    if first is not None and first.action != INIT_ACTION:
        _check_start(result, root, archive_store, first)
    if store_anchor_missing and archive_store is not None:
        reasons = (["kho có báo cáo kiểm tra toàn vẹn"] if next(archive_store.list(FIXITY_REPORTS), None) else []) + (
            ["nhật ký ghi đã sao lưu"] if backed_up else []) + (
            [f"nhật ký ghi đã neo vào kho ở mục {noted}"] if noted is not None else [])
        if reasons:
            result.add("anchor", f"mất bản ghi neo {STORE_ANCHOR} trong kho {archive_store.describe()} dù "
                                 f"{' và '.join(reasons)}: bản ghi neo bị xóa", fix=RESTORE_FIX)
    return result


def _floor_seconds(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).replace(microsecond=0)


def _archive_began(root: Path, store: ObjectStore | None) -> list[tuple[datetime, str]]:
    """When the archive's history shows activity at the latest: its oldest catalog row, its first kept fixity
    report (``audit/fixity/<time>.json``)."""
    from flows.wiring import CATALOG_FILE

    found: list[tuple[datetime, str]] = []
    path = root / CATALOG_FILE
    if path.is_file():
        db = sqlite3.connect(path, timeout=30.0)
        try:
            row = db.execute("SELECT min(updated_at) FROM documents").fetchone()
        except sqlite3.Error:
            row = None
        finally:
            db.close()
        if row and row[0] and (moment := _floor_seconds(str(row[0]))) is not None:
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


def _check_start(result: AuditVerification, root: Path, store: ObjectStore | None, first: AuditEntry) -> None:
    """A trail that began after the archive's history did: the trail before it was wiped or replaced (every
    digitisation and fixity run is recorded before it happens)."""
    began = _floor_seconds(first.at)
    if began is None:
        return
    for moment, what in _archive_began(root, store):
        if moment < began:
            result.add("late_start", f"mục đầu tiên của nhật ký ({began:%Y-%m-%d %H:%M:%S} UTC) muộn hơn {what} "
                                     f"({moment:%Y-%m-%d %H:%M:%S} UTC): phần nhật ký trước đó đã bị xóa hoặc thay",
                       seq=first.seq, fix=INIT_FIX)


# --- showing and exporting -----------------------------------------------------------------------------------


def list_line(entry: AuditEntry) -> str:
    """One entry as one terminal line: control and format characters shown as escapes, so a stored value (an
    entry written before values were escaped on the way in, or its details) cannot start a forged line."""
    detail = json.dumps(entry.details, ensure_ascii=False) if entry.details else ""
    at = entry.at[:19].replace("T", " ")
    actor, source, action, target, detail = (visible_text(v) for v in (entry.actor, entry.source, entry.action,
                                                                        entry.target, detail))
    return f"{entry.seq:>6}  {visible_text(at)}  {actor:<12} {source:<20} {action:<16} {target} {detail}"


def export_entries(entries: Iterable[AuditEntry], fmt: str) -> str:
    """Entries as JSON lines or CSV (UTF-8, details as JSON), for inspections. CSV cells that a spreadsheet would
    read as a formula (``=``, ``+``, ``-``, ``@``...) are prefixed with ``'`` (``flows.cells``)."""
    if fmt == "jsonl":
        return "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in entries)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for e in entries:
        row = e.as_dict()
        writer.writerow([neutralise_formula(json.dumps(row[f], ensure_ascii=False) if f == "details" else str(row[f]))
                         for f in EXPORT_FIELDS])
    return out.getvalue()


def write_export(text: str, out: Path | None) -> None:
    if out is None:
        import sys

        sys.stdout.write(text)
        return
    out.write_text(("\ufeff" if out.suffix == ".csv" else "") + text, encoding="utf-8")  # BOM: Excel reads UTF-8


# --- what a reader of the trail may see (``flows.access``) ---------------------------------------------------
DOC_ID_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{20}(?![0-9a-f])")  # pipeline.load.document_id: 20 hex digits
WITHHELD = "(ẩn: người dùng có mức mật cao hơn bạn)"
_PRIVATE_DETAILS = ("query", "q", "filters", "shown")  # what a reader searched for, or how much they were shown


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _entry_level(entry: AuditEntry, levels: Levels) -> int:
    """The highest secrecy level of the documents an entry names (its target, its details, a path): a document id
    the catalog does not know counts as the top level (fail closed: a probe of a hidden id and of a missing one
    are then both left out for an admin without full clearance)."""
    level = 0
    for text in (entry.target, *_strings(entry.details)):
        for doc_id in DOC_ID_RE.findall(text):
            found = levels(doc_id)
            level = max(level, TOP_LEVEL if found is None else found)
    return level


def visible_audit(viewer: Principal, entries: Iterable[AuditEntry], levels: Levels, clearances: dict[str, int],
                  limit: int | None = None) -> list[AuditEntry]:
    """The entries an admin may read (at most ``limit``): an entry about a document above the admin's clearance
    is left out (``flows.access.visible_items``); what a user cleared above the admin searched for (queries,
    filters, counts shown) is withheld. An actor that is no account (the CLI's local operator) counts as cleared
    for every level."""
    shown: list[AuditEntry] = []
    source = iter(entries)
    while limit is None or len(shown) < limit:
        chunk = list(islice(source, 500))
        if not chunk:
            break
        for entry in visible_items(viewer, chunk, lambda e: _entry_level(e, levels)):
            if clearances.get(entry.actor, TOP_LEVEL) > viewer.clearance and any(
                    k in entry.details for k in _PRIVATE_DETAILS):
                details = {k: (WITHHELD if k in _PRIVATE_DETAILS else v) for k, v in entry.details.items()}
                entry = AuditEntry(entry.seq, entry.at, entry.actor, entry.source, entry.action, entry.target,
                                   details, entry.prev, entry.hash)
            shown.append(entry)
    return shown if limit is None else shown[:limit]


def readable_entries(settings: Settings, principal: Principal, *, limit: int | None = None,
                     **filters: object) -> list[AuditEntry]:
    """The trail as ``principal`` may read it (``sohoa audit list/export --as USER``): the local operator reads
    every entry; an admin reads what ``visible_audit`` leaves them; anyone else reads nothing (exit 4)."""
    if principal.operator:
        return read_entries(settings, limit=limit, **filters)
    if not principal.has_role("admin"):
        raise ConfigError(f"Tài khoản {principal.name} không được xem nhật ký kiểm soát",
                          fix="chỉ quản trị viên (hoặc người vận hành trên máy chủ, không dùng --as) được xem")
    from flows.accounts import accounts_of
    from flows.queries import catalog_levels, open_catalog

    clearances = {u.username: u.clearance for u in accounts_of(settings).list_users()}
    entries = read_entries(settings, **filters)
    try:
        catalog = open_catalog(settings)
    except SohoaError:
        return visible_audit(principal, entries, lambda doc_id: None, clearances, limit)
    try:
        return visible_audit(principal, entries, catalog_levels(catalog), clearances, limit)
    finally:
        catalog.close()
