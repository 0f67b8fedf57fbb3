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

The key lives in a separate file (``audit.key``, mode 0600, created on first use; ``SOHOA_AUDIT_KEY_FILE`` may
put it on another volume), so whoever can edit the database but cannot read the key cannot forge a consistent
chain. Appends take SQLite's write lock (``BEGIN IMMEDIATE``), so CLI runs and web workers can log concurrently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL,
                                       last TEXT NOT NULL, mac TEXT NOT NULL);
"""


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

    @property
    def ok(self) -> bool:
        return not self.problems


def load_or_create_key(path: Path) -> bytes:
    """The archive's audit key (32 random bytes, hex in a 0600 file), created on first use."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode("ascii"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return key


def _canonical(seq: int, at: str, actor: str, source: str, action: str, target: str, details: str, prev: str) -> bytes:
    return json.dumps([seq, at, actor, source, action, target, details, prev], ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


class AuditLog:
    """The audit trail of one archive."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def _head_mac(self, count: int, last: str) -> str:
        return self._mac(f"head:{count}:{last}".encode("ascii"))

    def append(self, *, actor: str, action: str, target: str = "", source: str = "",
               details: dict[str, object] | None = None) -> AuditEntry:
        """Record one action; returns the stored entry."""
        body = json.dumps(details or {}, ensure_ascii=False, sort_keys=True)
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            digest = self._mac(_canonical(seq, at, actor, source, action, target, body, prev))
            self._db.execute("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?)",
                             (seq, at, actor, source, action, target, body, prev, digest))
            self._db.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?, ?)",
                             (seq, digest, self._head_mac(seq, digest)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return AuditEntry(seq, at, actor, source, action, target, details or {}, prev, digest)

    def entries(self, *, since: str | None = None, until: str | None = None, actor: str | None = None,
                action: str | None = None, limit: int | None = None, newest_first: bool = False
                ) -> Iterator[AuditEntry]:
        """Entries in sequence order (``since``/``until``: ISO times or dates, inclusive), filtered."""
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
        sql = "SELECT seq, at, actor, source, action, target, details, prev, hash FROM audit_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._db.execute(sql, params):
            yield AuditEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8])

    def verify(self) -> AuditVerification:
        """Recompute the chain; every modified, inserted, deleted, reordered or cut-off entry is a problem."""
        problems: list[dict[str, object]] = []
        prev, expected_seq, count = GENESIS, 1, 0
        rows = self._db.execute("SELECT seq, at, actor, source, action, target, details, prev, hash "
                                "FROM audit_entries ORDER BY rowid")
        for seq, at, actor, source, action, target, details, stored_prev, digest in rows:
            count += 1
            if seq != expected_seq:
                problems.append({"seq": seq, "kind": "sequence",
                                 "detail": f"số thứ tự {seq} đứng ở vị trí {expected_seq}: mục bị xóa, chèn "
                                           "hoặc đổi chỗ"})
            if stored_prev != prev:
                problems.append({"seq": seq, "kind": "chain",
                                 "detail": "không nối với mục liền trước: mục bị xóa, chèn hoặc đổi chỗ"})
            if not hmac.compare_digest(digest, self._mac(_canonical(seq, at, actor, source, action, target,
                                                                     details, stored_prev))):
                problems.append({"seq": seq, "kind": "modified", "detail": "nội dung mục không khớp mã băm"})
            prev, expected_seq = digest, expected_seq + 1
        head = self._db.execute("SELECT count, last, mac FROM audit_head WHERE id = 1").fetchone()
        if head is None:
            if count:
                problems.append({"seq": None, "kind": "head", "detail": "mất bản ghi đầu chuỗi"})
        else:
            head_count, head_last, head_mac = head
            if not hmac.compare_digest(head_mac, self._head_mac(head_count, head_last)):
                problems.append({"seq": None, "kind": "head", "detail": "bản ghi đầu chuỗi bị sửa"})
            elif head_count != count or head_last != prev:
                problems.append({"seq": None, "kind": "truncated",
                                 "detail": f"đầu chuỗi ghi {head_count} mục, nhật ký còn {count}: mục cuối bị "
                                           "xóa hoặc thay"})
        return AuditVerification(entries=count, problems=problems)
