"""The layout of an archival information package: which stored file of which document goes where, the names
derived from TT 05/2025 (mã hồ sơ, số thứ tự) and the BagIt-style checksum manifest.

In a hồ sơ package every document's pages and originals sit in a folder named after its PDF (``<mã hồ
sơ>.<số thứ tự>``), so page and scan names of different documents never collide.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aip.elements import MODE_PUBLIC, MODE_SECRET, text
from schemas.document import DocumentManifest
from schemas.metadata import CLASSIFICATIONS

METS_FILE = "METS.xml"
EAD_PATH = "metadata/descriptive/ead.xml"
PREMIS_PATH = "metadata/preservation/premis.xml"
CHECKSUM_MANIFEST = "manifest-sha256.txt"
REP_DERIVED = "representations/rep1"
REP_ORIGINAL = "representations/original"


class PackageLayoutError(ValueError):
    """The documents cannot share one package (two files would get the same name)."""


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: where it goes, what it is, and the checksum it must have."""

    path: str  # relative to the package root, "/"-separated
    doc_id: str
    role: str  # pdfa | text | hocr | original (data); ead | premis | sohoa-manifest (metadata)
    media_type: str
    sha256: str
    size: int
    source_key: str = ""  # the object's key relative to the document's prefix in the store


@dataclass(frozen=True)
class PackagePlan:
    package_id: str  # folder name (filesystem-safe)
    objid: str  # METS OBJID: the document id, or the hồ sơ code as given
    file_code: str | None  # set for a hồ sơ package
    title: str
    documents: tuple[DocumentManifest, ...]  # in hồ sơ order (số thứ tự)
    files: tuple[PackageFile, ...]  # data files, sorted by path

    @property
    def is_file(self) -> bool:
        """A hồ sơ package (EAD level "file") rather than one document's."""
        return self.file_code is not None

    def files_of(self, doc_id: str) -> list[PackageFile]:
        return [f for f in self.files if f.doc_id == doc_id]


# ---------------------------------------------------------------- names

_UNSAFE = re.compile(r"[^\w.\-]+")


def safe_name(value: str) -> str:
    """A filesystem-safe folder/file name: letters (Vietnamese too), digits, ``.``, ``-``, ``_``; no leading dot."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", value)).strip("._ ")
    return name[:200] or "_"


def file_code_of(manifest: DocumentManifest) -> str | None:
    code = getattr(manifest, "file_code", None)
    return text(code)


def sequence_of(manifest: DocumentManifest) -> int | None:
    seq = getattr(manifest, "sequence", None)
    return seq if isinstance(seq, int) and seq > 0 else None


def tt05_stem(manifest: DocumentManifest) -> str | None:
    """``<mã hồ sơ>.<số thứ tự>`` (TT 05 file name without extension) when both are known."""
    code, seq = file_code_of(manifest), sequence_of(manifest)
    return safe_name(f"{code}.{seq}") if code and seq else None


def code_of(manifest: DocumentManifest) -> str | None:
    """Số và ký hiệu as sohoa shows it: ``15-NQ/TU``."""
    md = manifest.metadata
    parts = [p for p in (text(md.code_number), text(md.code_notation)) if p]
    return "-".join(parts) or None


def mode_of(manifest: DocumentManifest) -> str:
    return MODE_SECRET if manifest.metadata.classification in CLASSIFICATIONS else MODE_PUBLIC


def title_of(manifest: DocumentManifest) -> str:
    md = manifest.metadata
    return text(md.subject) or text(" ".join(p for p in (md.type_name, code_of(manifest)) if p)) \
        or text(manifest.source) or manifest.id


# ---------------------------------------------------------------- layout

def group_documents(
    manifests: Iterable[DocumentManifest], *, by_file_code: bool
) -> list[tuple[str | None, list[DocumentManifest]]]:
    """Packages to write: one per document, or one per hồ sơ (documents sharing a file_code, in số thứ tự
    order) plus one per document without a hồ sơ code. Duplicate manifests (same id) count once."""
    seen: dict[str, DocumentManifest] = {}
    for m in manifests:
        seen.setdefault(m.id, m)
    singles: list[tuple[str | None, list[DocumentManifest]]] = []
    files: dict[str, list[DocumentManifest]] = defaultdict(list)
    for m in seen.values():
        code = file_code_of(m) if by_file_code else None
        if code:
            files[code].append(m)
        else:
            singles.append((None, [m]))
    grouped: list[tuple[str | None, list[DocumentManifest]]] = [
        (code, sorted(docs, key=lambda d: (sequence_of(d) is None, sequence_of(d) or 0, d.id)))
        for code, docs in sorted(files.items())
    ]
    return grouped + sorted(singles, key=lambda g: g[1][0].id)


def package_id_for(file_code: str | None, documents: Sequence[DocumentManifest]) -> str:
    return safe_name(file_code) if file_code else safe_name(documents[0].id)


def plan_package(
    documents: Sequence[DocumentManifest], *, file_code: str | None = None, title: str | None = None
) -> PackagePlan:
    """Where every stored file of ``documents`` goes in the package. ``file_code`` makes it a hồ sơ package.

    Raises ``PackageLayoutError`` when two files would land on the same path (e.g. a repeated số thứ tự).
    """
    if not documents:
        raise PackageLayoutError("gói không có văn bản nào")
    if file_code is None and len(documents) != 1:
        raise PackageLayoutError("gói của một văn bản chỉ chứa một văn bản")
    files: list[PackageFile] = []
    for doc in documents:
        stem = tt05_stem(doc)
        if file_code is None:
            folder = ""
            pdf_stem = stem
        else:
            pdf_stem = stem or safe_name(doc.id)
            folder = pdf_stem + "/"
        for stored in doc.files:
            if stored.role == "manifest":
                continue
            key = stored.key
            if stored.role == "pdfa":
                name = f"{pdf_stem}.pdf" if pdf_stem else key.rsplit("/", 1)[-1]
                path = f"{REP_DERIVED}/data/{name}"
            elif stored.role in ("text", "hocr"):
                path = f"{REP_DERIVED}/data/pages/{folder}{key.removeprefix('pages/')}"
            elif stored.role == "original":
                path = f"{REP_ORIGINAL}/data/{folder}{key.removeprefix('original/')}"
            else:
                path = f"{REP_DERIVED}/data/other/{folder}{key}"
            files.append(PackageFile(path=path, doc_id=doc.id, role=stored.role, media_type=stored.media_type,
                                     sha256=stored.sha256, size=stored.bytes, source_key=key))
    by_path: dict[str, list[PackageFile]] = defaultdict(list)
    for f in files:
        by_path[f.path].append(f)
    clashes = {p: fs for p, fs in by_path.items() if len(fs) > 1}
    if clashes:
        path, clash = sorted(clashes.items())[0]
        docs = ", ".join(sorted({f.doc_id for f in clash}))
        raise PackageLayoutError(f"hai tệp cùng tên {path} (văn bản {docs}); kiểm tra số thứ tự trong hồ sơ")
    if file_code is not None:
        objid = file_code
        label = text(title) or f"Hồ sơ {file_code}"
    else:
        objid = documents[0].id
        label = text(title) or title_of(documents[0])
    return PackagePlan(package_id=package_id_for(file_code, documents), objid=objid, file_code=file_code,
                       title=label, documents=tuple(documents), files=tuple(sorted(files, key=lambda f: f.path)))


def metadata_path_of_manifest(doc_id: str) -> str:
    return f"metadata/other/sohoa/{safe_name(doc_id)}.json"


def checksum_manifest(files: Iterable[tuple[str, str]]) -> bytes:
    """``manifest-sha256.txt``: ``<sha256>  <path>`` lines (sha256sum and BagIt compatible), sorted by path."""
    lines = [f"{sha}  {path}\n" for path, sha in sorted(files)]
    return "".join(lines).encode("utf-8")


def parse_checksum_manifest(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            sha, _, path = line.partition("  ")
            out[path] = sha
    return out
