"""Document metadata: the stable ``metadata`` contract of ``sohoa show/search --json``.

Keys of ``CONTRACT_KEYS`` are never renamed; fields may be added. Values are ``None`` when unknown.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

CLASSIFICATIONS = ("Mật", "Tối mật", "Tuyệt mật")
URGENCIES = ("Khẩn", "Thượng khẩn", "Hỏa tốc")


class FieldEvidence(BaseModel):
    """Where a metadata value came from and how sure the extractor is."""

    confidence: float = Field(ge=0.0, le=1.0)
    page: int | None = None
    raw: str | None = None
    # the pixel box (x0, y0, x1, y1) on ``page`` of the OCR image the value was read from: the union of the boxes of
    # the lines the rule used on that page. Optional: manifests written before it was kept still load (None)
    box: tuple[int, int, int, int] | None = None


class DocumentMetadata(BaseModel):
    code_number: str | None = None  # "15"
    code_notation: str | None = None  # "NQ/TU" (Party) or "QĐ-UBND" (state)
    type_name: str | None = None  # TT 05/2025 wording: "Nghị quyết"
    issued_date: str | None = None  # "YYYY-MM-DD"
    place: str | None = None
    organ_name: str | None = None
    subject: str | None = None  # trích yếu
    signer: str | None = None
    signer_title: str | None = None
    classification: str | None = None  # None | "Mật" | "Tối mật" | "Tuyệt mật"
    urgency: str | None = None  # None | "Khẩn" | "Thượng khẩn" | "Hỏa tốc"
    recipients: list[str] = Field(default_factory=list)
    page_count: int | None = None
    # additions beyond the spine contract
    type_code: str | None = None  # TT 05 code "01".."32"
    authority: str | None = None  # "T/M BAN THƯỜNG VỤ"
    organ_lines: list[str] = Field(default_factory=list)
    # fields whose value is a handwritten fill-in on the page: left empty (None) for a person to enter
    handwritten: list[str] = Field(default_factory=list)
    # the e-office signature stamp of a digitally signed copy, as read ("Ký bởi: ... Thời gian ký: ..."); the fact
    # "văn bản có chữ ký số" (``pipeline.esign``). None: no such stamp was seen
    digital_signature: str | None = None
    evidence: dict[str, FieldEvidence] = Field(default_factory=dict)


CONTRACT_KEYS = (
    "code_number",
    "code_notation",
    "type_name",
    "issued_date",
    "place",
    "organ_name",
    "subject",
    "signer",
    "signer_title",
    "classification",
    "urgency",
    "recipients",
    "page_count",
)
