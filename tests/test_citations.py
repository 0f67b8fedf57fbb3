"""The citation finder (``pipeline.citations``) and the pure half of resolving a citation (``flows.citations``):
real Vietnamese citation patterns, Party and state, with OCR noise and line breaks, and text that is not one."""

from __future__ import annotations

import pytest

from flows.citations import base_key, cites, matches, target_of
from pipeline.citations import Citation, find_citations, segments
from schemas.document import SearchHit
from schemas.query import code_key, parse_query

# text, (key, notation, date, year, the span as it reads in the text)
POSITIVES: list[tuple[str, tuple[str, str, str | None, int | None, str]]] = [
    ("Căn cứ Nghị quyết số 15-NQ/TU ngày 12/3/2021 của Ban Thường vụ Thành ủy",
     ("15 nq tu", "NQ/TU", "2021-03-12", 2021, "Nghị quyết số 15-NQ/TU ngày 12/3/2021")),
    ("thay thế Quyết định số 123-QĐ/TU ngày 05 tháng 6 năm 2020.",
     ("123 qd tu", "QĐ/TU", "2020-06-05", 2020, "Quyết định số 123-QĐ/TU ngày 05 tháng 6 năm 2020")),
    ("Thực hiện Kết luận số 05-KL/TW, ngày 1/2/2023 của Bộ Chính trị",
     ("5 kl tw", "KL/TW", "2023-02-01", 2023, "Kết luận số 05-KL/TW, ngày 1/2/2023")),
    ("theo Báo cáo số 23/BC-UBND của Ủy ban nhân dân thành phố",
     ("23 bc ubnd", "BC-UBND", None, None, "Báo cáo số 23/BC-UBND")),
    ("Căn cứ Quyết định số 123/QĐ-UBND ngày 12-3-2021 của UBND thành phố",
     ("123 qd ubnd", "QĐ-UBND", "2021-03-12", 2021, "Quyết định số 123/QĐ-UBND ngày 12-3-2021")),
    ("Căn cứ Nghị định số 45/2024/NĐ-CP của Chính phủ",  # the year is not part of the ký hiệu: it is the year
     ("45 nd cp", "NĐ-CP", None, 2024, "Nghị định số 45/2024/NĐ-CP")),
    ("Căn cứ Luật số 15/2012/QH13 ngày 20 tháng 6 năm 2012",
     ("15 qh13", "QH13", "2012-06-20", 2012, "Luật số 15/2012/QH13 ngày 20 tháng 6 năm 2012")),
    ("Thực hiện Công văn số 45-CV/TU của Văn phòng", ("45 cv tu", "CV/TU", None, None, "Công văn số 45-CV/TU")),
    ("Thực hiện Hướng dẫn số 36-HD/VPTW ngày 03/4/2018", ("36 hd vptw", "HD/VPTW", "2018-04-03", 2018,
                                                         "Hướng dẫn số 36-HD/VPTW ngày 03/4/2018")),
    ("theo Văn bản số 1234/UBND-KT về việc", ("1234 ubnd kt", "UBND-KT", None, None, "Văn bản số 1234/UBND-KT")),
    # OCR noise: a tone slip on "số", the number's 1 read as l, lost diacritics, spaces around the separators
    ("Căn cứ Nghị quyết sô l5-NQ/TU của Ban", ("15 nq tu", "NQ/TU", None, None, "Nghị quyết sô l5-NQ/TU")),
    ("Căn cứ Nghi quyet so 15-NQ/TU cua Ban", ("15 nq tu", "NQ/TU", None, None, "Nghi quyet so 15-NQ/TU")),
    ("Căn cứ Chỉ thị số 07 - CT / TU ngày 9/9/2021", ("7 ct tu", "CT/TU", "2021-09-09", 2021,
                                                      "Chỉ thị số 07 - CT / TU ngày 9/9/2021")),
    ("Căn cứ Thông báo số: 12–TB/TU của", ("12 tb tu", "TB/TU", None, None, "Thông báo số: 12–TB/TU")),
    # line breaks inside a citation (OCR lines)
    ("Thực hiện Kế hoạch\nsố 91-KH/TU ngày\n20/5/2022 của", ("91 kh tu", "KH/TU", "2022-05-20", 2022,
                                                           "Kế hoạch\nsố 91-KH/TU ngày\n20/5/2022")),
    ("Căn cứ Nghị quyết số 15-NQ/\nTU của", ("15 nq tu", "NQ/TU", None, None, "Nghị quyết số 15-NQ/\nTU")),
    ("Thực hiện Quyết định số\n123/QĐ-\nUBND của", ("123 qd ubnd", "QĐ-UBND", None, None,
                                                   "Quyết định số\n123/QĐ-\nUBND")),
    # a date that is not a date keeps the citation, without the date
    ("Căn cứ Nghị quyết số 15-NQ/TU ngày 31/2/2021", ("15 nq tu", "NQ/TU", None, None, "Nghị quyết số 15-NQ/TU")),
    # running text after the ký hiệu is not part of it
    ("theo Quyết định số 12/QĐ-UBND - ngày nọ", ("12 qd ubnd", "QĐ-UBND", None, None, "Quyết định số 12/QĐ-UBND")),
]

NEGATIVES = [
    "Số 27-NQ/TU",  # the document's own number in its header: no type word, not a citation
    "Đà Nẵng, ngày 12/3/2021",
    "Hà Nội, ngày 12 tháng 3 năm 2021",
    "Số điện thoại: 0236.3822.123; di động 0905-123-456",
    "Công văn số 0905-123-456",  # digits only: a phone number after a type word
    "Báo cáo số 12/3/2021",  # a date after "số"
    "Kế hoạch số 5 năm 2021-2025",
    "Quyết định số lượng cán bộ 15-NQ/TU",  # "số lượng": no number right after "số"
    "Nghị quyết số 15-nq/tu",  # a ký hiệu is printed in capitals
    "Nghị quyết số ab-NQ/TU",
    "tỷ lệ 36,4% trong tổng số 1.284 đồng chí",
    "Nghị quyết số 2021 của Ban Thường vụ",  # a number and no ký hiệu
    "Quyết định số 123/2021",  # a number and a year, no ký hiệu
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_finds_citations(text: str, expected: tuple[str, str, str | None, int | None, str]) -> None:
    key, notation, date, year, span = expected
    found = find_citations(text)
    assert len(found) == 1, found
    c = found[0]
    assert (c.key, c.notation, c.date, c.year, text[c.start:c.end]) == (key, notation, date, year, span)
    assert c.key == code_key(c.number, c.notation)  # the index's key, not a second normalisation
    # a lookup of the citation is a số/ký hiệu lookup (a ký hiệu with digits, QH13, is searched as a phrase)
    assert parse_query(c.query).codes == ([] if c.notation == "QH13" else [c.key])


@pytest.mark.parametrize("text", NEGATIVES)
def test_is_not_a_citation(text: str) -> None:
    assert find_citations(text) == []


def test_several_citations_in_order_and_segments_keep_the_text() -> None:
    text = ("Căn cứ Nghị quyết số 15-NQ/TU ngày 12/3/2021 và Quyết định số 123/QĐ-UBND;\n"
            "thay thế Công văn số 45-CV/TU. Điện thoại 0236.3822.123.")
    found = find_citations(text)
    assert [c.key for c in found] == ["15 nq tu", "123 qd ubnd", "45 cv tu"]
    assert [c.type_name for c in found] == ["Nghị quyết", "Quyết định", "Công văn"]
    pieces = segments(text, found)
    assert "".join(p for p, _ in pieces) == text
    assert [p for p, c in pieces if c is not None] == [
        "Nghị quyết số 15-NQ/TU ngày 12/3/2021", "Quyết định số 123/QĐ-UBND", "Công văn số 45-CV/TU"]
    assert segments(text, []) == [(text, None)]


def test_decomposed_text_is_read_as_nfc() -> None:
    import unicodedata

    text = unicodedata.normalize("NFD", "Căn cứ Nghị quyết số 15-NQ/TU ngày 12/3/2021")
    found = find_citations(text)
    assert [c.key for c in found] == ["15 nq tu"]
    assert unicodedata.normalize("NFC", text)[found[0].start:found[0].end].startswith("Nghị quyết")


def _hit(doc_id: str, number: str, notation: str, issued: str | None) -> SearchHit:
    return SearchHit(id=doc_id, source=f"{doc_id}.png", score=0.0, snippet="",
                     metadata={"code_number": number, "code_notation": notation, "issued_date": issued})


def _cite(text: str) -> Citation:
    return find_citations(text)[0]


def test_matching_on_the_key_and_the_year() -> None:
    dated = _cite("Nghị quyết số 15-NQ/TU ngày 12/3/2021")
    undated = _cite("Nghị quyết số 15-NQ/TU")
    new, old = _hit("moi", "15", "NQ/TU", "2021-03-12"), _hit("cu", "15", "NQ/TU", "2019-04-02")
    other = _hit("khac", "15", "NQ/BCSĐ", "2021-03-12")  # the same number of another organ: another document
    citing = _hit("trich", "23", "BC/TU", "2023-01-10")  # a document only citing the number in its text
    assert target_of(dated, [citing, old, new, other]) is not None
    assert target_of(dated, [citing, old, new, other]).doc_id == "moi"  # type: ignore[union-attr]
    both = target_of(undated, [new, old, citing])
    assert both is not None and both.doc_id is None and both.query == "15-NQ/TU"  # ambiguous: a search
    assert target_of(undated, [old]).doc_id == "cu"  # type: ignore[union-attr]
    assert target_of(dated, [old, citing, other]) is None  # not in the archive (as the reader sees it)
    assert target_of(dated, [_hit("moi", "15", "NQ/TU", None)]) is None  # the year cannot be checked
    same_year = _hit("cung-nam", "15", "NQ/TU", "2021-09-01")
    assert target_of(dated, [same_year, new]).doc_id == "moi"  # type: ignore[union-attr]  # the day decides
    assert target_of(dated, [same_year]).doc_id == "cung-nam"  # type: ignore[union-attr]  # a slip of the day
    state = _cite("Căn cứ Nghị định số 45/2024/NĐ-CP")
    assert target_of(state, [_hit("nd", "45", "NĐ-CP", "2024-06-01")]).doc_id == "nd"  # type: ignore[union-attr]
    assert target_of(state, [_hit("nd", "45", "NĐ-CP", "2023-06-01")]) is None


def test_base_key_and_cites() -> None:
    assert base_key("45 2024 nd cp") == "45 nd cp"
    assert base_key("15 nq tu") == "15 nq tu"
    assert base_key("15 qh13") == "15 qh13"
    assert base_key(None) is None
    assert cites(_cite("Nghị quyết số 15-NQ/TU ngày 12/3/2021"), "15 nq tu", 2021)
    assert not cites(_cite("Nghị quyết số 15-NQ/TU ngày 12/3/2021"), "15 nq tu", 2019)
    assert cites(_cite("Nghị quyết số 15-NQ/TU"), "15 nq tu", 2019)
    assert not cites(_cite("Nghị quyết số 16-NQ/TU"), "15 nq tu", None)
    assert matches(_cite("Nghị quyết số 15-NQ/TU"), []) == []
