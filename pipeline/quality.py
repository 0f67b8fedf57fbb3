"""Decide whether a document needs an archivist's review, and say why (Vietnamese reasons)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.metadata import DocumentMetadata
from schemas.ocr import OcrPage
from schemas.text import fold

MIN_PAGE_CHARS = 20
# A secrecy mark whose evidence confidence (rule certainty x OCR confidence of the stamp line) is below this is
# uncertain. A clean stand-alone stamp scores ~0.85 (0.95 x OCR ~0.9); a stamp read at OCR confidence below ~0.74,
# a mark sharing its line with other words (certainty 0.7), a mark found only on a later page (0.8 x OCR) and a
# one-letter misread (0.5) all fall below it. Erring towards review is deliberate: a secret document treated as
# public is the costly mistake.
SECRECY_REVIEW_CONFIDENCE = 0.7
DOUBTFUL_WORD_CONFIDENCE = 0.6
MAX_DOUBTFUL_SHARE = 0.025
SECRECY_UNCERTAIN = "độ mật chưa chắc chắn: cần lưu trữ viên xác nhận"


def doubtful_share(page: OcrPage, *, below: float = DOUBTFUL_WORD_CONFIDENCE) -> float:
    """Share of the page's characters that lie in words the engine itself read with confidence < ``below``."""
    chars = sum(len(w.text) for w in page.words)
    doubtful = sum(len(w.text) for w in page.words if w.confidence < below)
    return doubtful / chars if chars else 0.0


def review_reasons(
    pages: Sequence[OcrPage],
    metadata: DocumentMetadata,
    *,
    min_confidence: float,
    max_doubtful_share: float = MAX_DOUBTFUL_SHARE,
) -> list[str]:
    """Reasons a document should be reviewed; empty when the machine is confident.

    A page is flagged when it is nearly empty, when its mean word confidence is below ``min_confidence``, or
    when more than ``max_doubtful_share`` of its characters are in doubtful words (confidence < 0.6). On the
    development corpus the doubtful-share rule at 2.5 % flagged 9 of the 10 pages whose true CER exceeds 3 % and
    2 of the 30 others (both at 2.5–2.9 % CER); mean confidence alone could not separate them.
    """
    reasons: list[str] = []
    for page in pages:
        doubtful = doubtful_share(page)
        if len(page.text.strip()) < MIN_PAGE_CHARS:
            reasons.append(f"trang {page.number}: gần như không đọc được chữ")
        elif page.confidence < min_confidence:
            reasons.append(f"trang {page.number}: độ tin cậy OCR thấp ({page.confidence:.0%})")
        elif doubtful >= max_doubtful_share:
            share = f"{doubtful * 100:.1f}".replace(".", ",")  # Vietnamese decimal comma
            reasons.append(f"trang {page.number}: {share} % chữ nhận dạng không chắc chắn, cần soát lại")
    if not (metadata.code_number and metadata.code_notation):
        reasons.append("thiếu số/ký hiệu")
    if not metadata.issued_date:
        reasons.append("thiếu ngày ban hành")
    if not metadata.type_name:
        reasons.append("thiếu tên loại văn bản")
    if secrecy_uncertain(metadata):
        reasons.append(SECRECY_UNCERTAIN)
    return reasons


def secrecy_uncertain(metadata: DocumentMetadata) -> bool:
    """A secrecy level was found but not surely: low confidence, no evidence, or a near-miss reading.

    The classification itself is kept (the document stays classified until an archivist confirms)."""
    if not metadata.classification:
        return False
    evidence = metadata.evidence.get("classification")
    if evidence is None or evidence.confidence < SECRECY_REVIEW_CONFIDENCE:
        return True
    return evidence.raw is not None and _near_miss(evidence.raw, metadata.classification)


def _near_miss(raw: str, value: str) -> bool:
    """True when the printed line does not literally carry the mark (e.g. ``MẶI``, ``[rồi MẬT|`` for Tối mật)."""
    words = ["".join(ch for ch in w if ch.isalpha()) for w in fold(raw).split()]
    words = [w for w in words if w]
    wanted = fold(value).split()
    n = len(wanted)
    return not any(words[i : i + n] == wanted for i in range(len(words) - n + 1))


DUPLICATE_REASON = "có thể trùng với văn bản "


def duplicate_reasons(same: Sequence[tuple[str, str]]) -> list[str]:
    """One review reason per other document (id, source) with the same số, ký hiệu, loại, ngày and organ."""
    return [f"{DUPLICATE_REASON}{doc_id} ({source})" for doc_id, source in same]


def duplicate_of(reason: str) -> str | None:
    """The other document's id named by a duplicate review reason, else ``None``."""
    if not reason.startswith(DUPLICATE_REASON):
        return None
    return reason[len(DUPLICATE_REASON):].split(" ", 1)[0] or None
