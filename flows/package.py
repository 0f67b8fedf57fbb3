"""Write E-ARK CSIP/AIP archival packages (``sohoa export --package DIR``): one per document, or per hồ sơ.

Every object is copied out of the store and its SHA-256 checked against the document's manifest; a mismatch or
a missing object is a problem naming the file, and that package is not written. A package is assembled in
``DIR/.<package-id>.part`` and renamed into place only when complete, so no half-written package is ever
visible. An existing package is never overwritten: re-exporting the same documents reproduces it byte for
byte (the package keeps its first creation date) and is reported ``unchanged``; a package that would differ
(new fixity checks, changed metadata) is refused with a problem — move the old one away to export again.
The layout and the METS/EAD/PREMIS documents come from the ``aip`` package.

A package speaks only of what its reader may see (``flows.access``): exported for a principal (the CLI's
``--as USER``), it holds no document above their clearance (not even inside a hồ sơ package), and a review
reason naming such a document (a possible duplicate) is left out of the EAD, the PREMIS events and the
package's copy of ``document.json`` (then written from the manifest with the reasons they may read, in the
store's own format; nothing marks what was left out).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, computed_field

import aip
from aip import FixityEvent, PackageFile, PackageLayoutError, PackagePlan
from flows.access import TOP_LEVEL, Levels, Principal, level_of, visible_reasons, visible_status
from flows.wiring import software_version
from schemas.checksums import sha256_file
from schemas.document import DocumentManifest
from schemas.errors import SohoaError
from schemas.reasons import Reason
from schemas.settings import Settings
from storage.catalog import Catalog
from storage.layout import DOCUMENTS, MANIFEST_SEAL, doc_id_of, manifest_key, prefix_of
from storage.objects import ObjectMissing, ObjectStore

FixityInput = Mapping[str, Sequence[FixityEvent | tuple[datetime | str, str] | tuple[datetime | str, str, str]]]


class PackageProblem(BaseModel):
    package: str  # package id
    document: str | None = None
    file: str | None = None  # path in the package (or store key) of the file at fault
    detail: str


class PackageResult(BaseModel):
    id: str
    path: str
    status: Literal["written", "unchanged", "failed"]
    documents: list[str]
    files: int = 0  # files in the package (data and metadata)
    bytes: int = 0


class PackageReport(BaseModel):
    dest: str
    packages: list[PackageResult] = Field(default_factory=list)
    problems: list[PackageProblem] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.problems

    @computed_field  # type: ignore[prop-decorator]
    @property
    def documents(self) -> int:
        return sum(len(p.documents) for p in self.packages if p.status != "failed")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def files(self) -> int:
        return sum(p.files for p in self.packages if p.status != "failed")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.packages if p.status != "failed")


def load_manifests(store: ObjectStore, ids: Iterable[str] | None = None, *,
                   archive: Path | None = None) -> list[DocumentManifest]:
    """The manifests of ``ids`` (default: every document in the store), sorted by id, with their corrections
    (checked against ``archive``'s audit trail when given). ``ObjectMissing`` for an unknown id; a manifest that
    does not parse raises ``pydantic.ValidationError``."""
    if ids is None:
        ids = {d for k in store.list(DOCUMENTS) if (d := doc_id_of(k)) is not None and k == manifest_key(d)}
    from flows.corrections import corrected_manifest  # the archivists' corrections (object store) applied

    return [corrected_manifest(store, DocumentManifest.model_validate_json(store.get_bytes(manifest_key(i))),
                               archive=archive)
            for i in sorted(set(ids))]


def store_levels(store: ObjectStore) -> Levels:
    """``flows.access.Levels`` from the store: a document's secrecy level, the higher of its stored manifest's
    (the machine reading) and the archivists' correction of it; ``None`` when the store has no such document
    (a manifest or correction that cannot be read counts as the top level)."""
    from flows.corrections import corrected_manifest

    known: dict[str, int | None] = {}

    def level(doc_id: str) -> int | None:
        if doc_id not in known:
            try:
                body = store.get_bytes(manifest_key(doc_id))
            except (ObjectMissing, OSError, ValueError):
                known[doc_id] = None
            else:
                try:
                    stored = DocumentManifest.model_validate_json(body)
                    known[doc_id] = max(level_of(stored.metadata.classification),
                                        level_of(corrected_manifest(store, stored).metadata.classification))
                except (ValidationError, SohoaError, OSError, ValueError):
                    known[doc_id] = TOP_LEVEL
        return known[doc_id]

    return level


def archive_levels(store: ObjectStore, catalog: Catalog | None) -> Levels:
    """A document's secrecy level as the archive knows it: the highest of the store's (``store_levels``) and the
    catalog's; ``None`` when neither knows the document."""
    stored = store_levels(store)

    def level(doc_id: str) -> int | None:
        entry = catalog.get(doc_id) if catalog is not None else None
        found = [lv for lv in (stored(doc_id), level_of(entry.metadata.get("classification")) if entry else None)
                 if lv is not None]
        return max(found) if found else None

    return level


def export_for(
    settings: Settings, principal: Principal, dest: Path, *, query: str | None = None, batch: str | None = None,
    now: datetime, by_file_code: bool = False, replace: bool = False, store: ObjectStore | None = None,
) -> PackageReport:
    """``sohoa export --package``: the packages of the documents ``principal`` may see — every match of
    ``query`` (read page by page to the last), or every document in the store — of ``batch`` if given."""
    from flows.corrections import migrate_legacy
    from flows.export import matching_ids
    from flows.fixity import fixity_history
    from flows.wiring import build_object_store, open_existing_catalog

    store = store or build_object_store(settings)
    migrate_legacy(settings, store)  # corrections an earlier version kept in web.sqlite3 apply to packages too
    catalog = open_existing_catalog(settings)
    try:
        ids = matching_ids(settings, query, principal=principal, batch=batch) if query else None
        manifests = [m for m in load_manifests(store, ids, archive=settings.archive_path())
                     if batch is None or m.batch == batch]
        return export_packages(store, manifests, dest, now=now, by_file_code=by_file_code, replace=replace,
                               fixity_events=fixity_events_from_history(fixity_history(store)),
                               principal=principal, levels=archive_levels(store, catalog))
    finally:
        if catalog is not None:
            catalog.close()


def fixity_events_from_history(history: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, list[FixityEvent]]:
    """``flows.fixity.fixity_history`` output ((finished_at, "pass"/"fail") per document) as PREMIS events."""
    return {doc_id: [FixityEvent(at, outcome, "Kiểm tra định kỳ SHA-256 các tệp trong kho (sohoa verify)")
                     for at, outcome in checks]
            for doc_id, checks in history.items()}


def export_packages(
    store: ObjectStore,
    manifests: Iterable[DocumentManifest],
    dest: Path,
    *,
    now: datetime,
    by_file_code: bool = False,
    fixity_events: FixityInput | None = None,
    file_titles: Mapping[str, str] | None = None,
    version: str | None = None,
    replace: bool = False,
    principal: Principal | None = None,
    levels: Levels | None = None,
) -> PackageReport:
    """Write the packages of ``manifests`` under ``dest``: one per document (package id = document id), or with
    ``by_file_code`` one per hồ sơ (package id = the file_code made filesystem-safe; documents without a
    file_code still get their own). ``fixity_events``: earlier fixity checks per document id, for PREMIS.
    ``file_titles``: hồ sơ titles by file_code. ``now``: the packages' creation time. ``replace``: a package
    already in place with different content (e.g. newer fixity events) is replaced, atomically; otherwise it is
    left alone and reported. ``principal``: who the packages are for (``flows.access``): documents above their
    clearance are left out, and review reasons naming one (by ``levels``, default: the stored manifests') are
    withheld; without one (or for the local operator) everything is exported as stored."""
    reasons: Callable[[DocumentManifest], list[Reason]] | None = None
    if principal is not None and not principal.operator:
        reader, known = principal, levels or store_levels(store)
        manifests = [m for m in manifests  # the manifest's own mark, and the archive's (corrections included)
                     if reader.may_see(m.metadata.classification) and (known(m.id) or 0) <= reader.clearance]

        def reasons(doc: DocumentManifest) -> list[Reason]:
            return visible_reasons(reader, doc.review_reasons, known)

    dest.mkdir(parents=True, exist_ok=True)
    report = PackageReport(dest=str(dest))
    version = version or software_version()
    taken: dict[str, str | None] = {}
    for file_code, docs in aip.group_documents(manifests, by_file_code=by_file_code):
        package_id = aip.package_id_for(file_code, docs)
        if package_id in taken:
            report.problems.append(PackageProblem(
                package=package_id, detail=f"hai gói cùng tên thư mục {package_id} "
                                           f"(mã hồ sơ {taken[package_id] or '-'} và {file_code or docs[0].id})"))
            report.packages.append(PackageResult(id=package_id, path=str(dest / package_id), status="failed",
                                                 documents=[d.id for d in docs]))
            continue
        taken[package_id] = file_code
        title = None
        if file_code:  # hồ sơ title: given, else one a manifest carries (if the schema grows a file_title)
            title = (file_titles or {}).get(file_code) or next(
                (t for t in (getattr(d, "file_title", None) for d in docs) if isinstance(t, str) and t.strip()), None)
        result, problems = _export_one(store, docs, dest, file_code=file_code, title=title, now=now,
                                       fixity_events=fixity_events or {}, version=version, replace=replace,
                                       reasons=reasons)
        report.packages.append(result)
        report.problems += problems
    return report


def _existing_created(final: Path) -> datetime | str | None:
    """The creation date of a package already in place (a re-export reproduces it), if readable."""
    try:
        root = ET.parse(final / aip.METS_FILE).getroot()
    except (OSError, ET.ParseError):
        return None
    hdr = root.find(f"{{{aip.METS_NS}}}metsHdr")
    return hdr.get("CREATEDATE") if hdr is not None else None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(root: Path, rel: str, data: bytes) -> None:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _copy_verified(store: ObjectStore, plan: PackagePlan, part: Path) -> list[PackageProblem]:
    """Copy every data file out of the store into ``part``, checking size and SHA-256 against the manifest."""
    problems: list[PackageProblem] = []
    for f in plan.files:
        target = part / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        key = prefix_of(f.doc_id) + f.source_key
        try:
            store.get_file(key, target)
        except ObjectMissing:
            problems.append(PackageProblem(package=plan.package_id, document=f.doc_id, file=f.path,
                                           detail=f"thiếu {key} trong kho"))
            continue
        except OSError as exc:
            problems.append(PackageProblem(package=plan.package_id, document=f.doc_id, file=f.path,
                                           detail=f"không đọc được {key}: {exc}"))
            continue
        actual = sha256_file(target)
        size = target.stat().st_size
        if actual != f.sha256 or size != f.size:
            problems.append(PackageProblem(
                package=plan.package_id, document=f.doc_id, file=f.path,
                detail=f"{key}: SHA-256 {actual[:16]}… ({size} byte) khác bản kê {f.sha256[:16]}… ({f.size} byte)"))
            continue
        _fsync(target)
    return problems


def _manifest_copy(store: ObjectStore, doc: DocumentManifest, package_id: str
                   ) -> tuple[bytes | None, list[PackageProblem]]:
    """The stored ``document.json`` of ``doc``: checked against its seal and against the manifest exported."""
    key = manifest_key(doc.id)

    def problem(detail: str) -> tuple[None, list[PackageProblem]]:
        return None, [PackageProblem(package=package_id, document=doc.id, file=key, detail=detail)]

    try:
        body = store.get_bytes(key)
    except ObjectMissing:
        return problem(f"thiếu {key} trong kho")
    try:
        seal = store.get_bytes(prefix_of(doc.id) + MANIFEST_SEAL).decode("ascii", "replace").strip()
    except ObjectMissing:
        seal = None  # manifests written before seals existed
    actual = hashlib.sha256(body).hexdigest()
    if seal is not None and actual != seal:
        return problem(f"{key}: SHA-256 {actual[:16]}… khác mã kiểm tra {seal[:16]}…")
    try:
        stored = DocumentManifest.model_validate_json(body)
    except ValidationError as exc:
        return problem(f"{key} không đọc được: {exc.error_count()} lỗi")
    from flows.corrections import corrected_manifest

    if corrected_manifest(store, stored) != doc:  # ``doc``: as loaded, with its corrections (load_manifests)
        return problem(f"{key} trong kho khác bản kê đang xuất (văn bản đã thay đổi?)")
    return body, []


def _manifest_body(manifest: DocumentManifest) -> bytes:
    """A manifest in the store's own format (``flows.document.store_manifest``)."""
    return json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=1).encode("utf-8")


def _redacted(body: bytes, reasons: Callable[[DocumentManifest], list[Reason]]) -> bytes:
    """The stored manifest ``body`` (the machine reading, kept as provenance) with only the review reasons its
    reader may read, in the store's own format."""
    stored = DocumentManifest.model_validate_json(body)
    shown = reasons(stored)
    return _manifest_body(stored.model_copy(update={
        "review_reasons": shown, "status": visible_status(stored.status, stored.review_reasons, shown)}))


def _as_shown(doc: DocumentManifest, reasons: Callable[[DocumentManifest], list[Reason]] | None) -> DocumentManifest:
    """``doc`` with only the review reasons its reader may read (``doc`` itself when that is all of them)."""
    if reasons is None:
        return doc
    shown = reasons(doc)
    return doc if shown == doc.review_reasons else doc.model_copy(update={
        "review_reasons": shown, "status": visible_status(doc.status, doc.review_reasons, shown)})


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _same_tree(a: Path, b: Path) -> bool:
    files = _tree(a)
    return files == _tree(b) and all(filecmp.cmp(a / f, b / f, shallow=False) for f in sorted(files))


def _export_one(
    store: ObjectStore, docs: list[DocumentManifest], dest: Path, *, file_code: str | None, title: str | None,
    now: datetime, fixity_events: FixityInput, version: str, replace: bool = False,
    reasons: Callable[[DocumentManifest], list[Reason]] | None = None,
) -> tuple[PackageResult, list[PackageProblem]]:
    doc_ids = [d.id for d in docs]
    package_id = aip.package_id_for(file_code, docs)
    final = dest / package_id
    failed = PackageResult(id=package_id, path=str(final), status="failed", documents=doc_ids)
    shown = [_as_shown(d, reasons) for d in docs]  # what the reader may see of each document
    try:
        plan = aip.plan_package(shown, file_code=file_code, title=title)
    except PackageLayoutError as exc:
        return failed, [PackageProblem(package=package_id, detail=str(exc))]
    created = _existing_created(final) or now
    part = dest / f".{package_id}.part"
    if part.exists():
        shutil.rmtree(part)  # left by an interrupted export
    part.mkdir()
    try:
        problems = _copy_verified(store, plan, part)
        copies: list[tuple[DocumentManifest, bytes]] = []
        for doc, seen in zip(docs, shown, strict=True):
            body, more = _manifest_copy(store, doc, package_id)  # the stored one, checked as stored
            problems += more
            if body is not None:
                copies.append((doc, body if seen is doc or reasons is None else _redacted(body, reasons)))
        if problems:
            return failed, problems

        metadata: list[PackageFile] = []

        def add(rel: str, data: bytes, *, role: str, media_type: str, doc_id: str = "") -> None:
            _write(part, rel, data)
            metadata.append(PackageFile(path=rel, doc_id=doc_id, role=role, media_type=media_type,
                                        sha256=hashlib.sha256(data).hexdigest(), size=len(data)))

        for doc, body in copies:
            add(aip.metadata_path_of_manifest(doc.id), body, role="sohoa-manifest", media_type="application/json",
                doc_id=doc.id)
        add(aip.EAD_PATH, aip.build_ead(plan, created=created, software_version=version),
            role="ead", media_type="application/xml")
        add(aip.PREMIS_PATH, aip.build_premis(plan, created=created, software_version=version,
                                              fixity_events={d: fixity_events[d] for d in doc_ids
                                                             if d in fixity_events}),
            role="premis", media_type="application/xml")
        mets = aip.build_mets(plan, metadata, created=created, software_version=version)
        _write(part, aip.METS_FILE, mets)
        listed = [(f.path, f.sha256) for f in (*plan.files, *metadata)]
        listed.append((aip.METS_FILE, hashlib.sha256(mets).hexdigest()))
        _write(part, aip.CHECKSUM_MANIFEST, aip.checksum_manifest(listed))
        files = len(listed) + 1
        size = sum(f.size for f in (*plan.files, *metadata)) + len(mets) + (part / aip.CHECKSUM_MANIFEST).stat().st_size

        old = dest / f".{package_id}.old"
        if final.exists():
            if final.is_dir() and _same_tree(part, final):
                return PackageResult(id=package_id, path=str(final), status="unchanged", documents=doc_ids,
                                     files=files, bytes=size), []
            if replace and final.is_dir():
                shutil.rmtree(old, ignore_errors=True)
                os.rename(final, old)  # the new package takes its place; the old one goes once that is done
        if final.exists():
            return failed, [PackageProblem(
                package=package_id, file=str(final),
                detail=f"đã có gói {final} với nội dung khác; không ghi đè (xuất lại với --replace để thay gói cũ)")]
        try:
            os.rename(part, final)
        except OSError as exc:  # another export put a package there meanwhile
            if old.exists() and not final.exists():
                os.rename(old, final)
            return failed, [PackageProblem(package=package_id, file=str(final), detail=f"không ghi được gói: {exc}")]
        _fsync(dest)
        shutil.rmtree(old, ignore_errors=True)
        return PackageResult(id=package_id, path=str(final), status="written", documents=doc_ids, files=files,
                             bytes=size), []
    finally:
        if part.exists():
            shutil.rmtree(part, ignore_errors=True)


__all__: Sequence[str] = ("PackageProblem", "PackageReport", "PackageResult", "archive_levels", "export_for",
                          "export_packages", "fixity_events_from_history", "load_manifests", "store_levels")
