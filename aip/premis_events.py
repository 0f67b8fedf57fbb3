"""PREMIS 3 events of each document — ingestion, OCR/PDF/A creation (tool versions, model hashes and parameters
as eventDetail), metadata extraction, the fixity checks given, the check made while packaging — and the
package's creation."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from aip.elements import EVENT_TYPE_AUTHORITY, PREMIS_NS, TT05, Exact, as_dict, iso, premis_identifier, sub, text
from aip.plan import PackagePlan
from schemas.document import DocumentManifest
from schemas.reasons import describe_all

ObjRef = tuple[str, str, str]  # PREMIS linking object: identifier type, value, role


class FixityEvent(NamedTuple):
    """One fixity check of a document, for PREMIS: when, its outcome ("pass"/"fail"/...), a note."""

    at: datetime | str
    outcome: str
    detail: str = ""


FixityChecks = Sequence[FixityEvent | tuple[datetime | str, str] | tuple[datetime | str, str, str]]


def ocr_detail(provenance: Mapping[str, object]) -> str:
    """One readable line: OCR engine and version, model hashes, parameters, PDF/A tools."""
    ocr, pdfa = as_dict(provenance.get("ocr")), as_dict(provenance.get("pdfa"))
    parts = []
    if ocr:
        engine = f"{ocr.get('engine', 'ocr')} {ocr.get('version', '?')}"
        if ocr.get("leptonica"):
            engine += f" (Leptonica {ocr['leptonica']})"
        parts.append(engine)
        models = as_dict(ocr.get("models"))
        if models:
            parts.append("mô hình " + ", ".join(f"{lang} sha256={as_dict(m).get('sha256', '?')}"
                                                for lang, m in sorted(models.items())))
        params = as_dict(ocr.get("parameters"))
        if params:
            parts.append("tham số " + " ".join(f"{k}={v}" for k, v in sorted(params.items())))
    if pdfa:
        tools = ", ".join(f"{k} {v}" for k, v in sorted(pdfa.items()) if k in ("pikepdf", "qpdf"))
        parts.append(f"{pdfa.get('conformance', 'PDF/A')}" + (f" ({tools})" if tools else ""))
    return "; ".join(parts) or "không có thông tin công cụ"


def _provenance_json(provenance: Mapping[str, object]) -> str:
    """The provenance without the per-page preprocessing steps (those stay in document.json)."""
    slim = dict(provenance)
    prep = as_dict(slim.get("preprocessing"))
    if prep:
        slim["preprocessing"] = {k: v for k, v in prep.items() if k != "pages"}
    return json.dumps(slim, ensure_ascii=False, sort_keys=True, default=str)


def add_event(root: ET.Element, event_id: str, event_type: str, at: str, details: Sequence[str], outcome: str,
              note: str | None, agent_ids: Sequence[str], objects: Sequence[ObjRef]) -> None:
    """One ``<event>``: type, time, details, outcome (and note), executing programs, linked objects."""
    ev = sub(root, PREMIS_NS, "event")
    premis_identifier(ev, "event", "local", event_id)
    sub(ev, PREMIS_NS, "eventType", event_type, authority="eventType", authorityURI=EVENT_TYPE_AUTHORITY)
    sub(ev, PREMIS_NS, "eventDateTime", at)
    for d in details:
        sub(sub(ev, PREMIS_NS, "eventDetailInformation"), PREMIS_NS, "eventDetail", d)
    info = sub(ev, PREMIS_NS, "eventOutcomeInformation")
    sub(info, PREMIS_NS, "eventOutcome", outcome)
    if text(note):
        sub(sub(info, PREMIS_NS, "eventOutcomeDetail"), PREMIS_NS, "eventOutcomeDetailNote", note)
    for agent_id in agent_ids:
        link = sub(ev, PREMIS_NS, "linkingAgentIdentifier")
        sub(link, PREMIS_NS, "linkingAgentIdentifierType", "local")
        sub(link, PREMIS_NS, "linkingAgentIdentifierValue", agent_id)
        sub(link, PREMIS_NS, "linkingAgentRole", "executing program")
    for id_type, value, role in objects:
        link = sub(ev, PREMIS_NS, "linkingObjectIdentifier")
        sub(link, PREMIS_NS, "linkingObjectIdentifierType", id_type)
        sub(link, PREMIS_NS, "linkingObjectIdentifierValue", value)
        sub(link, PREMIS_NS, "linkingObjectRole", role)


def add_document_events(
    root: ET.Element, plan: PackagePlan, doc: DocumentManifest, *, stamp: str, sohoa: str, ocr_agents: list[str],
    exporter: str, fixity_checks: FixityChecks,
) -> None:
    """A document's events: ingestion, OCR/PDF/A creation, metadata extraction, past fixity checks (in time
    order) and the check made while packaging (``stamp``)."""
    files = plan.files_of(doc.id)
    doc_obj: list[ObjRef] = [("sohoa", doc.id, "source")]
    sources: list[ObjRef] = [("local", Exact(f.path), "source") for f in files if f.role == "original"]
    outcomes: list[ObjRef] = [("local", Exact(f.path), "outcome") for f in files if f.role != "original"]
    add_event(root, f"{doc.id}-ingestion", "ingestion", doc.created_at,
              [f"Nhận vào kho sohoa: lô «{doc.batch}», tệp nguồn «{doc.source}»; SHA-256 nội dung {doc.sha256}"],
              "success", None, [sohoa], [("sohoa", doc.id, "outcome")] + [(t, v, "outcome") for t, v, _ in sources])
    add_event(root, f"{doc.id}-ocr", "creation", doc.created_at,
              [f"Số hóa: nhận dạng chữ (OCR) và tạo PDF/A hai lớp — {ocr_detail(doc.provenance)}",
               _provenance_json(doc.provenance)],
              "success", f"{len(doc.pages)} trang", ocr_agents, sources + outcomes)
    reasons = "; ".join(describe_all(doc.review_reasons))  # an edge: the codes in Vietnamese
    add_event(root, f"{doc.id}-metadata", "metadata extraction", doc.created_at,
              [f"Trích xuất thông tin văn bản theo {TT05} từ kết quả OCR"],
              "success" if doc.status == "done" else "review required", reasons or None, [sohoa],
              doc_obj + [(t, v, "source") for t, v, _ in outcomes if v.endswith(".txt")])
    checks = sorted((FixityEvent(*c) for c in fixity_checks), key=lambda c: (iso(c.at), c.outcome, c.detail))
    all_files: list[ObjRef] = [("local", Exact(f.path), "source") for f in files]
    for n, check in enumerate(checks, 1):
        add_event(root, f"{doc.id}-fixity-{n}", "fixity check", iso(check.at),
                  [text(check.detail) or "Kiểm tra SHA-256 các tệp của văn bản trong kho (sohoa verify)"],
                  check.outcome, None, [exporter], doc_obj + all_files)
    add_event(root, f"{doc.id}-fixity-package", "fixity check", stamp,
              [f"Kiểm tra SHA-256 khi đóng gói: {len(files)} tệp khớp bản kê document.json"],
              "pass", None, [exporter], doc_obj + all_files)


def add_package_event(root: ET.Element, plan: PackagePlan, *, stamp: str, exporter: str) -> None:
    """The creation of the package itself, linked to every document."""
    add_event(root, f"{plan.objid}-package", "information package creation", stamp,
              [f"Tạo gói lưu trữ E-ARK AIP «{plan.package_id}» ({len(plan.documents)} văn bản, "
               f"{len(plan.files)} tệp)"],
              "success", None, [exporter], [("sohoa", d.id, "source") for d in plan.documents])
