"""Archival information packages (E-ARK CSIP / AIP): the layout and the METS, EAD3 and PREMIS 3 documents.

Pure, like ``pipeline`` (imports only ``schemas``): manifests, the package's file list (paths, sizes, SHA-256)
and timestamps in; a layout and XML bytes out. Output is deterministic: files and documents sorted, identifiers
derived from paths, document ids and positions, every timestamp passed in (or taken from the manifests).
``flows.package`` copies the objects and writes them.

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

Modules: ``plan`` (layout, names, checksum manifest), ``mets``, ``ead``, ``premis`` (assembling
``premis_objects``, ``premis_events``, ``premis_agents``), ``elements`` (namespaces, vocabulary, XML helpers).
"""

from aip.ead import build_ead
from aip.elements import (
    CONTENT_CATEGORY,
    CONTENT_INFORMATION_TYPE,
    CSIP_NS,
    CSIP_PROFILE,
    EAD_NS,
    METS_NS,
    PREMIS_NS,
    XLINK_NS,
    href,
    text,
)
from aip.mets import ROLE_USE, build_mets
from aip.plan import (
    CHECKSUM_MANIFEST,
    EAD_PATH,
    METS_FILE,
    PREMIS_PATH,
    REP_DERIVED,
    REP_ORIGINAL,
    PackageFile,
    PackageLayoutError,
    PackagePlan,
    checksum_manifest,
    code_of,
    file_code_of,
    group_documents,
    metadata_path_of_manifest,
    mode_of,
    package_id_for,
    parse_checksum_manifest,
    plan_package,
    safe_name,
    sequence_of,
    title_of,
    tt05_stem,
)
from aip.premis import build_premis
from aip.premis_events import FixityEvent, ocr_detail

__all__ = [
    "CHECKSUM_MANIFEST", "CONTENT_CATEGORY", "CONTENT_INFORMATION_TYPE", "CSIP_NS", "CSIP_PROFILE", "EAD_NS",
    "EAD_PATH", "METS_FILE", "METS_NS", "PREMIS_NS", "PREMIS_PATH", "REP_DERIVED", "REP_ORIGINAL", "ROLE_USE",
    "XLINK_NS", "FixityEvent", "PackageFile", "PackageLayoutError", "PackagePlan", "build_ead", "build_mets",
    "build_premis", "checksum_manifest", "code_of", "file_code_of", "group_documents", "href",
    "metadata_path_of_manifest", "mode_of", "ocr_detail", "package_id_for", "parse_checksum_manifest",
    "plan_package", "safe_name", "sequence_of", "text", "title_of", "tt05_stem",
]
