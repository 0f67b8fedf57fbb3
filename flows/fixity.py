"""Fixity audit (``sohoa verify``): recompute every stored object's SHA-256 against its document's manifest.

Per document: the manifest against its seal (``document.json.sha256``), then every file the manifest lists
(missing or changed), then objects under the document that no manifest lists (unexpected: a half-stored
document or a stray file). A full audit also compares the store with the catalog (documents stored but not
indexed, index entries without a stored document). The report is kept in the store under ``audit/fixity/``;
the archival packages' PREMIS fixity events are read from there. Every run also anchors the archive's audit trail
in the store (``audit/anchor.json``, ``flows.audit.anchor_in_store``), so a later wipe of the trail is found, and
checks the store against the corrections that trail recorded (``flows.corrections.audit_problems``: a deleted or
replaced correction may silently undo a raised classification).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from flows.audit import anchor_in_store, archive_of_store
from flows.database_backup import DUMPS, dump_problems
from flows.pdf_text import fixity_files
from schemas.document import DocumentManifest
from schemas.fixity import FixityProblem, FixityReport
from storage.catalog import Catalog
from storage.layout import FIXITY_REPORTS, MANIFEST, MANIFEST_SEAL, doc_id_of, prefix_of, seal_of
from storage.objects import ObjectMissing, ObjectStore, StoreUnavailable
from storage.search_index import SearchIndex

HASH_THREADS = 4  # hashing is I/O bound (file or network) and releases the GIL


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(store: ObjectStore, doc_id: str) -> tuple[DocumentManifest | None, list[FixityProblem]]:
    """The document's manifest if it is intact (its seal matches), with the problems found reading it."""
    prefix = prefix_of(doc_id)
    problems: list[FixityProblem] = []
    try:
        body = store.get_bytes(prefix + MANIFEST)
    except ObjectMissing:
        return None, [FixityProblem(kind="missing", key=prefix + MANIFEST, document=doc_id)]
    except StoreUnavailable:
        raise
    except Exception as exc:  # an unreadable object is a finding, never the end of the audit or the rebuild
        return None, [_unreadable(prefix + MANIFEST, doc_id, exc)]
    try:
        seal = store.get_bytes(prefix + MANIFEST_SEAL).decode("ascii", "replace").strip()
    except StoreUnavailable:
        raise
    except Exception as exc:
        if not isinstance(exc, ObjectMissing):
            return None, [_unreadable(prefix + MANIFEST_SEAL, doc_id, exc)]
        problems.append(FixityProblem(kind="missing", key=prefix + MANIFEST_SEAL, document=doc_id,
                                      detail="thiếu mã kiểm tra của document.json (kho cũ: sohoa verify "
                                             "--seal-missing niêm phong các văn bản còn nguyên vẹn)"))
    else:
        actual = hashlib.sha256(body).hexdigest()
        if actual != seal:
            problems.append(FixityProblem(kind="changed", key=prefix + MANIFEST, document=doc_id,
                                          detail=f"SHA-256 {actual[:16]}… khác mã kiểm tra {seal[:16]}…; các tệp "
                                                 "của văn bản sẽ được kiểm lại khi khôi phục document.json"))
    try:
        return DocumentManifest.model_validate_json(body), problems
    except (ValidationError, ValueError) as exc:
        count = exc.error_count() if isinstance(exc, ValidationError) else 1
        problems.append(FixityProblem(kind="unreadable", key=prefix + MANIFEST, document=doc_id,
                                      detail=f"document.json không đọc được: {count} lỗi"))
        return None, problems


def unsealed_only(problems: list[FixityProblem]) -> bool:
    """True when the only problem is a missing seal (a document stored before manifests were sealed)."""
    return bool(problems) and all(p.kind == "missing" and p.key.endswith(MANIFEST_SEAL) for p in problems)


def check_document(
    store: ObjectStore, doc_id: str, keys: Iterable[str], *, seal_missing: bool = False
) -> tuple[list[FixityProblem], int, int]:
    """Problems of one document, objects checked, bytes checked. ``keys``: what the store holds under it.

    ``seal_missing``: a document without a seal whose every file matches its manifest gets its seal now (the
    one-time upgrade of archives made before manifests were sealed); no problem is reported for it then.
    """
    prefix = prefix_of(doc_id)
    present = set(keys)
    if prefix + MANIFEST not in present:
        lost = [FixityProblem(kind="missing", key=prefix + MANIFEST, document=doc_id,
                              detail="mất document.json, hoặc văn bản đang được lưu")] \
            if prefix + MANIFEST_SEAL in present else []
        return lost + [FixityProblem(kind="unexpected", key=k, document=doc_id,
                                     detail="không thuộc văn bản nào đã lưu xong (thiếu document.json)")
                       for k in sorted(present)], 0, 0
    manifest, problems = read_manifest(store, doc_id)
    if any(p.kind == "changed" for p in problems):
        # A manifest that fails its seal cannot vouch for its files (a flipped byte may sit in a checksum or a
        # name): it alone is reported, and the files are judged again once it is restored from a backup.
        return problems, 1, 0
    objects, size = 1, 0
    expected = {prefix + MANIFEST, prefix + MANIFEST_SEAL}
    regenerated, unreadable = fixity_files(store, doc_id)  # PDF/A regenerated after page-text corrections
    problems += unreadable
    for f in [*(manifest.files if manifest else []), *(regenerated if manifest else [])]:
        key = prefix + f.key
        expected.add(key)
        if key not in present:
            problems.append(FixityProblem(kind="missing", key=key, document=doc_id))
            continue
        try:
            actual = store.sha256(key)
        except ObjectMissing:
            problems.append(FixityProblem(kind="missing", key=key, document=doc_id))
            continue
        except StoreUnavailable:
            raise
        except Exception as exc:  # permissions, a folder where a file should be, an I/O error: a finding
            problems.append(_unreadable(key, doc_id, exc))
            continue
        objects, size = objects + 1, size + f.bytes
        if actual != f.sha256:
            problems.append(FixityProblem(kind="changed", key=key, document=doc_id,
                                          detail=f"SHA-256 {actual[:16]}… khác bản kê {f.sha256[:16]}…"))
    if manifest is not None:
        problems += [FixityProblem(kind="unexpected", key=k, document=doc_id, detail="không có trong document.json")
                     for k in sorted(present - expected)]
    if seal_missing and unsealed_only(problems):
        body = store.get_bytes(prefix + MANIFEST)
        store.put_bytes(prefix + MANIFEST_SEAL, seal_of(body))
        problems = []
    return problems, objects, size


def _unreadable(key: str, doc_id: str, exc: BaseException) -> FixityProblem:
    return FixityProblem(kind="unreadable", key=key, document=doc_id,
                         detail=f"không đọc được đối tượng ({type(exc).__name__}: {exc})")


def _check_fenced(store: ObjectStore, doc_id: str, keys: list[str], seal_missing: bool) -> tuple[
        list[FixityProblem], int, int]:
    """``check_document``; any fault of one document's objects is a finding of that document (the audit goes on);
    an unreachable store still ends it (every document would be a false finding)."""
    try:
        return check_document(store, doc_id, keys, seal_missing=seal_missing)
    except StoreUnavailable:
        raise
    except Exception as exc:
        return [_unreadable(prefix_of(doc_id), doc_id, exc)], 0, 0


def _index_problems(store_docs: set[str], indexed: set[str]) -> list[FixityProblem]:
    out = [FixityProblem(kind="not_indexed", key=d, document=d, detail="đã lưu nhưng chưa có trong chỉ mục")
           for d in sorted(store_docs - indexed)]
    out += [FixityProblem(kind="orphan_index", key=d, document=d, detail="có trong chỉ mục nhưng không có trong kho")
            for d in sorted(indexed - store_docs)]
    return out


def verify_store(
    store: ObjectStore, *, catalog: Catalog | None = None, external: SearchIndex | None = None,
    sample: int | None = None,
    rng: random.Random | None = None, keep_report: bool = True, seal_missing: bool = False,
    audit_archive: Path | None = None,
) -> FixityReport:
    """Audit ``store`` (every document, or a random ``sample`` of them) and keep the report in it.
    ``seal_missing``: seal intact documents stored before manifests were sealed (see ``check_document``).
    ``audit_archive``: the archive whose audit trail is anchored in ``store`` (default: the catalog's archive,
    else the embedded store's)."""
    report = FixityReport(store=store.describe(), started_at=now_iso(), sample=sample)
    by_doc: dict[str, list[str]] = defaultdict(list)
    dumps: list[str] = []  # database dumps written by backups (flows.database_backup)
    for key in store.list(""):
        doc_id = doc_id_of(key)
        if doc_id is not None:
            by_doc[doc_id].append(key)
        elif key.startswith(DUMPS):
            dumps.append(key)
        elif not key.startswith("audit/"):
            report.problems.append(FixityProblem(kind="unexpected", key=key, detail="ngoài cấu trúc kho"))
    if sample is None:
        report.problems += dump_problems(store, dumps)
    chosen = sorted(by_doc)
    if sample is not None and sample < len(chosen):
        chosen = sorted((rng or random.Random()).sample(chosen, sample))
    with ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="fixity") as pool:
        results = list(pool.map(lambda d: _check_fenced(store, d, by_doc[d], seal_missing), chosen))
    for doc_id, (problems, objects, size) in zip(chosen, results, strict=True):
        report.problems += problems
        report.objects_checked += objects
        report.bytes_checked += size
        report.documents[doc_id] = "fail" if problems else "pass"
    report.documents_checked = len(chosen)
    if catalog is not None and sample is None:
        stored = {d for d in by_doc if prefix_of(d) + MANIFEST in by_doc[d]}
        report.problems += _index_problems(stored, {e.id for e in catalog.entries()})
        if external is not None:  # Elasticsearch must hold the same documents as the catalog
            report.problems += [p.model_copy(update={"detail": f"Elasticsearch: {p.detail}"})
                                for p in _index_problems(stored, external.ids())]
    archive = audit_archive or (catalog.path.parent if catalog is not None and catalog.path is not None
                                else archive_of_store(store))
    if archive is not None:  # corrections the archive's audit trail recorded must still be in the store as written
        from flows.corrections import audit_problems

        lost = audit_problems(store, archive)
        report.problems += lost
        for problem in lost:
            if problem.document in report.documents:
                report.documents[problem.document] = "fail"
    report.finished_at = now_iso()
    if keep_report:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        store.put_bytes(f"{FIXITY_REPORTS}{stamp}.json", report.model_dump_json(indent=1).encode("utf-8"))
    if archive is not None:
        anchor_in_store(archive, store)
    return report


def fixity_history(store: ObjectStore) -> dict[str, list[tuple[str, str]]]:
    """(finished_at, outcome) of every kept audit, per document id, oldest first (for PREMIS events)."""
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in store.list(FIXITY_REPORTS):
        try:
            report = FixityReport.model_validate_json(store.get_bytes(key))
        except (ValidationError, ObjectMissing):
            continue
        for doc_id, outcome in report.documents.items():
            events[doc_id].append((report.finished_at, outcome))
    return {d: sorted(v) for d, v in events.items()}

