"""XML vocabulary and helpers shared by the METS, EAD3 and PREMIS documents: namespaces, schema locations, the
E-ARK CSIP / TT 05/2025 values, clean text, elements, serialisation."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import date, datetime
from urllib.parse import quote

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

for _prefix, _uri in (("mets", METS_NS), ("xlink", XLINK_NS), ("csip", CSIP_NS), ("xsi", XSI_NS),
                      ("premis", PREMIS_NS), ("ead", EAD_NS)):
    ET.register_namespace(_prefix, _uri)

_XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def text(value: object) -> str | None:
    """Text for XML: NFC (Vietnamese in precomposed form), characters XML cannot carry removed, trimmed."""
    if value is None:
        return None
    cleaned = _XML_ILLEGAL.sub("", unicodedata.normalize("NFC", str(value))).strip()
    return cleaned or None


def iso(value: datetime | str) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def href(path: str) -> str:
    """A package path as a relative URL (percent-encoded UTF-8, "/" kept). Not normalised: it must name the
    file exactly as written (an original keeps its stored name byte for byte)."""
    return quote(path, safe="/")


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


class Exact(str):
    """Text kept as it is (a file path must name the file exactly), only XML-illegal characters removed."""


def sub(parent: ET.Element, ns: str, tag: str, content: object = None, /, **attrs: str | None) -> ET.Element:
    """A child element with ``content`` as text (NFC unless ``Exact``) and the attributes that are not ``None``."""
    el = ET.SubElement(parent, q(ns, tag), {k: v for k, v in attrs.items() if v is not None})
    body = _XML_ILLEGAL.sub("", content) or None if isinstance(content, Exact) else text(content)
    if body is not None:
        el.text = body
    return el


def serialise(root: ET.Element, *, default_namespace: str | None = None) -> bytes:
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


def xml_id(prefix: str, value: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', value)}"


def as_dict(value: object) -> dict[str, object]:
    """``value`` when it is a dict (keys as text), else an empty dict: provenance read defensively."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def premis_identifier(parent: ET.Element, kind: str, id_type: str, value: str) -> None:
    """A PREMIS ``<{kind}Identifier>`` (kind: object, event, agent) with its type and value."""
    ident = sub(parent, PREMIS_NS, f"{kind}Identifier")
    sub(ident, PREMIS_NS, f"{kind}IdentifierType", id_type)
    sub(ident, PREMIS_NS, f"{kind}IdentifierValue", value)
