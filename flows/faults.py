"""Deterministic fault injection for crash tests: ``SOHOA_FAULT_KILL_AT=<point>:<n>`` (``Settings.fault_kill_at``)
SIGKILLs this process at the n-th hit of a named point, so a crash test dies exactly where it means to, not when a
poll happens to see a count. Unset (the default) every hit is one attribute test.

Points (hits counted per process, across documents and threads):

    ocr       a page's OCR images are written, tesseract is about to run (mid-document, scratch files on disk)
    store     an object of a document was put in the store, the next is not (some objects, no manifest)
    pdfa      the PDF/A is being written (pikepdf's save progress callback: the file is half on disk)
    catalog   the manifest is stored, the catalog+index transaction has not begun
    index     inside the catalog+index transaction, at a write of a search-index row (SQLite trace callback)
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

from schemas.settings import Settings

POINTS = ("ocr", "store", "pdfa", "catalog", "index")
_hits: Counter[str] = Counter()
_lock = threading.Lock()
_armed: set[int] = set()


def target(settings: Settings) -> tuple[str, int] | None:
    """The configured (point, n), or None."""
    spec = settings.fault_kill_at
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"SOHOA_FAULT_KILL_AT: unknown point {point!r} (one of {', '.join(POINTS)})")
    return point, int(count or "1")


def hit(settings: Settings, point: str) -> None:
    """Count a hit of ``point``; SIGKILL this process when it is the configured n-th one."""
    wanted = target(settings)
    if wanted is None or wanted[0] != point:
        return
    with _lock:
        _hits[point] += 1
        due = _hits[point] == wanted[1]
    if due:
        os.kill(os.getpid(), signal.SIGKILL)


def arm_index(settings: Settings, connection: object) -> None:
    """For the ``index`` point: count every search-index write on ``connection`` (a ``sqlite3.Connection``; None:
    the catalog is in PostgreSQL, with no embedded index to count)."""
    wanted = target(settings)
    if connection is None or wanted is None or wanted[0] != "index" or id(connection) in _armed:
        return
    _armed.add(id(connection))

    def trace(sql: str) -> None:
        if "INSERT INTO SEARCH_FTS(ROWID" in sql.upper():  # a document's full-text row, mid-transaction
            hit(settings, "index")

    connection.set_trace_callback(trace)  # type: ignore[attr-defined]
