"""The audit trail at the edges: open it for an archive, record CLI actions, verify and export it.

Every read path that shows documents to a person (search, show, export, web pages and downloads) and every
change (edits, users and roles, batch actions) records an entry before it answers, so an action that cannot be
recorded does not happen. The CLI's actor is ``--as USER`` or the operating-system user; its source is
``cli@<host>``.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import socket
from collections.abc import Iterable
from pathlib import Path

from schemas.settings import Settings
from storage.audit import AuditEntry, AuditLog, load_or_create_key

AUDIT_FILE = "audit.sqlite3"
KEY_FILE = "audit.key"
EXPORT_FIELDS = ("seq", "at", "actor", "source", "action", "target", "details", "prev", "hash")


def open_audit(settings: Settings) -> AuditLog:
    root = settings.archive_path()
    key = load_or_create_key(settings.audit_key_file or root / KEY_FILE)
    return AuditLog(root / AUDIT_FILE, key)


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


def export_entries(entries: Iterable[AuditEntry], fmt: str) -> str:
    """Entries as JSON lines or CSV (UTF-8, details as JSON), for inspections."""
    if fmt == "jsonl":
        return "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in entries)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for e in entries:
        row = e.as_dict()
        writer.writerow([json.dumps(row[f], ensure_ascii=False) if f == "details" else row[f] for f in EXPORT_FIELDS])
    return out.getvalue()


def write_export(text: str, out: Path | None) -> None:
    if out is None:
        import sys

        sys.stdout.write(text)
        return
    out.write_text(("\ufeff" if out.suffix == ".csv" else "") + text, encoding="utf-8")  # BOM: Excel reads UTF-8
