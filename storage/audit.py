"""Append-only, hash-chained audit trail of who did what to the archive (``ARCHIVE/audit.sqlite3``).

Each entry records when, who (a web user, or the operating-system user of a CLI run, or ``--as USER``), from
where (client address or ``cli@host``), what action, on what target, with its details (query text and filters,
document and page, export scope, edited field...). Entries are chained: an entry's ``hash`` is the HMAC-SHA-256,
under the archive's audit key, of its own fields and the previous entry's hash, so

* editing any field of an entry breaks its hash,
* deleting or inserting an entry breaks the chain (and the sequence numbers),
* reordering entries breaks both,
* cutting entries off the end is caught by the head record (count and last hash, also keyed), kept outside the
  chain table and rewritten with every append.

A database can be wiped, dropped or replaced by an older copy as a whole, head included, so the head is also
**anchored outside it**: every append adds a line ``{"seq", "last", "at", "mac"}`` to ``audit.anchor`` beside the
database (``O_APPEND``: one small write, no read), and ``flows.audit`` copies the head into the object store with
every fixity run and backup and, through the ``store_anchor`` hook, at least every ``store_every`` appends or
``store_seconds`` seconds (the last such write is noted in ``audit_store_anchor``), so rolling the local files back
is caught against the store unless the store is rolled back too. ``verify`` compares the chain with every anchor
it is given: a chain shorter than an anchor, or one whose entry at the anchor's sequence number has another hash,
was cut or rewritten. A head written by an anchoring log says so under its MAC, so deleting the anchor file too is
found.

The key lives in a separate file (``audit.key``, mode 0600; ``SOHOA_AUDIT_KEY_FILE`` may put it on another
volume), so whoever can edit the database but cannot read the key cannot forge a consistent chain. Only a
brand-new trail creates a key (``load_or_create_key``); verifying loads it (``load_key``) and never creates one.
Appends take SQLite's write lock (``BEGIN IMMEDIATE``), so CLI runs and web workers can log concurrently. With
``SOHOA_DATABASE_URL`` the tables live in PostgreSQL instead (``storage.audit_db``: appends serialised by an
advisory lock, so several hosts extend one chain); the key and the anchor file stay where they are.

Actor, source, action and target are stored with control and format characters escaped (``\\x1b``, ``\\u2028``),
so a login name cannot carry a line break or a terminal escape into anything that shows the trail.

The anchor record and its MAC check live in ``storage.audit_anchor``, the key file in ``storage.audit_keys``;
their public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from storage.audit_anchor import ANCHOR_SUFFIX, Anchor, AnchorCheck, anchor_verifies, head_payload, same_mac
from storage.audit_db import TrailDb
from storage.audit_keys import MIN_KEY_BYTES, AuditKeyError, AuditKeyMissing, load_key, load_or_create_key
from storage.db import driver_errors

log = logging.getLogger("sohoa.audit")

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit_entries(at);
CREATE INDEX IF NOT EXISTS audit_action_target ON audit_entries(action, target);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL,
                                       last TEXT NOT NULL, mac TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_store_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
                                               at TEXT NOT NULL);
"""
_TABLES = ("audit_entries", "audit_head")


# controls, format (bidi, zero-width), line and paragraph separators, lone surrogates (unencodable)
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def escape_controls(text: str) -> str:
    """``text`` with every control and format character shown as an escape (``\\n``→``\\x0a``, ESC→``\\x1b``,
    U+2028→``\\u2028``, U+202E→``\\u202e``): it prints on one line, with no terminal escapes or bidi reordering."""
    if text.isprintable():  # the common case: nothing to escape (isprintable is False for every such character)
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _CONTROL_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str  # ISO 8601, UTC
    actor: str
    source: str
    action: str
    target: str
    details: dict[str, object]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "source": self.source, "action": self.action,
                "target": self.target, "details": self.details, "prev": self.prev, "hash": self.hash}


@dataclass
class AuditVerification:
    entries: int
    problems: list[dict[str, object]] = field(default_factory=list)
    anchors: int = 0  # anchors the chain was compared with

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, detail: str, *, seq: int | None = None, fix: str | None = None) -> None:
        problem: dict[str, object] = {"seq": seq, "kind": kind, "detail": detail}
        if fix:
            problem["fix"] = fix
        self.problems.append(problem)


class AuditLogMissing(FileNotFoundError):
    """The audit database does not exist (opening it to read never creates it)."""


def trail_exists(path: Path, anchor: Path | None = None, *, database: str | None = None) -> bool:
    """Whether an audit trail was ever started here: the database has entries or a head (or its tables are
    gone, which only tampering does), or the anchor file has lines. Used to refuse minting a new key.
    ``database``: the PostgreSQL URL the tables live in (``None``: the SQLite file ``path``)."""
    anchor = anchor or path.with_suffix(ANCHOR_SUFFIX)
    try:
        if anchor.stat().st_size > 0:
            return True
    except FileNotFoundError:
        pass
    if not database and not path.exists():
        return False
    db = TrailDb(path, database, create=False)
    try:
        present = db.tables()
        if database and not present.intersection(_TABLES):
            return False  # a PostgreSQL database the trail was never created in
        return any(t not in present or db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in _TABLES)
    finally:
        db.close()


def has_entries(path: Path, *, database: str | None = None) -> bool:
    """Whether the database holds at least one chain entry (an append would not start a new chain). Creates
    nothing; a missing database or a dropped table has none."""
    if not database and not path.is_file():
        return False
    db = TrailDb(path, database, create=False)
    try:
        if "audit_entries" not in db.tables():
            return False
        return db.execute("SELECT 1 FROM audit_entries LIMIT 1").fetchone() is not None
    finally:
        db.close()


def _canonical(seq: int, at: str, actor: str, source: str, action: str, target: str, details: str, prev: str) -> bytes:
    return json.dumps([seq, at, actor, source, action, target, details, prev], ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


class AuditLog:
    """The audit trail of one archive.

    ``create=False`` opens an existing database to read or verify it: nothing is created (``AuditLogMissing``
    when the file is gone; dropped tables are reported by ``verify``), and ``key`` may be ``None`` (a lost key:
    ``verify`` then checks the chain's links, sequence and anchors, but no MAC).

    ``store_anchor``: called after an append once ``store_every`` entries or ``store_seconds`` seconds have passed
    since the head was last written to the object store (by any process: noted in ``audit_store_anchor``); it
    writes the head there and returns whether there was a store to write to. A failure is logged, never the
    append's: it is tried again ``store_seconds`` later.

    ``database``: a PostgreSQL URL holding the tables (``path`` then only names the trail in messages).
    """

    def __init__(self, path: Path, key: bytes | None, *, create: bool = True, anchor: Path | None = None,
                 store_anchor: Callable[[], bool] | None = None, store_every: int = 50,
                 store_seconds: float = 300.0, database: str | None = None) -> None:
        self.path = path
        self.anchor_path = anchor or path.with_suffix(ANCHOR_SUFFIX)
        self._key = key
        self._store_anchor = store_anchor
        self._store_every = max(1, store_every)
        self._store_seconds = store_seconds
        self._store_retry_at = 0.0  # after a failed store write: not before this (time.monotonic)
        self._lock = threading.Lock()  # one connection, shared by a web process's threads: one transaction at a time
        if create:
            if key is None:
                raise ValueError("appending needs the audit key")
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not database and not path.is_file():
            raise AuditLogMissing(str(path))
        self._db = TrailDb(path, database, create=create)
        try:
            if create:
                self._db.create(_SCHEMA)
            present = self._db.tables()
        except BaseException:
            self._db.close()
            raise
        if database and not create and not present.intersection(_TABLES):
            self._db.close()
            raise AuditLogMissing(f"{path.name} (PostgreSQL)")
        self.missing_tables = [t for t in _TABLES if t not in present]

    def close(self) -> None:
        self._db.close()

    def _mac(self, payload: bytes) -> str:
        if self._key is None:
            raise ValueError("no audit key")
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def _head_mac(self, count: int, last: str) -> str:
        return self._mac(head_payload(count, last, anchored=True))

    def _head_form(self, count: int, last: str, mac: str) -> str | None:
        """``"anchored"`` or ``"legacy"`` when ``mac`` is a genuine head MAC for (count, last), else ``None``."""
        for anchored in (True, False):
            if same_mac(mac, self._mac(head_payload(count, last, anchored))):
                return "anchored" if anchored else "legacy"
        return None

    def append(self, *, actor: str, action: str, target: str = "", source: str = "",
               details: dict[str, object] | None = None) -> AuditEntry:
        """Record one action; returns the stored entry. The anchor line is written once the entry is committed
        (a crash in between leaves an anchor one entry behind, never one ahead of the chain)."""
        actor, source, action, target = (escape_controls(v) for v in (actor, source, action, target))
        body = json.dumps(details or {}, ensure_ascii=False, sort_keys=True)
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._lock:
            with self._db.write():  # the head is read under the lock: one appender at a time, on every host
                row = self._db.execute("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                digest = self._mac(_canonical(seq, at, actor, source, action, target, body, prev))
                head_mac = self._head_mac(seq, digest)
                self._db.execute("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?)",
                                 (seq, at, actor, source, action, target, body, prev, digest))
                self._db.execute("INSERT INTO audit_head VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                                 "count = excluded.count, last = excluded.last, mac = excluded.mac",
                                 (seq, digest, head_mac))
            due = self._store_anchor is not None and self._store_anchor_due(seq)
        self._write_anchor(Anchor(seq=seq, last=digest, mac=head_mac, at=at))
        if due:
            self._anchor_in_store(seq)
        return AuditEntry(seq, at, actor, source, action, target, details or {}, prev, digest)

    def _store_anchor_due(self, seq: int) -> bool:
        if time.monotonic() < self._store_retry_at:
            return False
        try:
            row = self._db.execute("SELECT seq, at FROM audit_store_anchor WHERE id = 1").fetchone()
        except driver_errors():  # an older database opened without its schema: write it
            return True
        if row is None or seq - int(row[0]) >= self._store_every or seq < int(row[0]):
            return True
        try:
            last = datetime.fromisoformat(str(row[1]))
        except ValueError:
            return True
        return (datetime.now(UTC) - last).total_seconds() >= self._store_seconds

    def _anchor_in_store(self, seq: int) -> None:
        assert self._store_anchor is not None
        try:
            if not self._store_anchor():
                return  # no store yet (nothing digitised): due again at the next append
        except Exception as exc:  # an unreachable store never stops what is being recorded
            log.warning("the audit trail's head could not be written to the object store: %s", exc)
            self._store_retry_at = time.monotonic() + self._store_seconds
            return
        try:
            with self._lock:
                self._db.execute("INSERT INTO audit_store_anchor VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                                 "seq = excluded.seq, at = excluded.at",
                                 (seq, datetime.now(UTC).isoformat(timespec="seconds")))
        except driver_errors() as exc:  # only the schedule of the next store write is lost
            log.warning("could not note the store anchor: %s", exc)

    def store_anchored(self) -> int | None:
        """The sequence number at which this log last noted writing its head to the object store (``None``: never,
        or a database without the note)."""
        try:
            row = self._db.execute("SELECT seq FROM audit_store_anchor WHERE id = 1").fetchone()
        except driver_errors():
            return None
        return int(row[0]) if row else None

    def verifies(self, anchor: Anchor) -> bool:
        """Whether ``anchor``'s MAC is a head MAC under this log's key (``False`` without a key): an anchor
        written by this chain's key, not by a superseded chain's or a forger's."""
        return self._key is not None and anchor_verifies(self._key, anchor)

    def _write_anchor(self, anchor: Anchor) -> None:
        fd = os.open(self.anchor_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (anchor.to_json() + "\n").encode("ascii"))  # one write: whole lines under concurrency
        finally:
            os.close(fd)

    def head(self) -> Anchor | None:
        """The head record as an anchor (``None`` when there is none, or when the chain has no entry with the
        head's sequence number and hash: a head that does not describe this chain is not worth anchoring)."""
        if self.missing_tables:
            return None
        row = self._db.execute("SELECT count, last, mac FROM audit_head WHERE id = 1").fetchone()
        if row is None:
            return None
        count, last, mac = row
        entry = self._db.execute("SELECT hash, at FROM audit_entries WHERE seq = ?", (count,)).fetchone()
        if entry is None or entry[0] != last:
            return None
        return Anchor(seq=int(count), last=str(last), mac=str(mac), at=str(entry[1]))

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of entry ``seq`` (``None`` if there is no such entry)."""
        if self.missing_tables:
            return None
        row = self._db.execute("SELECT hash FROM audit_entries WHERE seq = ?", (seq,)).fetchone()
        return str(row[0]) if row else None

    def entries(self, *, since: str | None = None, until: str | None = None, actor: str | None = None,
                action: str | None = None, limit: int | None = None, newest_first: bool = False,
                target: str | None = None) -> Iterator[AuditEntry]:
        """Entries in sequence order (``since``/``until``: ISO times or dates, inclusive), filtered."""
        if "audit_entries" in self.missing_tables:
            return
        where, params = [], []  # type: ignore[var-annotated]
        if since:
            where.append("at >= ?")
            params.append(since)
        if until:
            where.append("at <= ?")
            params.append(until + ("T99" if len(until) == 10 else ""))  # a bare date includes that whole day
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action = ?")
            params.append(action)
        if target is not None:
            where.append("target = ?")
            params.append(target)
        sql = "SELECT seq, at, actor, source, action, target, details, prev, hash FROM audit_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._db.execute(sql, params):
            yield AuditEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8])

    def anchor_file(self) -> Iterator[Anchor | int] | None:
        """The anchor file's anchors, one by one (an ``int``: the number of an unreadable line), ``None`` if there
        is no file. Streamed: a trail of millions of entries has as many lines."""
        try:
            handle = self.anchor_path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

        def lines() -> Iterator[Anchor | int]:
            with handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            yield Anchor.parse(line, self.anchor_path.name, number)
                        except ValueError:
                            yield number

        return lines()

    def verify(self, anchors: Iterable[Anchor] = ()) -> AuditVerification:
        """Recompute the chain; every modified, inserted, deleted, reordered or cut-off entry is a problem, and so
        is every anchor (the anchor file's lines and ``anchors``) the chain is shorter than or does not extend."""
        result = AuditVerification(entries=0)
        for table in self.missing_tables:
            result.add("dropped", f"mất bảng {table} trong {self.path.name}: nhật ký bị xóa")
        prev, expected_seq, count = GENESIS, 1, 0
        rows = [] if "audit_entries" in self.missing_tables else self._db.execute(
            "SELECT seq, at, actor, source, action, target, details, prev, hash FROM audit_entries "
            f"ORDER BY {self._db.order_of_insertion}")
        for seq, at, actor, source, action, target, details, stored_prev, digest in rows:
            count += 1
            if seq != expected_seq:
                result.add("sequence", f"số thứ tự {seq} đứng ở vị trí {expected_seq}: mục bị xóa, chèn hoặc đổi chỗ",
                           seq=seq)
            if stored_prev != prev:
                result.add("chain", "không nối với mục liền trước: mục bị xóa, chèn hoặc đổi chỗ", seq=seq)
            if self._key is not None and not same_mac(
                    digest, self._mac(_canonical(seq, at, actor, source, action, target, details, stored_prev))):
                result.add("modified", "nội dung mục không khớp mã băm", seq=seq)
            prev, expected_seq = digest, expected_seq + 1
        result.entries = count
        anchored = self._verify_head(result, count, prev)
        self._verify_anchors(result, count, anchors, anchored)
        return result

    def _verify_head(self, result: AuditVerification, count: int, last: str) -> bool:
        """Check the head record; returns whether it says the log was anchored."""
        if "audit_head" in self.missing_tables:
            return False
        head = self._db.execute("SELECT count, last, mac FROM audit_head WHERE id = 1").fetchone()
        if head is None:
            if count:
                result.add("head", "mất bản ghi đầu chuỗi")
            return False
        head_count, head_last, head_mac = head
        form = self._head_form(head_count, head_last, head_mac) if self._key is not None else "unknown"
        if form is None:
            result.add("head", "bản ghi đầu chuỗi bị sửa")
            return False
        if head_count != count or head_last != last:
            result.add("truncated", f"đầu chuỗi ghi {head_count} mục, nhật ký còn {count}: mục cuối bị xóa hoặc thay")
        return form == "anchored"

    def _verify_anchors(self, result: AuditVerification, count: int, extra: Iterable[Anchor], anchored: bool) -> None:
        """Compare the chain (``count`` entries) with each anchor; problems are grouped by where the anchors were
        read, so a wiped trail with a million anchor lines gives one problem per kind, naming the furthest."""
        bad_lines: list[int] = []
        checks: dict[str, AnchorCheck] = {}
        file_anchors = self.anchor_file()
        for item in itertools.chain(file_anchors or (), extra):
            if isinstance(item, int):
                bad_lines.append(item)
                continue
            check = checks.setdefault(item.source, AnchorCheck())
            check.seen += 1
            if self._key is not None and self._head_form(item.seq, item.last, item.mac) is None:
                check.forged += 1
                check.first_forged = check.first_forged or item
            elif item.seq > count:
                if check.beyond is None or item.seq > check.beyond.seq:
                    check.beyond = item
            elif self.hash_at(item.seq) != item.last:
                check.rewritten += 1
                if check.first_rewritten is None or item.seq < check.first_rewritten.seq:
                    check.first_rewritten = item
        name = self.anchor_path.name
        if anchored and not checks.get(name):
            if self._db.dialect != "postgres":
                result.add("anchor", f"mất tệp neo {name} (hoặc tệp rỗng) dù nhật ký đã được neo: tệp neo bị xóa")
            elif not any(check.seen for check in checks.values()):
                # a shared trail: every host anchors its own appends in its own file, so a host that never appended
                # has none, and relies on the store's anchor; without that, nothing outside the database vouches
                result.add("anchor", f"máy này không có tệp neo {name} và không có bản ghi neo nào khác để đối chiếu "
                                     "nhật ký trong cơ sở dữ liệu dùng chung: tệp neo bị xóa, hoặc kho đối tượng "
                                     "chưa có bản ghi neo")
        if bad_lines:
            result.add("anchor", f"{len(bad_lines)} dòng của {name} không đọc được (dòng {bad_lines[0]}"
                                 f"{', ...' if len(bad_lines) > 1 else ''}): tệp neo bị sửa")
        for source, check in checks.items():
            result.anchors += check.seen
            if check.first_forged is not None:
                result.add("anchor", f"{check.forged} bản ghi neo trong {source} không khớp khóa "
                                     f"({check.first_forged.where}): neo bị sửa, hoặc khóa nhật ký đã bị thay")
            if check.beyond is not None:
                result.add("truncated", f"{check.beyond.where} ghi nhật ký đã có {check.beyond.seq} mục, nay chỉ còn "
                                        f"{count}: nhật ký bị xóa, cắt bớt hoặc thay bằng bản cũ")
            if check.first_rewritten is not None:
                first = check.first_rewritten
                result.add("rewritten", f"mục {first.seq} không khớp {first.where} ({check.rewritten} bản ghi neo "
                                        "không khớp): nhật ký bị viết lại", seq=first.seq)


__all__ = [
    "ANCHOR_SUFFIX", "GENESIS", "MIN_KEY_BYTES", "Anchor", "AuditEntry", "AuditKeyError", "AuditKeyMissing", "AuditLog",
    "AuditLogMissing", "AuditVerification", "anchor_verifies", "escape_controls", "has_entries", "load_key",
    "load_or_create_key", "trail_exists",
]
