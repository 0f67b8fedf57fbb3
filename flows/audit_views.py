"""The audit trail for people: one terminal line per entry, JSON lines and CSV exports, and what a reader of
the trail may see (``flows.access``: entries about documents above their clearance left out). The design:
``flows.audit``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

from flows.access import TOP_LEVEL, Levels, Principal, visible_items
from flows.audit_anchor import read_entries
from flows.cells import neutralise_formula, visible_text
from schemas.errors import ConfigError, SohoaError
from schemas.settings import Settings
from storage.audit import AuditEntry

EXPORT_FIELDS = ("seq", "at", "actor", "source", "action", "target", "details", "prev", "hash")


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
_PRIVATE_DETAILS = ("query", "q", "filters", "shown",  # what a reader searched for, or how much they were shown
                    "documents")  # how many documents a hồ sơ (mục lục) held for them: hidden ones counted
FILE_ACTIONS = ("file.view", "file.create", "file.edit", "export.muc_luc")  # target: a mã hồ sơ
FONDS_ACTIONS = ("fonds.view",)  # target: a phông's URL key


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


def filing_filter(settings: Settings, viewer: Principal) -> Callable[[AuditEntry], bool]:
    """Whether an entry names only hồ sơ and phông that exist for ``viewer`` (``flows.files``): an entry about a
    hồ sơ known only from documents above their clearance (a view, an edit, a mục lục by a reader cleared for
    it) would tell them it exists. Entries naming no hồ sơ pass."""
    if viewer.operator or viewer.clearance >= TOP_LEVEL:
        return lambda entry: True
    from flows.files import archive_files  # deferred: flows.files reads documents through flows.review

    files = archive_files(settings, viewer)
    codes, fonds = {f.file_code for f in files}, {f.fonds_key for f in files}

    def shown(entry: AuditEntry) -> bool:
        if entry.action in FILE_ACTIONS and entry.target not in codes:
            return False
        if entry.action in FONDS_ACTIONS and entry.target not in fonds:
            return False
        code = entry.details.get("file_code") if isinstance(entry.details, dict) else None
        return not (isinstance(code, str) and code and code not in codes)

    return shown


def visible_audit(viewer: Principal, entries: Iterable[AuditEntry], levels: Levels, clearances: dict[str, int],
                  limit: int | None = None, filing: Callable[[AuditEntry], bool] | None = None) -> list[AuditEntry]:
    """The entries an admin may read (at most ``limit``): an entry about a document above the admin's clearance
    is left out (``flows.access.visible_items``); what a user cleared above the admin searched for (queries,
    filters, counts shown) is withheld. An actor that is no account (the CLI's local operator) counts as cleared
    for every level. ``filing`` (``filing_filter``): entries about a hồ sơ or phông that does not exist for the
    viewer are left out too."""
    shown: list[AuditEntry] = []
    source = iter(entries)
    while limit is None or len(shown) < limit:
        chunk = list(islice(source, 500))
        if not chunk:
            break
        for entry in visible_items(viewer, chunk, lambda e: _entry_level(e, levels)):
            if filing is not None and not filing(entry):
                continue
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
        filing = filing_filter(settings, principal)
    except SohoaError:
        return visible_audit(principal, entries, lambda doc_id: None, clearances, limit,
                             lambda entry: not (entry.action in FILE_ACTIONS + FONDS_ACTIONS
                                                or "file_code" in entry.details))
    try:
        return visible_audit(principal, entries, catalog_levels(catalog), clearances, limit, filing)
    finally:
        catalog.close()
