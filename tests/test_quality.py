"""Review reasons (codes, ``schemas.reasons``): uncertain secrecy marks keep the document classified and ask an
archivist to confirm."""

from __future__ import annotations

from pipeline.quality import (
    SECRECY_REVIEW_CONFIDENCE,
    SECRECY_UNCERTAIN,
    duplicate_reasons,
    review_reasons,
    secrecy_uncertain,
)
from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage, OcrWord
from schemas.reasons import Reason, ReasonCode, describe

COMPLETE = {"code_number": "15", "code_notation": "NQ/TU", "issued_date": "2020-02-01", "type_name": "Nghị quyết"}


def _md(classification: str | None = None, evidence: FieldEvidence | None = None) -> DocumentMetadata:
    ev = {"classification": evidence} if evidence else {}
    return DocumentMetadata(classification=classification, evidence=ev, **COMPLETE)  # type: ignore[arg-type]


def _reasons(md: DocumentMetadata) -> list[Reason]:
    return review_reasons([], md, min_confidence=0.7)


def test_clean_secrecy_stamp_needs_no_review() -> None:
    md = _md("Mật", FieldEvidence(confidence=0.87, page=1, raw="MẬT"))
    assert _reasons(md) == []
    assert not secrecy_uncertain(_md("Tối mật", FieldEvidence(confidence=0.86, page=1, raw="TỐI MẬT")))
    assert not secrecy_uncertain(_md("Mật", FieldEvidence(confidence=0.79, page=1, raw="MẬT|")))  # stray bar


def test_low_confidence_secrecy_is_flagged_and_kept() -> None:
    md = _md("Mật", FieldEvidence(confidence=SECRECY_REVIEW_CONFIDENCE - 0.01, page=1, raw="MẬT"))
    assert _reasons(md) == [SECRECY_UNCERTAIN]
    assert describe(SECRECY_UNCERTAIN) == "độ mật chưa chắc chắn: cần lưu trữ viên xác nhận"
    assert md.classification == "Mật"  # still classified until an archivist confirms


def test_near_miss_readings_are_flagged_even_when_confident() -> None:
    assert secrecy_uncertain(_md("Mật", FieldEvidence(confidence=0.9, page=1, raw="MẶI")))
    assert secrecy_uncertain(_md("Tối mật", FieldEvidence(confidence=0.9, page=1, raw="[rồi MẬT|")))
    assert secrecy_uncertain(_md("Tuyệt mật", FieldEvidence(confidence=0.9, page=1, raw="TUYỆT")))


def test_secrecy_without_evidence_is_uncertain_and_no_secrecy_is_not() -> None:
    assert secrecy_uncertain(_md("Mật"))
    assert not secrecy_uncertain(_md(None))
    assert _reasons(_md(None)) == []


def test_uncertain_secrecy_adds_to_other_reasons() -> None:
    md = DocumentMetadata(classification="Mật", evidence={"classification": FieldEvidence(confidence=0.4)})
    page = OcrPage(number=1, text="x", confidence=0.2, width=1, height=1, dpi=300)
    reasons = review_reasons([page], md, min_confidence=0.7)
    assert reasons[0].params["page"] == 1 and reasons[-1] == SECRECY_UNCERTAIN
    assert describe(reasons[0]).startswith("trang 1") and describe(reasons[0]) == "trang 1: gần như không đọc được chữ"


def test_duplicate_reasons_name_the_other_document() -> None:
    (dup,) = duplicate_reasons([("abc123", "lo/nq.pdf")])
    assert dup.code is ReasonCode.DUPLICATE_OF and dup.document_id == "abc123"
    assert describe(dup) == "có thể trùng với văn bản abc123 (lo/nq.pdf)"
    assert duplicate_reasons([]) == []


def _page_with(confidences: list[float]) -> OcrPage:
    words = [OcrWord(text="chữ", box=(i * 40, 0, i * 40 + 30, 20), confidence=c) for i, c in enumerate(confidences)]
    text = " ".join(w.text for w in words)
    mean = sum(confidences) / len(confidences)
    return OcrPage(number=2, text=text, words=words, confidence=mean, width=2480, height=3508, dpi=300)


def test_page_with_many_doubtful_words_is_flagged_even_when_mean_confidence_is_high() -> None:
    md = DocumentMetadata(code_number="1", code_notation="NQ/TU", issued_date="2020-01-01", type_name="Nghị quyết")
    clean = _page_with([0.95] * 100)
    assert review_reasons([clean], md, min_confidence=0.7) == []
    doubtful = _page_with([0.95] * 95 + [0.3] * 5)  # 5 % of the characters in doubtful words, mean 0.92
    (reason,) = review_reasons([doubtful], md, min_confidence=0.7)
    assert reason.code is ReasonCode.PAGE_DOUBTFUL_WORDS and reason.params["page"] == 2
    assert describe(reason).startswith("trang 2:") and "không chắc chắn" in describe(reason)
    assert describe(reason) == "trang 2: 5,0 % chữ nhận dạng không chắc chắn, cần soát lại"
    assert review_reasons([doubtful], md, min_confidence=0.7, max_doubtful_share=0.06) == []
