"""Decide whether a document needs an archivist's review, and say why (Vietnamese reasons)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.metadata import DocumentMetadata
from schemas.ocr import OcrPage

MIN_PAGE_CHARS = 20


def review_reasons(pages: Sequence[OcrPage], metadata: DocumentMetadata, *, min_confidence: float) -> list[str]:
    """Reasons a document should be reviewed; empty when the machine is confident."""
    reasons: list[str] = []
    for page in pages:
        if len(page.text.strip()) < MIN_PAGE_CHARS:
            reasons.append(f"trang {page.number}: gần như không đọc được chữ")
        elif page.confidence < min_confidence:
            reasons.append(f"trang {page.number}: độ tin cậy OCR thấp ({page.confidence:.0%})")
    if not (metadata.code_number and metadata.code_notation):
        reasons.append("thiếu số/ký hiệu")
    if not metadata.issued_date:
        reasons.append("thiếu ngày ban hành")
    if not metadata.type_name:
        reasons.append("thiếu tên loại văn bản")
    return reasons
