"""The package METS (E-ARK CSIP): header, descriptive and administrative metadata references, the file section
and the structural maps (CSIP physical map, logical map of the hồ sơ and its documents)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from aip.elements import (
    CONTENT_CATEGORY,
    CONTENT_INFORMATION_TYPE,
    CSIP_NS,
    CSIP_PROFILE,
    METS_LOCATION,
    METS_NS,
    XLINK_NS,
    XSI_NS,
    href,
    iso,
    q,
    serialise,
    sub,
    xml_id,
)
from aip.plan import REP_DERIVED, REP_ORIGINAL, PackageFile, PackagePlan, sequence_of, title_of, tt05_stem

ROLE_USE = {"pdfa": "PDF/A", "text": "OCR text", "hocr": "OCR hOCR", "original": "Original"}
PREMIS_MD_ID = "digiprov-premis"


def build_mets(
    plan: PackagePlan, metadata: Sequence[PackageFile], *, created: datetime | str, software_version: str
) -> bytes:
    """The package METS (E-ARK CSIP): header with the creating software, dmdSec → EAD, amdSec → PREMIS and the
    sohoa manifests, fileSec with every data file (checksum, size, type), the CSIP structural map and a logical
    map of the hồ sơ and its documents. ``metadata``: the metadata files already written (with checksums)."""
    stamp = iso(created)
    root = _mets_root(plan)
    _header(root, stamp, software_version)
    dmd_ids = _descriptive_sections(root, metadata, stamp)
    adm_ids = _administrative_section(root, metadata, stamp)
    ids = _file_ids(plan.files)
    groups = _file_section(root, plan, ids, premis_linked=PREMIS_MD_ID in adm_ids)
    _physical_map(root, plan, groups, dmd_ids, adm_ids)
    _logical_map(root, plan, ids, dmd_ids)
    return serialise(root)


def _mets_root(plan: PackagePlan) -> ET.Element:
    return ET.Element(q(METS_NS, "mets"), {
        "OBJID": plan.objid,
        "LABEL": plan.title,
        "TYPE": CONTENT_CATEGORY,
        q(CSIP_NS, "CONTENTINFORMATIONTYPE"): "OTHER",
        q(CSIP_NS, "OTHERCONTENTINFORMATIONTYPE"): CONTENT_INFORMATION_TYPE,
        "PROFILE": CSIP_PROFILE,
        q(XSI_NS, "schemaLocation"): METS_LOCATION,
    })


def _header(root: ET.Element, stamp: str, software_version: str) -> None:
    hdr = sub(root, METS_NS, "metsHdr", CREATEDATE=stamp, RECORDSTATUS="NEW",
              **{q(CSIP_NS, "OAISPACKAGETYPE"): "AIP"})
    agent = sub(hdr, METS_NS, "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
    sub(agent, METS_NS, "name", "sohoa")
    sub(agent, METS_NS, "note", software_version, **{q(CSIP_NS, "NOTETYPE"): "SOFTWARE VERSION"})


def _md_ref(parent: ET.Element, f: PackageFile, mdtype: str, stamp: str, **extra: str) -> None:
    sub(parent, METS_NS, "mdRef", LOCTYPE="URL", MDTYPE=mdtype, **extra,
        **{q(XLINK_NS, "type"): "simple", q(XLINK_NS, "href"): href(f.path)},
        MIMETYPE=f.media_type, SIZE=str(f.size), CREATED=stamp, CHECKSUM=f.sha256, CHECKSUMTYPE="SHA-256",
        LABEL=f.path.rsplit("/", 1)[-1])


def _descriptive_sections(root: ET.Element, metadata: Sequence[PackageFile], stamp: str) -> list[str]:
    """A dmdSec referring to the EAD; returns the dmdSec ids."""
    dmd_ids: list[str] = []
    for f in (m for m in metadata if m.role == "ead"):
        dmd_ids.append("dmd-ead")
        _md_ref(sub(root, METS_NS, "dmdSec", ID="dmd-ead", CREATED=stamp, STATUS="CURRENT"), f, "EAD", stamp,
                MDTYPEVERSION="EAD3")
    return dmd_ids


def _administrative_section(root: ET.Element, metadata: Sequence[PackageFile], stamp: str) -> list[str]:
    """The amdSec: PREMIS first, then each sohoa manifest; returns the digiprovMD ids."""
    amd = sub(root, METS_NS, "amdSec", ID="amd")
    adm_ids: list[str] = []
    for f in sorted((m for m in metadata if m.role != "ead"), key=lambda m: (m.role != "premis", m.path)):
        md_id = PREMIS_MD_ID if f.role == "premis" else xml_id("digiprov-sohoa", f.doc_id)
        section = sub(amd, METS_NS, "digiprovMD", ID=md_id, CREATED=stamp, STATUS="CURRENT")
        if f.role == "premis":
            _md_ref(section, f, "PREMIS", stamp, MDTYPEVERSION="3.0")
        else:
            _md_ref(section, f, "OTHER", stamp, OTHERMDTYPE="SOHOA-MANIFEST")
        adm_ids.append(md_id)
    return adm_ids


def _file_ids(files: Sequence[PackageFile]) -> dict[str, str]:
    return {f.path: f"file-{n:05d}" for n, f in enumerate(files, 1)}


def _file_section(
    root: ET.Element, plan: PackagePlan, ids: dict[str, str], *, premis_linked: bool
) -> list[tuple[str, str]]:
    """The fileSec: one fileGrp per representation that has files; returns (group id, USE) of each group."""
    created_of = {d.id: d.created_at for d in plan.documents}
    file_sec = sub(root, METS_NS, "fileSec", ID="filesec")
    groups: list[tuple[str, str]] = []
    for rep, grp_id in ((REP_DERIVED, "grp-rep1"), (REP_ORIGINAL, "grp-original")):
        members = [f for f in plan.files if f.path.startswith(rep + "/")]
        if not members:
            continue
        use = "Representations/" + rep.split("/", 1)[1]
        groups.append((grp_id, use))
        grp = sub(file_sec, METS_NS, "fileGrp", ID=grp_id, USE=use,
                  **{q(CSIP_NS, "CONTENTINFORMATIONTYPE"): "OTHER",
                     q(CSIP_NS, "OTHERCONTENTINFORMATIONTYPE"): CONTENT_INFORMATION_TYPE})
        for f in members:
            el = sub(grp, METS_NS, "file", ID=ids[f.path], USE=ROLE_USE.get(f.role, f.role), MIMETYPE=f.media_type,
                     SIZE=str(f.size), CREATED=created_of[f.doc_id], CHECKSUM=f.sha256, CHECKSUMTYPE="SHA-256",
                     ADMID=PREMIS_MD_ID if premis_linked else None)
            sub(el, METS_NS, "FLocat", LOCTYPE="URL",
                **{q(XLINK_NS, "type"): "simple", q(XLINK_NS, "href"): href(f.path)})
    return groups


def _physical_map(
    root: ET.Element, plan: PackagePlan, groups: Sequence[tuple[str, str]], dmd_ids: Sequence[str],
    adm_ids: Sequence[str],
) -> None:
    """The CSIP structural map: the package, its metadata and its representations."""
    smap = sub(root, METS_NS, "structMap", ID="structmap-csip", TYPE="PHYSICAL", LABEL="CSIP")
    top = sub(smap, METS_NS, "div", ID="div-package", LABEL=plan.objid)
    sub(top, METS_NS, "div", ID="div-metadata", LABEL="Metadata", ADMID=" ".join(adm_ids) or None,
        DMDID=" ".join(dmd_ids) or None)
    if groups:
        reps = sub(top, METS_NS, "div", ID="div-representations", LABEL="Representations")
        for grp_id, _use in groups:
            sub(reps, METS_NS, "fptr", FILEID=grp_id)


def _logical_map(root: ET.Element, plan: PackagePlan, ids: dict[str, str], dmd_ids: Sequence[str]) -> None:
    """The logical map: the hồ sơ (if any), its documents in số thứ tự order, each pointing at its files."""
    logical = sub(root, METS_NS, "structMap", ID="structmap-logical", TYPE="LOGICAL",
                  LABEL="Hồ sơ và văn bản" if plan.is_file else "Văn bản")
    parent = logical
    if plan.is_file:
        parent = sub(logical, METS_NS, "div", ID="div-file", TYPE="hồ sơ", LABEL=plan.title,
                     DMDID=" ".join(dmd_ids) or None)
    for n, doc in enumerate(plan.documents, 1):
        seq = sequence_of(doc)
        div = sub(parent, METS_NS, "div", ID=xml_id("div-doc", doc.id), TYPE="văn bản", LABEL=title_of(doc),
                  ORDER=str(seq or n), ORDERLABEL=tt05_stem(doc),
                  DMDID=None if plan.is_file else (" ".join(dmd_ids) or None))
        for f in plan.files_of(doc.id):
            sub(div, METS_NS, "fptr", FILEID=ids[f.path])
