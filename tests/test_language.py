"""Vietnamese language correction of OCR words (pipeline.language) with pyvi's word list (ocr_models.lexicon)."""

from __future__ import annotations

import pytest

from flows.wiring import language_lexicon
from ocr_models.lexicon import load_lexicon
from pipeline.language import Lexicon, build_lexicon, correct_line, correct_page
from pipeline.language_syllable import canonical, change_cost, parts, skeleton
from schemas.ocr import OcrPage, OcrWord
from schemas.settings import Settings


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    source = load_lexicon()
    return build_lexicon(source.entries, source.provenance())


def _words(*lines: str, confidence: float = 0.96) -> list[OcrWord]:
    words = []
    for number, line in enumerate(lines):
        x = 100
        for text in line.split():
            width = 30 * len(text)
            words.append(OcrWord(text=text, box=(x, 100 + 60 * number, x + width, 140 + 60 * number),
                                 confidence=confidence, line=number, block=0))
            x += width + 20
    return words


def _page(*lines: str, confidence: float = 0.96) -> OcrPage:
    words = _words(*lines, confidence=confidence)
    return OcrPage(number=1, text="\n".join(lines), words=words, confidence=confidence, width=2480, height=3508,
                   dpi=300)


def _fix(line: str, lexicon: Lexicon) -> str:
    return " ".join(correct_line(_words(line), lexicon))


def test_syllables_compare_in_one_spelling() -> None:
    assert canonical("hoà") == canonical("hòa") == "hòa"
    assert canonical("THUỶ") == "thủy"
    assert canonical("quyết") == "quyết" and parts("quyết") == ("qu", "yêt", "\u0301")
    assert canonical("giữa") == "giữa" and parts("giữa")[0] == "gi"
    assert skeleton("Đẩy") == "day"
    # a tone over a circumflex is the usual OCR slip, over a plain vowel a rarer one
    assert change_cost("bô", "bố") < change_cost("tỉnh", "tính")


def test_lexicon_source_is_recorded(lexicon: Lexicon) -> None:
    assert lexicon.provenance["licence"] == "MIT"
    assert lexicon.provenance["version"] == "0.1.1"
    assert len(lexicon.provenance["sha256"]) == 64
    assert {"tổ", "chức", "chi", "bộ"} <= lexicon.syllables


def test_wrong_tones_over_circumflex_vowels_are_corrected(lexicon: Lexicon) -> None:
    assert _fix("và công bô quyết định kiêm định chất lượng giáo dục", lexicon) == (
        "và công bố quyết định kiểm định chất lượng giáo dục")
    assert _fix("các tố chức đảng và chỉ bộ", lexicon) == "các tổ chức đảng và chi bộ"
    assert _fix("trung học phô thông", lexicon) == "trung học phổ thông"
    assert _fix("đã được câp", lexicon) == "đã được cấp"  # not a syllable: the one far more words use
    assert _fix("các cơ quan Ban Tuyển giáo và dẫn vận", lexicon) == "các cơ quan Ban Tuyên giáo và dân vận"
    assert _fix("Mặt trận Tố quốc Việt Nam", lexicon) == "Mặt trận Tổ quốc Việt Nam"


def test_case_and_punctuation_are_kept(lexicon: Lexicon) -> None:
    assert _fix("III- TỐ CHỨC THỰC HIỆN", lexicon) == "III- TỔ CHỨC THỰC HIỆN"
    assert _fix("Kiêm định, công bô.", lexicon) == "Kiểm định, công bố."


def test_a_word_cut_by_the_line_end_is_read_with_the_next_line(lexicon: Lexicon) -> None:
    page = _page("giám sát nơi ở ngoại tỉnh; kiêm", "tra, giám sát chặt chẽ")
    fixed, steps = correct_page(page, lexicon)
    assert [w.text for w in fixed.words][6:8] == ["kiểm", "tra,"]
    assert steps["language_corrected"] == 1


def test_numbers_notations_and_names_are_left_alone(lexicon: Lexicon) -> None:
    for line in ("Số 1245-NQ/TU ngày 28 tháng 01 năm 2007", "TB-ĐHĐL QĐ/TU V/v",
                 "LÊ KIÊM ĐỊNH", "ý kiến của ông Kiêm Định nay", "Š ^ã",
                 "UBND TP. Đà Năng;", "Số 976-TB/VPTU Đà Năng, ngày 22"):
        assert _fix(line, lexicon) == line
    assert _fix("KIÊM ĐỊNH", lexicon) == "KIỂM ĐỊNH"  # the same words without a family name before them


def test_readings_that_are_words_already_are_left_alone(lexicon: Lexicon) -> None:
    for line in ("cung cấp đầy đủ thông tin", "máy tính có kết nối mạng", "đơn vị hành chính cấp tỉnh, cấp xã",
                 "chủ tịch nước Cộng hòa", "người đứng đầu"):
        assert _fix(line, lexicon) == line


def test_page_words_change_text_only(lexicon: Lexicon) -> None:
    page = _page("Ban hành quyết định công bô kết quả", "Nguyễn Văn An")
    fixed, steps = correct_page(page, lexicon)
    assert [w.text for w in fixed.words][5] == "bố"
    assert [w.box for w in fixed.words] == [w.box for w in page.words]
    assert [w.confidence for w in fixed.words] == [w.confidence for w in page.words]
    assert steps["language_corrected"] == 1 and steps["language_lexicon_licence"] == "MIT"
    assert correct_page(page, None) == (page, {})


def test_a_small_lexicon_decides_by_words_not_by_letters() -> None:
    small = build_lexicon(["tổ chức", "tổ", "tố", "chức", "cáo", "tố cáo"])
    assert _fix("tố chức", small) == "tổ chức"
    assert _fix("tố cáo", small) == "tố cáo"
    assert _fix("tố", small) == "tố"  # alone: no evidence either way


def test_the_correction_is_a_setting_and_its_lexicon_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ocr_language_correction is True
    monkeypatch.setenv("SOHOA_OCR_LANGUAGE_CORRECTION", "false")
    assert Settings().ocr_language_correction is False
    assert language_lexicon() is language_lexicon()


def test_capitals_that_may_be_a_secrecy_or_urgency_mark_stay_as_read(lexicon: Lexicon) -> None:
    for mark in ("TÔI MẬT", "TỐI MẶT", "THUỢNG KHẨN", "MẶT", "HOẢ TỐC"):
        assert _fix(mark, lexicon) == mark
    assert _fix("kiêm tra", lexicon) == "kiểm tra"  # ordinary words are still corrected


def test_a_slipped_preposition_standing_alone_before_a_word_is_read_as_the_preposition(lexicon: Lexicon) -> None:
    assert _fix("thành phố đê đẩy nhanh tiến độ", lexicon) == "thành phố để đẩy nhanh tiến độ"
    assert _fix("làm việc vơi các đơn vị", lexicon) == "làm việc với các đơn vị"
    assert _fix("tuyến đê biển", lexicon) == "tuyến đê biển"  # a lexicon word keeps its reading
    assert _fix("các tuyến đê, kè", lexicon) == "các tuyến đê, kè"  # a preposition never precedes punctuation
    assert _fix("chỉ tiêu đề ra", lexicon) == "chỉ tiêu đề ra"  # đề is a word of its own: never a slip
    assert _fix("đê Hòa Liên", lexicon) == "đê Hòa Liên"


@pytest.mark.parametrize(("read", "want"), [
    ("trên công thông tin điện tử", "trên cổng thông tin điện tử"),
    ("thực hiện các biện pháp phòng, chông dịch", "thực hiện các biện pháp phòng, chống dịch"),
    ("Ban Thưởng vụ Thành ủy", "Ban Thường vụ Thành ủy"),
    ("xuất trình căn cước công dần", "xuất trình căn cước công dân"),
])
def test_administrative_terms_the_general_word_list_lacks(read: str, want: str, lexicon: Lexicon) -> None:
    """``vocabulary/vie.admin-phrases``: terms of Party and state administration, each read as one word."""
    assert _fix(read, lexicon) == want


@pytest.mark.parametrize("line", ["công nghệ thông tin của công ty", "số gốc của giấy", "công an thành phố",
                                  "thông tin điện tử"])
def test_administrative_terms_do_not_change_other_readings(line: str, lexicon: Lexicon) -> None:
    assert _fix(line, lexicon) == line


def test_administrative_terms_are_recorded(lexicon: Lexicon) -> None:
    assert lexicon.provenance["admin_phrases"] == "vie.admin-phrases"
    assert len(lexicon.provenance["admin_phrases_sha256"]) == 64
