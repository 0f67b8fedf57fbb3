"""Handwritten fill-ins of the number and date (state templates): left empty with a field-level review reason.

Pages are built by hand: each word has its own box height and OCR confidence, as the engine reports them."""

from __future__ import annotations

from pipeline.metadata import extract_metadata
from pipeline.quality import FIELD_CONFIDENCE, field_reasons, review_reasons
from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage, OcrWord
from schemas.reasons import ReasonCode, describe

WIDTH, HEIGHT, CHAR_W, GAP = 2480, 3508, 24, 14
Word = tuple[str, float, int]  # text, confidence, height


def page(rows: list[tuple[int, int, list[Word]]]) -> OcrPage:
    """Rows of (baseline y, x0, words); each word's box is ``height`` tall above the baseline."""
    words: list[OcrWord] = []
    for line_no, (y, x0, row) in enumerate(rows):
        x = x0
        for text, conf, height in row:
            w = len(text) * CHAR_W
            words.append(OcrWord(text=text, box=(x, y - height, x + w, y), confidence=conf, line=line_no))
            x += w + GAP
    text = "\n".join(" ".join(w.text for w in words if w.line == i) for i in range(len(rows)))
    return OcrPage(number=1, text=text, words=words, confidence=0.9, width=WIDTH, height=HEIGHT, dpi=300)


def printed(text: str, height: int = 44, conf: float = 0.95) -> list[Word]:
    return [(w, conf, height) for w in text.split()]


def state_page(number: list[Word], date: list[Word]) -> OcrPage:
    return page([
        (250, 480, printed("BỘ CÔNG THƯƠNG")),
        (250, 1300, printed("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")),
        (320, 380, printed("TRƯỜNG ĐẠI HỌC ĐIỆN LỰC")),
        (330, 1400, printed("Độc lập - Tự do - Hạnh phúc")),
        (430, 470, number),
        (440, 1310, date),
        (590, 1100, printed("THÔNG BÁO")),
        (660, 600, printed("Về việc tổ chức đăng ký môn học học kỳ I")),
        (800, 400, printed("Nhà trường thông báo như sau.")),
    ])


PRINTED_DATE = printed("Hà Nội, ngày 15 tháng 6 năm 2021", 40)


def test_junk_and_dot_leaders_mark_the_number_and_date_as_handwritten() -> None:
    number = [("Số:", 0.93, 50), ("ø07ó../TB-ĐHĐL", 0.12, 52)]
    date = [("Hà", 0.96, 39), ("Nội,", 0.96, 45), ("ngày.)", 0.66, 70), ("{tháng", 0.66, 53), ("&", 0.58, 49),
            ("năm", 0.96, 36), ("2025", 0.96, 38)]
    pages = [state_page(number, date)]
    md = extract_metadata(pages)
    assert md.code_number is None and md.issued_date is None
    assert md.code_notation == "TB-ĐHĐL"  # the printed symbol is kept
    assert set(md.handwritten) == {"code_number", "issued_date"}
    assert "2025" in (md.evidence["issued_date"].raw or "")  # the printed year stays in the evidence
    reasons = review_reasons(pages, md, min_confidence=0.5)
    codes = [(r.code, r.params.get("field")) for r in reasons]
    assert (ReasonCode.FIELD_HANDWRITTEN, "code_number") in codes
    assert (ReasonCode.FIELD_HANDWRITTEN, "issued_date") in codes
    assert not {ReasonCode.MISSING_CODE, ReasonCode.MISSING_ISSUED_DATE} & {c for c, _ in codes}  # not twice
    texts = [describe(r) for r in reasons]
    assert "số văn bản viết tay — cần nhập" in texts and "ngày ban hành viết tay — cần nhập" in texts


def test_digits_taller_than_the_printed_line_are_handwriting() -> None:
    tall = extract_metadata([state_page([("Số:", 0.96, 51), ("445", 0.87, 65), ("/TB-ĐHĐL", 0.86, 51)],
                                        PRINTED_DATE)])
    assert tall.code_number is None and tall.handwritten == ["code_number"]
    assert tall.issued_date == "2021-06-15"  # the typed date is kept
    same = extract_metadata([state_page([("Số:", 0.96, 51), ("445", 0.96, 44), ("/TB-ĐHĐL", 0.96, 44)],
                                        PRINTED_DATE)])
    assert same.code_number == "445" and same.handwritten == []


def test_a_handwritten_month_empties_the_date_and_the_number_registered_with_it() -> None:
    date = [*printed("Hà Nội, ngày", 40), ("15", 0.9, 40), ("tháng", 0.95, 50), ("6", 0.95, 48),
            *printed("năm 2021", 39)]
    md = extract_metadata([state_page([("Số:", 0.96, 50), ("934/TB-ĐHĐL", 0.51, 52)], date)])
    assert md.issued_date is None and "tall" in (md.evidence["issued_date"].raw or "")
    assert md.code_number is None  # number and date are written in by one registration
    assert set(md.handwritten) == {"code_number", "issued_date"}


def test_a_printed_party_header_is_kept_even_when_read_with_low_confidence() -> None:
    pages = [page([
        (250, 420, printed("ĐẢNG BỘ THÀNH PHỐ ĐÀ NẴNG")),
        (250, 1300, printed("ĐẢNG CỘNG SẢN VIỆT NAM")),
        (320, 560, printed("THÀNH ỦY")),
        (430, 520, [("Số", 0.5, 43), ("819-TB/TU", 0.43, 40)]),
        (440, 1310, printed("Đà Nẵng, ngày 13 tháng 02 năm 2003", 40)),
        (590, 1100, printed("THÔNG BÁO")),
        (660, 600, printed("về kết quả kiểm tra")),
    ])]
    md = extract_metadata(pages)
    assert md.code_number == "819" and md.issued_date == "2003-02-13" and md.handwritten == []
    low = [r for r in review_reasons(pages, md, min_confidence=0.5) if r.code is ReasonCode.FIELD_LOW_CONFIDENCE]
    assert {r.params["field"] for r in low} >= {"code_number"}
    assert describe(low[0]).endswith("— cần soát lại")


def test_field_reasons_name_each_field_once() -> None:
    md = DocumentMetadata(
        code_notation="TB-ĐHĐL", signer="Nguyễn Văn An", handwritten=["code_number", "code_number"],
        evidence={
            "code_number": FieldEvidence(confidence=0.0),
            "signer": FieldEvidence(confidence=FIELD_CONFIDENCE["signer"] - 0.1),
            "code_notation": FieldEvidence(confidence=0.95),
        },
    )
    reasons = field_reasons(md)
    assert [(r.code, r.params["field"]) for r in reasons] == [
        (ReasonCode.FIELD_HANDWRITTEN, "code_number"), (ReasonCode.FIELD_LOW_CONFIDENCE, "signer")]
    assert describe(reasons[1]).startswith("người ký nhận dạng chưa chắc chắn (50%)")
