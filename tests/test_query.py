import pytest

from schemas.query import MAX_QUERY_CHARS, code_key, parse_query


def test_unaccented_and_accented_words_parse_to_the_same_terms() -> None:
    assert parse_query("nghị quyết ban thường vụ").terms == parse_query("nghi quyet ban thuong vu").terms


def test_number_symbol_becomes_phrase() -> None:
    q = parse_query("15-NQ/TU")
    assert q.phrases == [["15", "nq", "tu"]]
    assert q.terms == []
    assert parse_query("123/QĐ-UBND").phrases == [["123", "qd", "ubnd"]]


def test_quoted_phrase_and_unbalanced_quote() -> None:
    q = parse_query('"ban thường vụ" văn thư')
    assert q.phrases == [["ban", "thuong", "vu"]]
    assert q.terms == ["van", "thu"]
    assert parse_query('"ban thuong').terms == ["ban", "thuong"]


def test_hostile_input_is_bounded_and_cleaned() -> None:
    q = parse_query("a\x00b\x1f OR NOT * ( ) " + "x" * 20_000)
    assert len(q.raw) <= MAX_QUERY_CHARS
    assert all(t.isalnum() for t in q.terms)
    assert parse_query("  \t ").empty
    assert parse_query('"""').empty


def test_accented_words_give_exact_forms_with_canonical_tones() -> None:
    assert parse_query("hòa giải").exact == parse_query("hoà giải").exact == ["giaỉ", "hoà"]
    assert parse_query("hoa giai").exact == []  # typed without diacritics: any of them
    q = parse_query('"phương án" hoa')
    assert q.exact == ["phương", "án"] and q.terms == ["hoa"] and q.phrases == [["phuong", "an"]]
    assert parse_query("\x00" + "hòa " * 500).exact == ["hoà"]


@pytest.mark.parametrize("text", ["15-NQ/TU", "NQ/TU 15", "Số 15-NQ/TU", "15 nq tu", "số ký hiệu 15-NQ/TU",
                                  "015-NQ/TU", "Nghị quyết 15-NQ/TU"])
def test_number_queries_give_the_code_key(text: str) -> None:
    assert "15 nq tu" in parse_query(text).codes
    assert parse_query(text).phrases or parse_query(text).terms


def test_number_lookup_keys() -> None:
    assert parse_query("15-NQ").codes == ["15 nq"]
    assert parse_query("123/QĐ-UBND").codes == ["123 qd ubnd"]
    assert parse_query("2020").codes == [] and parse_query("cong tac").codes == []
    assert parse_query("Số 15-NQ/TU").terms == []  # a lookup: "số" need not be in the text
    assert parse_query("so 15 nq tu").terms == ["so", "15", "nq", "tu"]
    assert code_key("15", "NQ/TU") == code_key("015", "nq-tu") == "15 nq tu"
    assert code_key(None, "NQ/TU") is None and code_key("15", None) is None
