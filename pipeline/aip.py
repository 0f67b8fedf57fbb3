"""Archival information packages (E-ARK CSIP / AIP): the layout and the METS, EAD3 and PREMIS 3 documents.

Pure: manifests, the package's file list (paths, sizes, SHA-256) and timestamps in; a layout and XML bytes out.
Output is deterministic: files and documents sorted, identifiers derived from paths, document ids and positions,
every timestamp passed in (or taken from the manifests). ``flows.package`` copies the objects and writes them.

    <package-id>/
      METS.xml                                   package METS (E-ARK CSIP profile, OAIS package type AIP)
      metadata/descriptive/ead.xml               EAD3: the hồ sơ (level "file") and its documents (level "item"),
                                                 or the one document (level "item"), with the TT 05/2025 fields
      metadata/preservation/premis.xml           PREMIS 3: objects, events, agents
      metadata/other/sohoa/<id>.json             each document's sohoa manifest (document.json), as stored
      representations/rep1/data/<pdf>            the PDF/A, named <mã hồ sơ>.<số thứ tự>.pdf when known
      representations/rep1/data/pages/...        per-page OCR text (.txt) and hOCR (.hocr)
      representations/original/data/...          the scans, byte for byte
      manifest-sha256.txt                        "<sha256>  <path>" for every other file (BagIt style)

In a hồ sơ package every document's pages and originals sit in a folder named after its PDF (``<mã hồ
sơ>.<số thứ tự>``), so page and scan names of different documents never collide.
"""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple
from urllib.parse import quote

from schemas.document import DocumentManifest
from schemas.metadata import CLASSIFICATIONS

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
CSIP_NS = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS_NS = "http://www.loc.gov/premis/v3"
EAD_NS = "http://ead3.archivists.org/schema/"

METS_LOCATION = (f"{METS_NS} http://www.loc.gov/standards/mets/mets.xsd "
                 f"{XLINK_NS} http://www.loc.gov/standards/mets/xlink.xsd "
                 f"{CSIP_NS} https://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd")
PREMIS_LOCATION = f"{PREMIS_NS} https://www.loc.gov/standards/premis/premis.xsd"
EAD_LOCATION = f"{EAD_NS} https://www.loc.gov/ead/ead3.xsd"

CSIP_PROFILE = "https://earkcsip.dilcis.eu/profile/E-ARK-CSIP.xml"  # CSIP6: mets/@PROFILE
CONTENT_CATEGORY = "Textual works – Digital"  # CSIP2: mets/@TYPE (CSIP content category vocabulary)
CONTENT_INFORMATION_TYPE = "TT 05/2025/TT-BNV tài liệu số hóa"  # csip:OTHERCONTENTINFORMATIONTYPE
EVENT_TYPE_AUTHORITY = "http://id.loc.gov/vocabulary/preservation/eventType"
TT05 = "Thông tư 05/2025/TT-BNV"

LANGUAGE_CODE, LANGUAGE_NAME = "vie", "Tiếng Việt"  # ISO 639-2; TT 05 language "vi"
MODE_PUBLIC, MODE_SECRET = "01 - Công khai", "03 - Mật"  # TT 05 mode (chế độ sử dụng), as in flows.export
CONFIDENCE_LEVEL = "02 - Số hóa"  # TT 05 confidenceLevel

METS_FILE = "METS.xml"
EAD_PATH = "metadata/descriptive/ead.xml"
PREMIS_PATH = "metadata/preservation/premis.xml"
CHECKSUM_MANIFEST = "manifest-sha256.txt"
REP_DERIVED = "representations/rep1"
REP_ORIGINAL = "representations/original"

ROLE_USE = {"pdfa": "PDF/A", "text": "OCR text", "hocr": "OCR hOCR", "original": "Original"}

for _prefix, _uri in (("mets", METS_NS), ("xlink", XLINK_NS), ("csip", CSIP_NS), ("xsi", XSI_NS),
                      ("premis", PREMIS_NS), ("ead", EAD_NS)):
    ET.register_namespace(_prefix, _uri)


class PackageLayoutError(ValueError):
    """The documents cannot share one package (two files would get the same name)."""


class FixityEvent(NamedTuple):
    """One fixity check of a document, for PREMIS: when, its outcome ("pass"/"fail"/...), a note."""

    at: datetime | str
    outcome: str
    detail: str = ""


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


# ---------------------------------------------------------------- text and names

_XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSAFE = re.compile(r"[^\w.\-]+")


def text(value: object) -> str | None:
    """Text for XML: NFC (Vietnamese in precomposed form), characters XML cannot carry removed, trimmed."""
    if value is None:
        return None
    cleaned = _XML_ILLEGAL.sub("", unicodedata.normalize("NFC", str(value))).strip()
    return cleaned or None


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


def _iso(value: datetime | str) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def _iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def href(path: str) -> str:
    """A package path as a relative URL (percent-encoded UTF-8, "/" kept). Not normalised: it must name the
    file exactly as written (an original keeps its stored name byte for byte)."""
    return quote(path, safe="/")


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


# ---------------------------------------------------------------- XML helpers

def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


class _Exact(str):
    """Text kept as it is (a file path must name the file exactly), only XML-illegal characters removed."""


def _sub(parent: ET.Element, ns: str, tag: str, content: object = None, /, **attrs: str | None) -> ET.Element:
    """A child element with ``content`` as text (NFC unless ``_Exact``) and the attributes that are not ``None``."""
    el = ET.SubElement(parent, _q(ns, tag), {k: v for k, v in attrs.items() if v is not None})
    body = _XML_ILLEGAL.sub("", content) or None if isinstance(content, _Exact) else text(content)
    if body is not None:
        el.text = body
    return el


def _serialise(root: ET.Element, *, default_namespace: str | None = None) -> bytes:
    """UTF-8 XML with a declaration. ``default_namespace``: written unprefixed (ElementTree's own option
    refuses unqualified attributes, which EAD and PREMIS use throughout)."""
    if default_namespace:
        qualified = f"{{{default_namespace}}}"
        for el in root.iter():
            if el.tag.startswith(qualified):
                el.tag = el.tag[len(qualified):]
        root.attrib = {"xmlns": default_namespace, **root.attrib}
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


# ---------------------------------------------------------------- METS

def _file_ids(files: Sequence[PackageFile]) -> dict[str, str]:
    return {f.path: f"file-{n:05d}" for n, f in enumerate(files, 1)}


def _xml_id(prefix: str, value: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', value)}"


def build_mets(
    plan: PackagePlan, metadata: Sequence[PackageFile], *, created: datetime | str, software_version: str
) -> bytes:
    """The package METS (E-ARK CSIP): header with the creating software, dmdSec → EAD, amdSec → PREMIS and the
    sohoa manifests, fileSec with every data file (checksum, size, type), the CSIP structural map and a logical
    map of the hồ sơ and its documents. ``metadata``: the metadata files already written (with checksums)."""
    stamp = _iso(created)
    root = ET.Element(_q(METS_NS, "mets"), {
        "OBJID": plan.objid,
        "LABEL": plan.title,
        "TYPE": CONTENT_CATEGORY,
        _q(CSIP_NS, "CONTENTINFORMATIONTYPE"): "OTHER",
        _q(CSIP_NS, "OTHERCONTENTINFORMATIONTYPE"): CONTENT_INFORMATION_TYPE,
        "PROFILE": CSIP_PROFILE,
        _q(XSI_NS, "schemaLocation"): METS_LOCATION,
    })
    hdr = _sub(root, METS_NS, "metsHdr", CREATEDATE=stamp, RECORDSTATUS="NEW",
               **{_q(CSIP_NS, "OAISPACKAGETYPE"): "AIP"})
    agent = _sub(hdr, METS_NS, "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
    _sub(agent, METS_NS, "name", "sohoa")
    _sub(agent, METS_NS, "note", software_version, **{_q(CSIP_NS, "NOTETYPE"): "SOFTWARE VERSION"})

    def md_ref(parent: ET.Element, f: PackageFile, mdtype: str, **extra: str) -> None:
        _sub(parent, METS_NS, "mdRef", LOCTYPE="URL", MDTYPE=mdtype, **extra,
             **{_q(XLINK_NS, "type"): "simple", _q(XLINK_NS, "href"): href(f.path)},
             MIMETYPE=f.media_type, SIZE=str(f.size), CREATED=stamp, CHECKSUM=f.sha256, CHECKSUMTYPE="SHA-256",
             LABEL=f.path.rsplit("/", 1)[-1])

    dmd_ids: list[str] = []
    for f in (m for m in metadata if m.role == "ead"):
        dmd_ids.append("dmd-ead")
        md_ref(_sub(root, METS_NS, "dmdSec", ID="dmd-ead", CREATED=stamp, STATUS="CURRENT"), f, "EAD",
               MDTYPEVERSION="EAD3")
    amd = _sub(root, METS_NS, "amdSec", ID="amd")
    adm_ids: list[str] = []
    for f in sorted((m for m in metadata if m.role != "ead"), key=lambda m: (m.role != "premis", m.path)):
        if f.role == "premis":
            md_id = "digiprov-premis"
            md_ref(_sub(amd, METS_NS, "digiprovMD", ID=md_id, CREATED=stamp, STATUS="CURRENT"), f, "PREMIS",
                   MDTYPEVERSION="3.0")
        else:
            md_id = _xml_id("digiprov-sohoa", f.doc_id)
            md_ref(_sub(amd, METS_NS, "digiprovMD", ID=md_id, CREATED=stamp, STATUS="CURRENT"), f, "OTHER",
                   OTHERMDTYPE="SOHOA-MANIFEST")
        adm_ids.append(md_id)

    created_of = {d.id: d.created_at for d in plan.documents}
    ids = _file_ids(plan.files)
    file_sec = _sub(root, METS_NS, "fileSec", ID="filesec")
    groups: list[tuple[str, str]] = []
    for rep, grp_id in ((REP_DERIVED, "grp-rep1"), (REP_ORIGINAL, "grp-original")):
        members = [f for f in plan.files if f.path.startswith(rep + "/")]
        if not members:
            continue
        use = "Representations/" + rep.split("/", 1)[1]
        groups.append((grp_id, use))
        grp = _sub(file_sec, METS_NS, "fileGrp", ID=grp_id, USE=use,
                   **{_q(CSIP_NS, "CONTENTINFORMATIONTYPE"): "OTHER",
                      _q(CSIP_NS, "OTHERCONTENTINFORMATIONTYPE"): CONTENT_INFORMATION_TYPE})
        for f in members:
            el = _sub(grp, METS_NS, "file", ID=ids[f.path], USE=ROLE_USE.get(f.role, f.role), MIMETYPE=f.media_type,
                      SIZE=str(f.size), CREATED=created_of[f.doc_id], CHECKSUM=f.sha256, CHECKSUMTYPE="SHA-256",
                      ADMID="digiprov-premis" if "digiprov-premis" in adm_ids else None)
            _sub(el, METS_NS, "FLocat", LOCTYPE="URL",
                 **{_q(XLINK_NS, "type"): "simple", _q(XLINK_NS, "href"): href(f.path)})

    smap = _sub(root, METS_NS, "structMap", ID="structmap-csip", TYPE="PHYSICAL", LABEL="CSIP")
    top = _sub(smap, METS_NS, "div", ID="div-package", LABEL=plan.objid)
    _sub(top, METS_NS, "div", ID="div-metadata", LABEL="Metadata", ADMID=" ".join(adm_ids) or None,
         DMDID=" ".join(dmd_ids) or None)
    if groups:
        reps = _sub(top, METS_NS, "div", ID="div-representations", LABEL="Representations")
        for grp_id, _use in groups:
            _sub(reps, METS_NS, "fptr", FILEID=grp_id)

    logical = _sub(root, METS_NS, "structMap", ID="structmap-logical", TYPE="LOGICAL",
                   LABEL="Hồ sơ và văn bản" if plan.is_file else "Văn bản")
    parent = logical
    if plan.is_file:
        parent = _sub(logical, METS_NS, "div", ID="div-file", TYPE="hồ sơ", LABEL=plan.title,
                      DMDID=" ".join(dmd_ids) or None)
    for n, doc in enumerate(plan.documents, 1):
        seq = sequence_of(doc)
        div = _sub(parent, METS_NS, "div", ID=_xml_id("div-doc", doc.id), TYPE="văn bản", LABEL=title_of(doc),
                   ORDER=str(seq or n), ORDERLABEL=tt05_stem(doc),
                   DMDID=None if plan.is_file else (" ".join(dmd_ids) or None))
        for f in plan.files_of(doc.id):
            _sub(div, METS_NS, "fptr", FILEID=ids[f.path])
    return _serialise(root)


# ---------------------------------------------------------------- EAD3

def _ead_item(el: ET.Element, doc: DocumentManifest, pdf: PackageFile | None, software_version: str) -> None:
    md = doc.metadata
    did = _sub(el, EAD_NS, "did")
    code = code_of(doc)
    if code:
        _sub(did, EAD_NS, "unitid", code, label="Số, ký hiệu")
    for localtype, value in (("codeNumber", md.code_number), ("codeNotation", md.code_notation),
                             ("fileCode", file_code_of(doc)), ("sequence", sequence_of(doc)), ("sohoa", doc.id)):
        if text(value):
            _sub(did, EAD_NS, "unitid", value, localtype=localtype)
    _sub(did, EAD_NS, "unittitle", title_of(doc))
    issued = _iso_date(md.issued_date)
    if issued is not None:
        _sub(did, EAD_NS, "unitdate", issued.strftime("%d/%m/%Y"), normal=issued.isoformat(),
             unitdatetype="inclusive")
    elif text(md.issued_date):
        _sub(did, EAD_NS, "unitdate", md.issued_date, unitdatetype="inclusive")
    if text(md.organ_name):
        origination = _sub(did, EAD_NS, "origination", label="Cơ quan ban hành")
        _sub(_sub(origination, EAD_NS, "corpname"), EAD_NS, "part", md.organ_name)
    pages = md.page_count if md.page_count else len(doc.pages)
    physdesc = _sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="spaceoccupied")
    _sub(physdesc, EAD_NS, "quantity", str(pages))
    _sub(physdesc, EAD_NS, "unittype", "trang")
    _sub(_sub(did, EAD_NS, "langmaterial"), EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)
    if pdf is not None:
        _sub(did, EAD_NS, "dao", daotype="derived", href=href(pdf.path), linktitle=pdf.path.rsplit("/", 1)[-1])

    restrict = _sub(el, EAD_NS, "accessrestrict", localtype="mode")
    _sub(restrict, EAD_NS, "head", "Chế độ sử dụng")
    _sub(restrict, EAD_NS, "p", mode_of(doc))
    if text(md.classification):
        secret = _sub(el, EAD_NS, "accessrestrict", localtype="classification")
        _sub(secret, EAD_NS, "head", "Độ mật")
        _sub(secret, EAD_NS, "p", md.classification)
    if text(md.type_name):
        access = _sub(el, EAD_NS, "controlaccess")
        genre = _sub(access, EAD_NS, "genreform", identifier=text(md.type_code), source=TT05, localtype="typeName")
        _sub(genre, EAD_NS, "part", md.type_name)
    notes: list[tuple[str, str, list[str]]] = [
        ("place", "Địa danh", [md.place] if md.place else []),
        ("signer", "Người ký", [md.signer] if md.signer else []),
        ("signerTitle", "Chức vụ người ký", [md.signer_title] if md.signer_title else []),
        ("authority", "Thẩm quyền ký", [md.authority] if md.authority else []),
        ("urgency", "Độ khẩn", [md.urgency] if md.urgency else []),
        ("recipients", "Nơi nhận", list(md.recipients)),
        ("confidenceLevel", "Mức độ tin cậy", [CONFIDENCE_LEVEL]),
    ]
    for localtype, head, values in notes:
        values = [v for v in (text(x) for x in values) if v]
        if values:
            odd = _sub(el, EAD_NS, "odd", localtype=localtype)
            _sub(odd, EAD_NS, "head", head)
            for v in values:
                _sub(odd, EAD_NS, "p", v)
    info = _sub(el, EAD_NS, "processinfo", localtype="digitisation")
    _sub(info, EAD_NS, "head", "Số hóa")
    version = text(doc.provenance.get("sohoa")) or software_version
    _sub(info, EAD_NS, "p", f"Số hóa và nhận dạng chữ bằng sohoa {version} ngày {doc.created_at}; "
                            f"lô «{doc.batch}», tệp nguồn «{doc.source}».")
    if doc.review_reasons:
        review = _sub(el, EAD_NS, "processinfo", localtype="review")
        _sub(review, EAD_NS, "head", "Cần xem lại")
        for reason in doc.review_reasons:
            _sub(review, EAD_NS, "p", reason)


def build_ead(plan: PackagePlan, *, created: datetime | str, software_version: str, agency: str = "sohoa") -> bytes:
    """EAD3 description: a hồ sơ (archdesc level "file", its documents as ``<c level="item">`` in số thứ tự
    order), or a single document (archdesc level "item"); TT 05/2025 fields as unitid/unitdate/origination/
    physdescstructured/langmaterial/controlaccess/accessrestrict/odd. All text NFC."""
    stamp = _iso(created)
    root = ET.Element(_q(EAD_NS, "ead"), {_q(XSI_NS, "schemaLocation"): EAD_LOCATION})
    control = _sub(root, EAD_NS, "control", langencoding="iso639-2b", scriptencoding="iso15924",
                   dateencoding="iso8601", countryencoding="iso3166-1", repositoryencoding="iso15511")
    _sub(control, EAD_NS, "recordid", plan.objid)
    _sub(_sub(_sub(control, EAD_NS, "filedesc"), EAD_NS, "titlestmt"), EAD_NS, "titleproper", plan.title)
    _sub(control, EAD_NS, "maintenancestatus", value="new")
    _sub(_sub(control, EAD_NS, "maintenanceagency"), EAD_NS, "agencyname", agency)
    lang = _sub(control, EAD_NS, "languagedeclaration")
    _sub(lang, EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)
    _sub(lang, EAD_NS, "script", "Latin", scriptcode="Latn")
    _sub(_sub(control, EAD_NS, "conventiondeclaration"), EAD_NS, "citation", TT05)
    event = _sub(_sub(control, EAD_NS, "maintenancehistory"), EAD_NS, "maintenanceevent")
    _sub(event, EAD_NS, "eventtype", value="created")
    _sub(event, EAD_NS, "eventdatetime", stamp, standarddatetime=stamp)
    _sub(event, EAD_NS, "agenttype", value="machine")
    _sub(event, EAD_NS, "agent", f"sohoa {software_version}")

    pdf_of = {f.doc_id: f for f in plan.files if f.role == "pdfa"}
    if not plan.is_file:
        doc = plan.documents[0]
        _ead_item(_sub(root, EAD_NS, "archdesc", level="item"), doc, pdf_of.get(doc.id), software_version)
        return _serialise(root, default_namespace=EAD_NS)

    archdesc = _sub(root, EAD_NS, "archdesc", level="file")
    did = _sub(archdesc, EAD_NS, "did")
    _sub(did, EAD_NS, "unitid", plan.file_code, label="Mã hồ sơ", localtype="fileCode")
    _sub(did, EAD_NS, "unittitle", plan.title)
    dates = sorted(d for d in (_iso_date(doc.metadata.issued_date) for doc in plan.documents) if d)
    if dates:
        first, last = dates[0], dates[-1]
        shown = first.strftime("%d/%m/%Y") if first == last else \
            f"{first.strftime('%d/%m/%Y')} - {last.strftime('%d/%m/%Y')}"
        _sub(did, EAD_NS, "unitdate", shown, normal=first.isoformat() if first == last else
             f"{first.isoformat()}/{last.isoformat()}", unitdatetype="inclusive")
    organs = sorted({o for o in (text(doc.metadata.organ_name) for doc in plan.documents) if o})
    if organs:
        origination = _sub(did, EAD_NS, "origination", label="Cơ quan ban hành")
        for organ in organs:
            _sub(_sub(origination, EAD_NS, "corpname"), EAD_NS, "part", organ)
    count = _sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="materialtype")
    _sub(count, EAD_NS, "quantity", str(len(plan.documents)))
    _sub(count, EAD_NS, "unittype", "văn bản")
    total_pages = sum(doc.metadata.page_count or len(doc.pages) for doc in plan.documents)
    pages = _sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="spaceoccupied")
    _sub(pages, EAD_NS, "quantity", str(total_pages))
    _sub(pages, EAD_NS, "unittype", "trang")
    _sub(_sub(did, EAD_NS, "langmaterial"), EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)
    restrict = _sub(archdesc, EAD_NS, "accessrestrict", localtype="mode")
    _sub(restrict, EAD_NS, "head", "Chế độ sử dụng")
    _sub(restrict, EAD_NS, "p", MODE_SECRET if any(mode_of(d) == MODE_SECRET for d in plan.documents)
         else MODE_PUBLIC)
    dsc = _sub(archdesc, EAD_NS, "dsc")
    for doc in plan.documents:
        item = _sub(dsc, EAD_NS, "c", id=_xml_id("doc", doc.id), level="item")
        _ead_item(item, doc, pdf_of.get(doc.id), software_version)
    return _serialise(root, default_namespace=EAD_NS)


# ---------------------------------------------------------------- PREMIS 3

def _dict(value: object) -> dict[str, object]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def ocr_detail(provenance: Mapping[str, object]) -> str:
    """One readable line: OCR engine and version, model hashes, parameters, PDF/A tools."""
    ocr, pdfa = _dict(provenance.get("ocr")), _dict(provenance.get("pdfa"))
    parts = []
    if ocr:
        engine = f"{ocr.get('engine', 'ocr')} {ocr.get('version', '?')}"
        if ocr.get("leptonica"):
            engine += f" (Leptonica {ocr['leptonica']})"
        parts.append(engine)
        models = _dict(ocr.get("models"))
        if models:
            parts.append("mô hình " + ", ".join(f"{lang} sha256={_dict(m).get('sha256', '?')}"
                                                for lang, m in sorted(models.items())))
        params = _dict(ocr.get("parameters"))
        if params:
            parts.append("tham số " + " ".join(f"{k}={v}" for k, v in sorted(params.items())))
    if pdfa:
        tools = ", ".join(f"{k} {v}" for k, v in sorted(pdfa.items()) if k in ("pikepdf", "qpdf"))
        parts.append(f"{pdfa.get('conformance', 'PDF/A')}" + (f" ({tools})" if tools else ""))
    return "; ".join(parts) or "không có thông tin công cụ"


def _provenance_json(provenance: Mapping[str, object]) -> str:
    """The provenance without the per-page preprocessing steps (those stay in document.json)."""
    slim = dict(provenance)
    prep = _dict(slim.get("preprocessing"))
    if prep:
        slim["preprocessing"] = {k: v for k, v in prep.items() if k != "pages"}
    return json.dumps(slim, ensure_ascii=False, sort_keys=True, default=str)


ObjRef = tuple[str, str, str]  # PREMIS linking object: identifier type, value, role


def _agent_id(name: str, version: str) -> str:
    return f"{name}-{version}"


def build_premis(
    plan: PackagePlan, *, created: datetime | str, software_version: str,
    fixity_events: Mapping[str, Sequence[FixityEvent | tuple[datetime | str, str] | tuple[datetime | str, str, str]]]
    | None = None,
) -> bytes:
    """PREMIS 3: an intellectual entity per document and a file object per data file (SHA-256 fixity, size,
    format, original name, derivation); events — ingestion, OCR/PDF/A creation (tool versions, model hashes and
    parameters as eventDetail), metadata extraction, the fixity checks given, the check made while packaging —
    and the software agents."""
    stamp = _iso(created)
    root = ET.Element(_q(PREMIS_NS, "premis"), {"version": "3.0", _q(XSI_NS, "schemaLocation"): PREMIS_LOCATION})
    agents: dict[str, tuple[str, str, str]] = {}  # id -> (name, version, note)
    exporter = _agent_id("sohoa", software_version)
    agents[exporter] = ("sohoa", software_version, "")

    def identifier(parent: ET.Element, kind: str, id_type: str, value: str) -> None:
        ident = _sub(parent, PREMIS_NS, f"{kind}Identifier")
        _sub(ident, PREMIS_NS, f"{kind}IdentifierType", id_type)
        _sub(ident, PREMIS_NS, f"{kind}IdentifierValue", value)

    def related(parent: ET.Element, rel_type: str, sub_type: str, id_type: str, value: str) -> None:
        rel = _sub(parent, PREMIS_NS, "relationship")
        _sub(rel, PREMIS_NS, "relationshipType", rel_type)
        _sub(rel, PREMIS_NS, "relationshipSubType", sub_type)
        ident = _sub(rel, PREMIS_NS, "relatedObjectIdentifier")
        _sub(ident, PREMIS_NS, "relatedObjectIdentifierType", id_type)
        _sub(ident, PREMIS_NS, "relatedObjectIdentifierValue", value)

    # objects
    for doc in plan.documents:
        entity = _sub(root, PREMIS_NS, "object", **{_q(XSI_NS, "type"): "intellectualEntity"})
        identifier(entity, "object", "sohoa", doc.id)
        if file_code_of(doc):
            identifier(entity, "object", "TT05 fileCode.sequence", tt05_stem(doc) or file_code_of(doc) or "")
        _sub(entity, PREMIS_NS, "originalName", doc.source)
    for doc in plan.documents:
        version = text(doc.provenance.get("sohoa")) or software_version
        originals = [f for f in plan.files_of(doc.id) if f.role == "original"]
        conformance = text(_dict(doc.provenance.get("pdfa")).get("conformance"))
        for f in plan.files_of(doc.id):
            obj = _sub(root, PREMIS_NS, "object", **{_q(XSI_NS, "type"): "file"})
            identifier(obj, "object", "local", _Exact(f.path))
            chars = _sub(obj, PREMIS_NS, "objectCharacteristics")
            _sub(chars, PREMIS_NS, "compositionLevel", "0")
            fixity = _sub(chars, PREMIS_NS, "fixity")
            _sub(fixity, PREMIS_NS, "messageDigestAlgorithm", "SHA-256")
            _sub(fixity, PREMIS_NS, "messageDigest", f.sha256)
            _sub(fixity, PREMIS_NS, "messageDigestOriginator", "sohoa")
            _sub(chars, PREMIS_NS, "size", str(f.size))
            designation = _sub(_sub(chars, PREMIS_NS, "format"), PREMIS_NS, "formatDesignation")
            _sub(designation, PREMIS_NS, "formatName", f.media_type)
            if f.role == "pdfa" and conformance:
                _sub(designation, PREMIS_NS, "formatVersion", conformance)
            if f.role != "original":
                app = _sub(chars, PREMIS_NS, "creatingApplication")
                _sub(app, PREMIS_NS, "creatingApplicationName", "sohoa")
                _sub(app, PREMIS_NS, "creatingApplicationVersion", version)
                _sub(app, PREMIS_NS, "dateCreatedByApplication", doc.created_at)
            if f.role == "original":
                _sub(obj, PREMIS_NS, "originalName", _Exact(f.source_key.removeprefix("original/")))
            related(obj, "structural", "is included in", "sohoa", doc.id)
            if f.role == "pdfa":
                for o in originals:
                    related(obj, "derivation", "has source", "local", _Exact(o.path))

    # events
    def event(event_id: str, event_type: str, at: str, details: Sequence[str], outcome: str, note: str | None,
              agent_ids: Sequence[str], objects: Sequence[ObjRef]) -> None:
        ev = _sub(root, PREMIS_NS, "event")
        identifier(ev, "event", "local", event_id)
        _sub(ev, PREMIS_NS, "eventType", event_type, authority="eventType", authorityURI=EVENT_TYPE_AUTHORITY)
        _sub(ev, PREMIS_NS, "eventDateTime", at)
        for d in details:
            _sub(_sub(ev, PREMIS_NS, "eventDetailInformation"), PREMIS_NS, "eventDetail", d)
        info = _sub(ev, PREMIS_NS, "eventOutcomeInformation")
        _sub(info, PREMIS_NS, "eventOutcome", outcome)
        if text(note):
            _sub(_sub(info, PREMIS_NS, "eventOutcomeDetail"), PREMIS_NS, "eventOutcomeDetailNote", note)
        for agent_id in agent_ids:
            link = _sub(ev, PREMIS_NS, "linkingAgentIdentifier")
            _sub(link, PREMIS_NS, "linkingAgentIdentifierType", "local")
            _sub(link, PREMIS_NS, "linkingAgentIdentifierValue", agent_id)
            _sub(link, PREMIS_NS, "linkingAgentRole", "executing program")
        for id_type, value, role in objects:
            link = _sub(ev, PREMIS_NS, "linkingObjectIdentifier")
            _sub(link, PREMIS_NS, "linkingObjectIdentifierType", id_type)
            _sub(link, PREMIS_NS, "linkingObjectIdentifierValue", value)
            _sub(link, PREMIS_NS, "linkingObjectRole", role)

    for doc in plan.documents:
        version = text(doc.provenance.get("sohoa")) or software_version
        sohoa = _agent_id("sohoa", version)
        agents.setdefault(sohoa, ("sohoa", version, ""))
        ocr = _dict(doc.provenance.get("ocr"))
        ocr_agents = [sohoa]
        if ocr:
            engine, engine_version = str(ocr.get("engine", "tesseract")), str(ocr.get("version", "unknown"))
            ocr_id = _agent_id(engine, engine_version)
            note = f"Leptonica {ocr['leptonica']}" if ocr.get("leptonica") else ""
            agents.setdefault(ocr_id, (engine, engine_version, note))
            ocr_agents.append(ocr_id)
        files = plan.files_of(doc.id)
        doc_obj: list[ObjRef] = [("sohoa", doc.id, "source")]
        sources: list[ObjRef] = [("local", _Exact(f.path), "source") for f in files if f.role == "original"]
        outcomes: list[ObjRef] = [("local", _Exact(f.path), "outcome") for f in files if f.role != "original"]
        event(f"{doc.id}-ingestion", "ingestion", doc.created_at,
              [f"Nhận vào kho sohoa: lô «{doc.batch}», tệp nguồn «{doc.source}»; SHA-256 nội dung {doc.sha256}"],
              "success", None, [sohoa], [("sohoa", doc.id, "outcome")] + [(t, v, "outcome") for t, v, _ in sources])
        event(f"{doc.id}-ocr", "creation", doc.created_at,
              [f"Số hóa: nhận dạng chữ (OCR) và tạo PDF/A hai lớp — {ocr_detail(doc.provenance)}",
               _provenance_json(doc.provenance)],
              "success", f"{len(doc.pages)} trang", ocr_agents, sources + outcomes)
        reasons = "; ".join(doc.review_reasons)
        event(f"{doc.id}-metadata", "metadata extraction", doc.created_at,
              [f"Trích xuất thông tin văn bản theo {TT05} từ kết quả OCR"],
              "success" if doc.status == "done" else "review required", reasons or None, [sohoa],
              doc_obj + [(t, v, "source") for t, v, _ in outcomes if v.endswith(".txt")])
        raw_checks = (fixity_events or {}).get(doc.id, [])
        checks = sorted((FixityEvent(*c) for c in raw_checks), key=lambda c: (_iso(c.at), c.outcome, c.detail))
        all_files: list[ObjRef] = [("local", _Exact(f.path), "source") for f in files]
        for n, check in enumerate(checks, 1):
            event(f"{doc.id}-fixity-{n}", "fixity check", _iso(check.at),
                  [text(check.detail) or "Kiểm tra SHA-256 các tệp của văn bản trong kho (sohoa verify)"],
                  check.outcome, None, [exporter], doc_obj + all_files)
        event(f"{doc.id}-fixity-package", "fixity check", stamp,
              [f"Kiểm tra SHA-256 khi đóng gói: {len(files)} tệp khớp bản kê document.json"],
              "pass", None, [exporter], doc_obj + all_files)
    event(f"{plan.objid}-package", "information package creation", stamp,
          [f"Tạo gói lưu trữ E-ARK AIP «{plan.package_id}» ({len(plan.documents)} văn bản, {len(plan.files)} tệp)"],
          "success", None, [exporter], [("sohoa", d.id, "source") for d in plan.documents])

    for agent_id, (name, version, note) in sorted(agents.items()):
        agent = _sub(root, PREMIS_NS, "agent")
        identifier(agent, "agent", "local", agent_id)
        _sub(agent, PREMIS_NS, "agentName", name)
        _sub(agent, PREMIS_NS, "agentType", "software")
        _sub(agent, PREMIS_NS, "agentVersion", version)
        if note:
            _sub(agent, PREMIS_NS, "agentNote", note)
    return _serialise(root, default_namespace=PREMIS_NS)
