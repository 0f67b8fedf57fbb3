"""The package's PREMIS 3 document: objects, then events, then agents."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime

from aip.elements import PREMIS_LOCATION, PREMIS_NS, XSI_NS, iso, q, serialise
from aip.plan import PackagePlan
from aip.premis_agents import add_agents, document_agents, exporter_agents
from aip.premis_events import FixityChecks, add_document_events, add_package_event
from aip.premis_objects import add_file_objects, add_intellectual_entities


def build_premis(
    plan: PackagePlan, *, created: datetime | str, software_version: str,
    fixity_events: Mapping[str, FixityChecks] | None = None,
) -> bytes:
    """PREMIS 3: an intellectual entity per document and a file object per data file (SHA-256 fixity, size,
    format, original name, derivation); events — ingestion, OCR/PDF/A creation (tool versions, model hashes and
    parameters as eventDetail), metadata extraction, the fixity checks given, the check made while packaging —
    and the software agents."""
    stamp = iso(created)
    root = ET.Element(q(PREMIS_NS, "premis"), {"version": "3.0", q(XSI_NS, "schemaLocation"): PREMIS_LOCATION})
    exporter, agents = exporter_agents(software_version)
    add_intellectual_entities(root, plan)
    add_file_objects(root, plan, software_version)
    for doc in plan.documents:
        sohoa, ocr_agents = document_agents(doc, software_version, agents)
        add_document_events(root, plan, doc, stamp=stamp, sohoa=sohoa, ocr_agents=ocr_agents, exporter=exporter,
                            fixity_checks=(fixity_events or {}).get(doc.id, []))
    add_package_event(root, plan, stamp=stamp, exporter=exporter)
    add_agents(root, agents)
    return serialise(root, default_namespace=PREMIS_NS)
