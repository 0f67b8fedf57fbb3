"""PREMIS 3 agents: the software that ingested, recognised and packaged the documents (sohoa in each version
that touched them, the OCR engine with its Leptonica)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aip.elements import PREMIS_NS, as_dict, premis_identifier, sub, text
from schemas.document import DocumentManifest

Agents = dict[str, tuple[str, str, str]]  # agent id -> (name, version, note)


def agent_id(name: str, version: str) -> str:
    return f"{name}-{version}"


def exporter_agents(software_version: str) -> tuple[str, Agents]:
    """The packaging sohoa's agent id and the agent table starting with it."""
    exporter = agent_id("sohoa", software_version)
    return exporter, {exporter: ("sohoa", software_version, "")}


def document_agents(doc: DocumentManifest, software_version: str, agents: Agents) -> tuple[str, list[str]]:
    """The agents that digitised ``doc`` (added to ``agents``): the sohoa agent's id and the OCR event's
    executing programs (sohoa, then the OCR engine when the provenance names one)."""
    version = text(doc.provenance.get("sohoa")) or software_version
    sohoa = agent_id("sohoa", version)
    agents.setdefault(sohoa, ("sohoa", version, ""))
    ocr = as_dict(doc.provenance.get("ocr"))
    ocr_agents = [sohoa]
    if ocr:
        engine, engine_version = str(ocr.get("engine", "tesseract")), str(ocr.get("version", "unknown"))
        ocr_id = agent_id(engine, engine_version)
        note = f"Leptonica {ocr['leptonica']}" if ocr.get("leptonica") else ""
        agents.setdefault(ocr_id, (engine, engine_version, note))
        ocr_agents.append(ocr_id)
    return sohoa, ocr_agents


def add_agents(root: ET.Element, agents: Agents) -> None:
    """Every agent, sorted by id, as a software agent."""
    for ident, (name, version, note) in sorted(agents.items()):
        agent = sub(root, PREMIS_NS, "agent")
        premis_identifier(agent, "agent", "local", ident)
        sub(agent, PREMIS_NS, "agentName", name)
        sub(agent, PREMIS_NS, "agentType", "software")
        sub(agent, PREMIS_NS, "agentVersion", version)
        if note:
            sub(agent, PREMIS_NS, "agentNote", note)
