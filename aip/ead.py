"""EAD3 description of a package: a hồ sơ (archdesc level "file", its documents as ``<c level="item">``) or a
single document (archdesc level "item"), with the TT 05/2025 fields."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from aip.elements import (
    CONFIDENCE_LEVEL,
    EAD_LOCATION,
    EAD_NS,
    LANGUAGE_CODE,
    LANGUAGE_NAME,
    MODE_PUBLIC,
    MODE_SECRET,
    TT05,
    XSI_NS,
    href,
    iso,
    iso_date,
    q,
    serialise,
    sub,
    text,
    xml_id,
)
from aip.plan import PackageFile, PackagePlan, code_of, file_code_of, mode_of, sequence_of, title_of
from schemas.document import DocumentManifest
from schemas.reasons import describe_all


def build_ead(plan: PackagePlan, *, created: datetime | str, software_version: str, agency: str = "sohoa") -> bytes:
    """EAD3 description: a hồ sơ (archdesc level "file", its documents as ``<c level="item">`` in số thứ tự
    order), or a single document (archdesc level "item"); TT 05/2025 fields as unitid/unitdate/origination/
    physdescstructured/langmaterial/controlaccess/accessrestrict/odd. All text NFC."""
    root = ET.Element(q(EAD_NS, "ead"), {q(XSI_NS, "schemaLocation"): EAD_LOCATION})
    _ead_control(root, plan, stamp=iso(created), software_version=software_version, agency=agency)
    pdf_of = {f.doc_id: f for f in plan.files if f.role == "pdfa"}
    if not plan.is_file:
        doc = plan.documents[0]
        _ead_item(sub(root, EAD_NS, "archdesc", level="item"), doc, pdf_of.get(doc.id), software_version)
        return serialise(root, default_namespace=EAD_NS)

    archdesc = sub(root, EAD_NS, "archdesc", level="file")
    _ead_file_did(sub(archdesc, EAD_NS, "did"), plan)
    restrict = sub(archdesc, EAD_NS, "accessrestrict", localtype="mode")
    sub(restrict, EAD_NS, "head", "Chế độ sử dụng")
    sub(restrict, EAD_NS, "p", MODE_SECRET if any(mode_of(d) == MODE_SECRET for d in plan.documents)
        else MODE_PUBLIC)
    dsc = sub(archdesc, EAD_NS, "dsc")
    for doc in plan.documents:
        item = sub(dsc, EAD_NS, "c", id=xml_id("doc", doc.id), level="item")
        _ead_item(item, doc, pdf_of.get(doc.id), software_version)
    return serialise(root, default_namespace=EAD_NS)


def _ead_control(root: ET.Element, plan: PackagePlan, *, stamp: str, software_version: str, agency: str) -> None:
    """``<control>``: record id, title, agency, language, TT 05 convention and the creation event."""
    control = sub(root, EAD_NS, "control", langencoding="iso639-2b", scriptencoding="iso15924",
                  dateencoding="iso8601", countryencoding="iso3166-1", repositoryencoding="iso15511")
    sub(control, EAD_NS, "recordid", plan.objid)
    sub(sub(sub(control, EAD_NS, "filedesc"), EAD_NS, "titlestmt"), EAD_NS, "titleproper", plan.title)
    sub(control, EAD_NS, "maintenancestatus", value="new")
    sub(sub(control, EAD_NS, "maintenanceagency"), EAD_NS, "agencyname", agency)
    lang = sub(control, EAD_NS, "languagedeclaration")
    sub(lang, EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)
    sub(lang, EAD_NS, "script", "Latin", scriptcode="Latn")
    sub(sub(control, EAD_NS, "conventiondeclaration"), EAD_NS, "citation", TT05)
    event = sub(sub(control, EAD_NS, "maintenancehistory"), EAD_NS, "maintenanceevent")
    sub(event, EAD_NS, "eventtype", value="created")
    sub(event, EAD_NS, "eventdatetime", stamp, standarddatetime=stamp)
    sub(event, EAD_NS, "agenttype", value="machine")
    sub(event, EAD_NS, "agent", f"sohoa {software_version}")


def _ead_file_did(did: ET.Element, plan: PackagePlan) -> None:
    """A hồ sơ's ``<did>``: mã hồ sơ, title, date range, issuing organs, number of documents and pages."""
    sub(did, EAD_NS, "unitid", plan.file_code, label="Mã hồ sơ", localtype="fileCode")
    sub(did, EAD_NS, "unittitle", plan.title)
    dates = sorted(d for d in (iso_date(doc.metadata.issued_date) for doc in plan.documents) if d)
    if dates:
        first, last = dates[0], dates[-1]
        shown = first.strftime("%d/%m/%Y") if first == last else \
            f"{first.strftime('%d/%m/%Y')} - {last.strftime('%d/%m/%Y')}"
        sub(did, EAD_NS, "unitdate", shown, normal=first.isoformat() if first == last else
            f"{first.isoformat()}/{last.isoformat()}", unitdatetype="inclusive")
    organs = sorted({o for o in (text(doc.metadata.organ_name) for doc in plan.documents) if o})
    if organs:
        origination = sub(did, EAD_NS, "origination", label="Cơ quan ban hành")
        for organ in organs:
            sub(sub(origination, EAD_NS, "corpname"), EAD_NS, "part", organ)
    count = sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="materialtype")
    sub(count, EAD_NS, "quantity", str(len(plan.documents)))
    sub(count, EAD_NS, "unittype", "văn bản")
    total_pages = sum(doc.metadata.page_count or len(doc.pages) for doc in plan.documents)
    pages = sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="spaceoccupied")
    sub(pages, EAD_NS, "quantity", str(total_pages))
    sub(pages, EAD_NS, "unittype", "trang")
    sub(sub(did, EAD_NS, "langmaterial"), EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)


def _ead_item(el: ET.Element, doc: DocumentManifest, pdf: PackageFile | None, software_version: str) -> None:
    """One document: its ``<did>``, access restrictions, type, TT 05 notes and digitisation/review notes."""
    _ead_item_did(sub(el, EAD_NS, "did"), doc, pdf)
    md = doc.metadata
    restrict = sub(el, EAD_NS, "accessrestrict", localtype="mode")
    sub(restrict, EAD_NS, "head", "Chế độ sử dụng")
    sub(restrict, EAD_NS, "p", mode_of(doc))
    if text(md.classification):
        secret = sub(el, EAD_NS, "accessrestrict", localtype="classification")
        sub(secret, EAD_NS, "head", "Độ mật")
        sub(secret, EAD_NS, "p", md.classification)
    if text(md.type_name):
        access = sub(el, EAD_NS, "controlaccess")
        genre = sub(access, EAD_NS, "genreform", identifier=text(md.type_code), source=TT05, localtype="typeName")
        sub(genre, EAD_NS, "part", md.type_name)
    _ead_item_notes(el, doc)
    info = sub(el, EAD_NS, "processinfo", localtype="digitisation")
    sub(info, EAD_NS, "head", "Số hóa")
    version = text(doc.provenance.get("sohoa")) or software_version
    sub(info, EAD_NS, "p", f"Số hóa và nhận dạng chữ bằng sohoa {version} ngày {doc.created_at}; "
                           f"lô «{doc.batch}», tệp nguồn «{doc.source}».")
    if doc.review_reasons:
        review = sub(el, EAD_NS, "processinfo", localtype="review")
        sub(review, EAD_NS, "head", "Cần xem lại")
        for reason in describe_all(doc.review_reasons):  # an edge: the codes in Vietnamese
            sub(review, EAD_NS, "p", reason)


def _ead_item_did(did: ET.Element, doc: DocumentManifest, pdf: PackageFile | None) -> None:
    """A document's ``<did>``: số và ký hiệu, identifiers, title, date, organ, pages, language, the PDF/A."""
    md = doc.metadata
    code = code_of(doc)
    if code:
        sub(did, EAD_NS, "unitid", code, label="Số, ký hiệu")
    for localtype, value in (("codeNumber", md.code_number), ("codeNotation", md.code_notation),
                             ("fileCode", file_code_of(doc)), ("sequence", sequence_of(doc)), ("sohoa", doc.id)):
        if text(value):
            sub(did, EAD_NS, "unitid", value, localtype=localtype)
    sub(did, EAD_NS, "unittitle", title_of(doc))
    issued = iso_date(md.issued_date)
    if issued is not None:
        sub(did, EAD_NS, "unitdate", issued.strftime("%d/%m/%Y"), normal=issued.isoformat(),
            unitdatetype="inclusive")
    elif text(md.issued_date):
        sub(did, EAD_NS, "unitdate", md.issued_date, unitdatetype="inclusive")
    if text(md.organ_name):
        origination = sub(did, EAD_NS, "origination", label="Cơ quan ban hành")
        sub(sub(origination, EAD_NS, "corpname"), EAD_NS, "part", md.organ_name)
    pages = md.page_count if md.page_count else len(doc.pages)
    physdesc = sub(did, EAD_NS, "physdescstructured", coverage="whole", physdescstructuredtype="spaceoccupied")
    sub(physdesc, EAD_NS, "quantity", str(pages))
    sub(physdesc, EAD_NS, "unittype", "trang")
    sub(sub(did, EAD_NS, "langmaterial"), EAD_NS, "language", LANGUAGE_NAME, langcode=LANGUAGE_CODE)
    if pdf is not None:
        sub(did, EAD_NS, "dao", daotype="derived", href=href(pdf.path), linktitle=pdf.path.rsplit("/", 1)[-1])


def _ead_item_notes(el: ET.Element, doc: DocumentManifest) -> None:
    """``<odd>`` notes for the TT 05 fields EAD has no element for (place, signer, recipients, ...)."""
    md = doc.metadata
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
            odd = sub(el, EAD_NS, "odd", localtype=localtype)
            sub(odd, EAD_NS, "head", head)
            for v in values:
                sub(odd, EAD_NS, "p", v)
