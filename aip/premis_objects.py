"""PREMIS 3 objects: an intellectual entity per document and a file object per data file (SHA-256 fixity,
size, format, creating application, original name, structural and derivation relationships)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aip.elements import PREMIS_NS, XSI_NS, Exact, as_dict, premis_identifier, q, sub, text
from aip.plan import PackageFile, PackagePlan, file_code_of, tt05_stem
from schemas.document import DocumentManifest


def add_intellectual_entities(root: ET.Element, plan: PackagePlan) -> None:
    """One intellectual entity per document: its sohoa id, its TT 05 name when it has a mã hồ sơ, its source."""
    for doc in plan.documents:
        entity = sub(root, PREMIS_NS, "object", **{q(XSI_NS, "type"): "intellectualEntity"})
        premis_identifier(entity, "object", "sohoa", doc.id)
        if file_code_of(doc):
            premis_identifier(entity, "object", "TT05 fileCode.sequence", tt05_stem(doc) or file_code_of(doc) or "")
        sub(entity, PREMIS_NS, "originalName", doc.source)


def add_file_objects(root: ET.Element, plan: PackagePlan, software_version: str) -> None:
    """One file object per data file of every document, in document then path order."""
    for doc in plan.documents:
        version = text(doc.provenance.get("sohoa")) or software_version
        originals = [f for f in plan.files_of(doc.id) if f.role == "original"]
        conformance = text(as_dict(doc.provenance.get("pdfa")).get("conformance"))
        for f in plan.files_of(doc.id):
            _file_object(root, doc, f, version=version, conformance=conformance, originals=originals)


def _file_object(
    root: ET.Element, doc: DocumentManifest, f: PackageFile, *, version: str, conformance: str | None,
    originals: list[PackageFile],
) -> None:
    obj = sub(root, PREMIS_NS, "object", **{q(XSI_NS, "type"): "file"})
    premis_identifier(obj, "object", "local", Exact(f.path))
    chars = sub(obj, PREMIS_NS, "objectCharacteristics")
    sub(chars, PREMIS_NS, "compositionLevel", "0")
    fixity = sub(chars, PREMIS_NS, "fixity")
    sub(fixity, PREMIS_NS, "messageDigestAlgorithm", "SHA-256")
    sub(fixity, PREMIS_NS, "messageDigest", f.sha256)
    sub(fixity, PREMIS_NS, "messageDigestOriginator", "sohoa")
    sub(chars, PREMIS_NS, "size", str(f.size))
    designation = sub(sub(chars, PREMIS_NS, "format"), PREMIS_NS, "formatDesignation")
    sub(designation, PREMIS_NS, "formatName", f.media_type)
    if f.role == "pdfa" and conformance:
        sub(designation, PREMIS_NS, "formatVersion", conformance)
    if f.role != "original":
        app = sub(chars, PREMIS_NS, "creatingApplication")
        sub(app, PREMIS_NS, "creatingApplicationName", "sohoa")
        sub(app, PREMIS_NS, "creatingApplicationVersion", version)
        sub(app, PREMIS_NS, "dateCreatedByApplication", doc.created_at)
    if f.role == "original":
        sub(obj, PREMIS_NS, "originalName", Exact(f.source_key.removeprefix("original/")))
    _related(obj, "structural", "is included in", "sohoa", doc.id)
    if f.role == "pdfa":
        for o in originals:
            _related(obj, "derivation", "has source", "local", Exact(o.path))


def _related(parent: ET.Element, rel_type: str, sub_type: str, id_type: str, value: str) -> None:
    rel = sub(parent, PREMIS_NS, "relationship")
    sub(rel, PREMIS_NS, "relationshipType", rel_type)
    sub(rel, PREMIS_NS, "relationshipSubType", sub_type)
    ident = sub(rel, PREMIS_NS, "relatedObjectIdentifier")
    sub(ident, PREMIS_NS, "relatedObjectIdentifierType", id_type)
    sub(ident, PREMIS_NS, "relatedObjectIdentifierValue", value)
