"""Backups and index rebuilds: the object store is the record, everything else is a copy or a cache.

``backup_store`` copies an archive's objects to a second store, verified by checksum, copying only what the
target does not already hold; a document's manifest goes last, so an interrupted backup never shows a document
whose files are not all there. A source object that no longer matches its manifest is NOT copied (a backup
must not spread damage): it is reported. Run in the other direction (``--archive BACKUP --to ARCHIVE``) it is
a restore: damaged or missing objects of the archive are replaced by the backup's verified copies.
``rebuild_index`` re-creates the catalog and search index from the stored manifests alone. Every backup also
anchors the archive's audit trail (``audit/anchor.json``) in both stores (``flows.audit.copy_anchor``).
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flows.audit import STORE_ANCHOR, archive_of_store, copy_anchor
from flows.fixity import now_iso, read_manifest, unsealed_only
from flows.pdf_text import fixity_files
from schemas.checksums import sha256_file
from schemas.document import DocumentManifest
from schemas.fixity import BackupReport, FixityProblem, ReindexReport
from storage.catalog import Catalog
from storage.layout import MANIFEST, MANIFEST_SEAL, doc_id_of, manifest_key, prefix_of
from storage.objects import ImmutableObjectError, ObjectMissing, ObjectStore
from storage.search_index import SearchIndex, entry_of

COPY_THREADS = 4


class _Copier:
    def __init__(self, source: ObjectStore, target: ObjectStore, work: Path, report: BackupReport) -> None:
        self.source, self.target, self.work, self.report = source, target, work, report
        self._lock = threading.Lock()  # the report's counters, updated from several threads

    def _count(self, *, seen: int = 0, copied: int = 0, size: int = 0, repaired: int = 0) -> None:
        with self._lock:
            self.report.objects_repaired += repaired
            self.report.objects_seen += seen
            self.report.objects_copied += copied
            self.report.bytes_copied += size

    def copy(self, key: str, sha256: str | None) -> FixityProblem | None:
        """Copy ``key`` unless the target holds it with ``sha256`` (``None``: the source's recorded checksum)."""
        expected = sha256 or self.source.recorded_sha256(key)
        if expected is None:
            return FixityProblem(kind="missing", key=key, document=doc_id_of(key), detail="không có trong kho nguồn")
        if self.target.recorded_sha256(key) == expected:
            return None
        tmp = self.work / uuid.uuid4().hex
        try:
            self.source.get_file(key, tmp)
            actual = sha256_file(tmp)
            if actual != expected:
                return FixityProblem(kind="changed", key=key, document=doc_id_of(key),
                                     detail="bản trong kho nguồn không khớp bản kê — không sao lưu")
            try:
                self.target.put_file(key, tmp, actual)
            except ImmutableObjectError:
                # The target's original differs from the manifest's checksum: it is damaged (a different
                # valid original would belong to a different document id). Replace it: a restore.
                self.target.delete(key)
                self.target.put_file(key, tmp, actual)
                self._count(repaired=1)
            self._count(copied=1, size=tmp.stat().st_size)
            return None
        except ObjectMissing:
            return FixityProblem(kind="missing", key=key, document=doc_id_of(key), detail="không có trong kho nguồn")
        finally:
            tmp.unlink(missing_ok=True)

    def document(self, doc_id: str) -> list[FixityProblem]:
        manifest, problems = read_manifest(self.source, doc_id)
        if manifest is None or problems:
            return problems
        prefix = prefix_of(doc_id)
        regenerated, _ = fixity_files(self.source, doc_id)  # PDF/A regenerated after page-text corrections
        keys = [(prefix + f.key, f.sha256) for f in [*manifest.files, *regenerated]]
        self._count(seen=len(keys) + 2)
        out = [p for key, sha in keys if (p := self.copy(key, sha)) is not None]
        if not out:  # the seal, then the manifest: the document exists in the target only when complete
            out += [p for key in (prefix + MANIFEST_SEAL, prefix + MANIFEST) if (p := self.copy(key, None))]
        return out


def backup_store(source: ObjectStore, target: ObjectStore, *, audit_archive: Path | None = None) -> BackupReport:
    """Copy every complete document (and the kept audit reports) from ``source`` to ``target``, and anchor the
    audit trail of ``audit_archive`` (default: the embedded source store's archive) in both."""
    report = BackupReport(source=source.describe(), target=target.describe(), started_at=now_iso())
    docs: set[str] = set()
    others: list[str] = []
    for key in source.list(""):
        doc_id = doc_id_of(key)
        if doc_id is None:
            if key != STORE_ANCHOR:  # never copied blindly: an older anchor must not replace a newer one
                others.append(key)
        elif key == manifest_key(doc_id):
            docs.add(doc_id)  # documents without a manifest are still being stored: not part of the archive yet
    with tempfile.TemporaryDirectory(prefix="sohoa-backup-") as tmp:
        copier = _Copier(source, target, Path(tmp), report)
        with ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="backup") as pool:
            for problems in pool.map(copier.document, sorted(docs)):
                report.problems += problems
        for key in others:
            copier._count(seen=1)
            if (problem := copier.copy(key, None)) is not None:
                report.problems.append(problem)
    copy_anchor(source, target, audit_archive or archive_of_store(source))
    report.finished_at = now_iso()
    return report


def stored_manifests(store: ObjectStore, problems: list[FixityProblem]) -> Iterator[tuple[DocumentManifest, str]]:
    """Every readable stored manifest whose seal matches (or that has no seal yet) with its key, in document-id
    order; the problems found are appended to ``problems``."""
    by_doc: dict[str, bool] = defaultdict(bool)
    for key in store.list(""):
        doc_id = doc_id_of(key)
        if doc_id is not None and key == manifest_key(doc_id):
            by_doc[doc_id] = True
    for doc_id in sorted(by_doc):
        manifest, found = read_manifest(store, doc_id)
        problems += found
        if manifest is not None and (not found or unsealed_only(found)):  # unsealed: stored before seals existed
            yield manifest, manifest_key(doc_id)


def rebuild_index(store: ObjectStore, catalog: Catalog, external: SearchIndex | None = None) -> ReindexReport:
    """Replace the catalog and search index with what the store's manifests say (one SQLite transaction). With an
    external index (Elasticsearch) it is rebuilt first, behind its alias, from the same manifests."""
    started = time.monotonic()
    report = ReindexReport(store=store.describe())
    if external is not None:
        external.replace_all(entry_of(m) for m, _ in stored_manifests(store, []))
    report.documents_indexed = catalog.rebuild(stored_manifests(store, report.problems))
    report.elapsed_s = round(time.monotonic() - started, 2)
    return report
