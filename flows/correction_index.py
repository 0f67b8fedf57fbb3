"""Corrected documents in the catalog and the search index: re-index a correction at once or take the
document out (fail closed) and mark it pending; re-apply every correction; rebuild the catalog and index with
the corrections applied. The whole design: ``flows.corrections``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from flows import pdf_text
from flows.correction_records import CorrectionsUnreadable, ReindexPending, corrected
from flows.correction_store import CorrectionStore, corrections_of, writing
from flows.preservation import stored_manifests
from flows.wiring import archive_has_catalog, build_object_store, build_search_index, open_catalog
from schemas.document import DocumentManifest
from schemas.fixity import FixityProblem, ReindexReport
from schemas.settings import Settings
from storage.catalog import Catalog
from storage.layout import corrections_prefix
from storage.objects import ObjectMissing, ObjectStore
from storage.search_index import SearchIndex, entry_of

log = logging.getLogger("sohoa.corrections")
PENDING_DIR = "work/reindex-pending"  # documents taken out of the index until they are re-indexed
REINDEX_RETRY_DELAYS_S: tuple[float, ...] = (0.5, 2.0)  # waits between the attempts to re-index a correction


def _open_catalog(settings: Settings) -> Catalog:
    return open_catalog(settings)


def reindex_document(settings: Settings, manifest: DocumentManifest, manifest_key: str) -> None:
    """Make the catalog and the search index hold ``manifest`` (a corrected one) now, through the pipeline's own
    commit path (an upsert into Elasticsearch first when that backend is on)."""
    if settings.search_index == "elasticsearch":
        index = build_search_index(settings)
        try:
            index.upsert([entry_of(manifest)])
        finally:
            index.close()
    catalog = _open_catalog(settings)
    try:
        catalog.commit_document(manifest, manifest_key)
    finally:
        catalog.close()


# documents taken out of the catalog and index after a correction could not be indexed (``reindex_or_hide``)


def _pending_dir(archive: Path) -> Path:
    return archive / PENDING_DIR


def mark_pending(archive: Path, doc_id: str, manifest_key: str, reason: str) -> None:
    """Note (durably, before the document is taken out) that ``doc_id`` waits to be re-indexed."""
    folder = _pending_dir(archive)
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"doc_id": doc_id, "manifest_key": manifest_key, "reason": reason[:500],
                       "at": datetime.now(UTC).isoformat(timespec="seconds")}, ensure_ascii=False)
    temp = folder / f".{doc_id}.{os.getpid()}.{threading.get_ident()}.tmp"
    with temp.open("w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, folder / f"{doc_id}.json")


def pending_reindex(archive: Path) -> dict[str, str]:
    """The documents waiting to be re-indexed: id -> manifest key."""
    out: dict[str, str] = {}
    folder = _pending_dir(archive)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[str(data["doc_id"])] = str(data["manifest_key"])
        except (OSError, ValueError, KeyError, TypeError):
            log.error("unreadable re-index marker %s", path)
    return out


def clear_pending(archive: Path, doc_id: str | None = None) -> None:
    """Forget the marker of ``doc_id`` (every marker: ``None``) once it is indexed again."""
    folder = _pending_dir(archive)
    if doc_id is not None:
        (folder / f"{doc_id}.json").unlink(missing_ok=True)
    elif folder.is_dir():
        for path in folder.glob("*.json"):
            path.unlink(missing_ok=True)


def hide_document(settings: Settings, doc_id: str) -> None:
    """Take the document out of the search index(es) and the catalog (fail closed: no reader finds it, at any
    level, until it is re-indexed). The catalog row and its index rows go in one transaction."""
    failed: Exception | None = None
    if settings.search_index == "elasticsearch":
        try:
            index = build_search_index(settings)
            try:
                index.delete([doc_id])
            finally:
                index.close()
        except Exception as exc:  # the catalog still goes: fewer readers find it
            failed = exc
    if archive_has_catalog(settings):
        catalog = _open_catalog(settings)
        try:
            catalog.remove_document(doc_id)
        finally:
            catalog.close()
    if failed is not None:
        raise failed


def reindex_or_hide(settings: Settings, manifest: DocumentManifest, manifest_key: str, *, version: int) -> None:
    """``reindex_document``, tried again after each of ``REINDEX_RETRY_DELAYS_S``; when every attempt fails the
    document is marked pending and taken out of the catalog and index (``hide_document``; if even that fails, it
    is tried again in the background), and ``ReindexPending`` is raised: the correction is saved, the document is
    found again once the next start, ``sohoa reindex`` or correction indexes it."""
    archive = settings.archive_path()
    last: Exception | None = None
    for delay in (*REINDEX_RETRY_DELAYS_S, None):
        try:
            reindex_document(settings, manifest, manifest_key)
        except Exception as exc:
            last = exc
            log.warning("re-indexing %s failed: %s", manifest.id, exc)
            if delay is not None:
                time.sleep(delay)
            continue
        clear_pending(archive, manifest.id)
        return
    assert last is not None
    mark_pending(archive, manifest.id, manifest_key, f"{type(last).__name__}: {last}")
    saved = f"Đã lưu chỉnh sửa (bản {version}) của văn bản {manifest.id} nhưng chưa cập nhật được chỉ mục ({last})"
    fix = ("khởi động lại ứng dụng web hoặc chạy sohoa reindex; nếu lỗi lặp lại, kiểm tra cơ sở dữ liệu danh mục "
           "(catalog.sqlite hoặc PostgreSQL: đang bị khóa?) hoặc Elasticsearch")
    try:
        hide_document(settings, manifest.id)
    except Exception as exc:
        log.error("%s could not be taken out of the index either (%s): retrying in the background", manifest.id, exc)
        _retry_in_background(settings, manifest.id)
        raise ReindexPending(f"{saved}, và chưa đưa được văn bản ra khỏi chỉ mục ({exc}): hệ thống đang thử lại",
                             fix=fix) from last
    log.error("%s taken out of the catalog and index until it is re-indexed: %s", manifest.id, last)
    raise ReindexPending(f"{saved}: văn bản tạm thời được đưa ra khỏi danh mục và chỉ mục tìm kiếm cho đến khi "
                         "được lập chỉ mục lại", fix=fix) from last


def _retry_in_background(settings: Settings, doc_id: str) -> None:
    """Until the document is re-indexed or out of the index (its marker cleared, or this process ends): try the
    one, else the other, waiting 2 s, 4 s... up to a minute between attempts."""
    archive = settings.archive_path()

    def run() -> None:
        delay = 2.0
        while doc_id in pending_reindex(archive):
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
            try:
                with writing(settings):
                    manifest_key = pending_reindex(archive).get(doc_id)
                    if manifest_key is None:
                        return
                    try:
                        _reindex_from_store(settings, build_object_store(settings), doc_id, manifest_key)
                        return
                    except CorrectionsUnreadable:
                        pass  # stays out of the index until its corrections are restored
                    hide_document(settings, doc_id)
                    return
            except Exception as exc:
                log.warning("re-indexing %s: still failing (%s)", doc_id, exc)

    threading.Thread(target=run, name=f"sohoa-reindex-{doc_id}", daemon=True).start()


def _reindex_from_store(settings: Settings, store: ObjectStore, doc_id: str, manifest_key: str,
                        port: CorrectionStore | None = None) -> None:
    """Index the stored manifest with its corrections applied, and clear its pending marker; call in ``writing``.
    ``CorrectionsUnreadable`` (nothing indexed) when its corrections are damaged or lost."""
    machine = DocumentManifest.model_validate_json(store.get_bytes(manifest_key))
    port = port or corrections_of(store, settings.archive_path())
    edits = [e for c in port.history(doc_id) for e in c.edits()]
    manifest = corrected(machine, edits)
    reindex_document(settings, manifest, manifest_key)
    clear_pending(settings.archive_path(), doc_id)
    pdf_text.refresh(store, machine, manifest, edits)  # a PDF/A whose regeneration failed earlier


def reapply(settings: Settings, store: ObjectStore, doc_ids: Iterable[str] | None = None) -> int:
    """Re-apply the corrections of every corrected document (or of ``doc_ids``) that the catalog holds, and index
    again every document taken out after a failed re-index (``reindex_or_hide``); returns how many. A document
    whose corrections are unreadable is left as it is (reported)."""
    archive = settings.archive_path()
    port = corrections_of(store, archive)
    edited = sorted(port.documents() if doc_ids is None else set(doc_ids))
    waiting = pending_reindex(archive) if doc_ids is None else {}
    if not (edited or waiting) or not archive_has_catalog(settings):
        return 0
    count = 0
    catalog = _open_catalog(settings)
    try:
        entries = {d: e.manifest_key for d in edited if (e := catalog.get(d)) is not None}
    finally:
        catalog.close()
    entries |= {d: k for d, k in waiting.items() if d not in entries}
    for doc_id, manifest_key in entries.items():
        with writing(settings):  # a correction saved meanwhile is not undone by a stale re-apply
            try:
                _reindex_from_store(settings, store, doc_id, manifest_key, port)
            except ObjectMissing:
                log.warning("corrections of %s kept, but its manifest is missing", doc_id)
                continue
            except CorrectionsUnreadable as exc:
                log.error("%s", exc)
                continue
        count += 1
    return count


def rebuild_index(store: ObjectStore, catalog: Catalog, external: SearchIndex | None = None, *,
                  archive: Path | None = None) -> ReindexReport:
    """``flows.preservation.rebuild_index`` with the corrections applied: the catalog and index are rebuilt from
    the stored manifests AND their corrections, in one transaction. A document whose corrections cannot be read
    — damaged, or recorded in ``archive``'s audit trail (default: the embedded store's archive) but lost from the
    store — is reported and not indexed (like a manifest that fails its seal): it would otherwise be shown as the
    machine read it, perhaps below the classification an archivist gave it. Clears ``archive``'s pending
    re-index markers."""
    started = time.monotonic()
    report = ReindexReport(store=store.describe())
    port = corrections_of(store, archive)
    edited = port.documents()

    def documents(problems: list[FixityProblem]) -> Iterator[tuple[DocumentManifest, str]]:
        for manifest, key in stored_manifests(store, problems):
            if manifest.id not in edited:
                yield manifest, key
                continue
            try:
                yield corrected(manifest, [e for c in port.history(manifest.id) for e in c.edits()]), key
            except CorrectionsUnreadable as exc:
                problems.append(FixityProblem(kind="unreadable", key=corrections_prefix(manifest.id),
                                              document=manifest.id, detail=exc.message))

    if external is not None:
        external.replace_all(entry_of(m) for m, _ in documents([]))
    report.documents_indexed = catalog.rebuild(documents(report.problems))
    if archive is not None:
        clear_pending(archive)
    report.elapsed_s = round(time.monotonic() - started, 2)
    return report
