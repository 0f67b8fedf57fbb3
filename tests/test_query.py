from schemas.query import MAX_QUERY_CHARS, parse_query


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
