"""Elasticsearch backend specifics. The behaviour both backends share is ``tests/test_search_contract.py`` (it runs
on this backend too, against the osmem stand-in: no real Elasticsearch can be installed here).

Golden files (``tests/golden/``), checked without a server:

- ``es_index.json``: ``index_body()``, the exact settings and mappings every concrete index is created with;
- ``es_queries.json``: ``search_body()`` of representative requests (unaccented, accented, phrase, number,
  filters + facets + clearance, empty, hostile);
- ``fold_probes.json``: tricky Vietnamese strings with their folded tokens (``schemas.text.tokens``: what the
  ``sohoa_folded`` analyzer must produce) and their exact tokens (what ``sohoa_exact`` must produce: the tone moved
  to a marker letter at the end of the word); checked against Python here and against the stand-in's analyzers
  (``_analyze`` and real index/query probes) below.

Update procedure, after an intended change to the mapping, the query builder or the probes::

    SOHOA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_search_es.py -k golden

then review ``git diff tests/golden/`` and commit the files with the code. The fold/exact expectations are
regenerated from Python (``schemas.text.tokens`` and ``exact_key`` below, the spec of the analyzers), never from
a server. A changed ``es_index.json`` means deployed archives need ``sohoa reindex``: an existing index keeps the
mapping it was created with.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import storage.search_es as search_es
from schemas.search import UNCLASSIFIED, IndexEntry, SearchFilters, SearchRequest
from schemas.text import canonical_tones, clean_ocr_text, fold, nfc, tokens
from storage.search_es import (
    POST_TAG,
    PRE_TAG,
    ElasticsearchIndex,
    code_values,
    document_of,
    highlighted,
    index_body,
    search_body,
)
from tests.test_search_contract import CORPUS, HOSTILE, entry

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("SOHOA_UPDATE_GOLDEN"))

# --- golden files --------------------------------------------------------------------------------------------


def _dump(data: object) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    # invisible characters stay visible as escapes (the highlight tags; NFD marks never appear: probes are NFC)
    return text.replace(PRE_TAG, "\\ue000").replace(POST_TAG, "\\ue001")


def golden(name: str, produced: object) -> Any:
    """The stored golden ``name``; rewritten from ``produced`` first when SOHOA_UPDATE_GOLDEN is set."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(_dump(produced), encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def test_golden_index_template() -> None:
    assert index_body() == golden("es_index.json", index_body())


QUERIES: dict[str, SearchRequest] = {
    "unaccented": SearchRequest(query="cong tac van thu"),
    "accented": SearchRequest(query="Hòa giải thủy lợi"),
    "phrase": SearchRequest(query='"ban thường vụ" thành ủy'),
    "number": SearchRequest(query="Số 15-NQ/TU"),
    "filters_facets_clearance": SearchRequest(
        query="nghị quyết", sort="date_desc", limit=20, offset=40, clearance=1, facets=True,
        filters=SearchFilters(type_name=["Nghị quyết"], organ_name=["Thành ủy Đà Nẵng"],
                              classification=[UNCLASSIFIED, "Mật"], batch=["lo-1"], file_code=["H49.1"],
                              year_from=2018, year_to=2021, date_from=date(2018, 1, 1), date_to=date(2021, 12, 31))),
    "empty": SearchRequest(facets=True),
    "hostile": SearchRequest(query='title:x AND ((( "unbalanced \\ {}[] *'),
}


def test_golden_query_bodies() -> None:
    produced = {name: {"request": r.model_dump(mode="json"), "body": search_body(r)} for name, r in QUERIES.items()}
    stored = golden("es_queries.json", produced)
    assert set(stored) == set(QUERIES)
    for name, case in stored.items():
        request = SearchRequest.model_validate(case["request"])
        assert request == QUERIES[name], name
        assert search_body(request) == case["body"], name


# --- folding: schemas.text.fold and the analyzers ------------------------------------------------------------

TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
PROBES = [
    "Đảng đảng ĐẢNG đ Đ đĐ Đà Nẵng ĐÀ NẴNG",
    "Ð ð ÐẢNG",  # Icelandic Eth, as tesseract writes Đ
    "hòa hoà HÒA HOÀ Hòa Hoà hoa hóa hoá HÓA HOÁ",
    "ủy uỷ ỦY UỶ Thành ủy THÀNH UỶ thủy thuỷ Thủy lũy lũỹ",
    "khỏe khoẻ KHỎE KHOẺ òe oè",
    "ư ơ Ư Ơ ưa ươ trường TRƯỜNG mười người NGƯỜI của cuả quả qủa",
    "ma má mà mả mã mạ MA MÁ MÀ MẢ MÃ MẠ",
    *(" ".join(nfc(v + t) for t in ("", *TONES)) + " " + " ".join(nfc(v.upper() + t) for t in ("", *TONES))
      for v in ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y")),
    "NGHỊ QUYẾT về công tác văn thư, lưu trữ của Ban Thường vụ Tỉnh ủy",
    "Số 15-NQ/TU ngày 5-3-2020; Quyết định số 01/2020/QĐ-UBND; V/v; hồ sơ H49.1",
    "x_y a1b2 _ 2020 ườm",
]


def exact_key(text: str) -> list[str]:
    """Python statement of the ``sohoa_exact`` analyzer: each toned vowel becomes its base vowel and the tone a
    marker letter at the end of the word; lower case; ``\\w+`` words of the text as the backend sends it."""
    text = clean_ocr_text(text)  # what the backend sends (NFC, Eth fixed)
    for spec in search_es._tone_filters().values():
        if spec["replacement"] == "$2$1":
            marks = spec["pattern"][2:spec["pattern"].index("]")]
            text = re.sub(f"([{marks}])(\\w+)", r"\2\1", text)
        else:
            text = re.sub(spec["pattern"], spec["replacement"], text)
    return re.findall(r"\w+", text.lower())


def probes() -> dict[str, Any]:
    return {"about": "Folded tokens: schemas.text.tokens (sohoa_folded must agree). Exact tokens: the sohoa_exact "
                     "analyzer (tone as a marker letter at the end of the word; same classes as "
                     "schemas.text.canonical_tones). Regenerate: see tests/test_search_es.py.",
            "probes": [{"text": p, "folded": tokens(p), "exact": exact_key(p)} for p in PROBES]}


@pytest.fixture(scope="module")
def fold_probes() -> list[dict[str, Any]]:
    return list(golden("fold_probes.json", probes())["probes"])


def test_golden_fold_probes_are_what_python_folds(fold_probes: list[dict[str, Any]]) -> None:
    assert [p["text"] for p in fold_probes] == PROBES
    for probe in fold_probes:
        for form in ("NFC", "NFD"):
            assert tokens(unicodedata.normalize(form, probe["text"])) == probe["folded"], (form, probe["text"])
        assert exact_key(probe["text"]) == probe["exact"], probe["text"]


def test_exact_tokens_have_the_classes_of_canonical_tones(fold_probes: list[dict[str, Any]]) -> None:
    """Two words share an exact token iff ``canonical_tones`` gives them the same form (and ma/má/mà differ)."""
    by_key: dict[str, set[str]] = {}
    by_canonical: dict[str, set[str]] = {}
    for probe in fold_probes:
        words = re.findall(r"\w+", canonical_tones(probe["text"]))
        assert len(words) == len(probe["exact"]), probe["text"]
        for word, key in zip(words, probe["exact"], strict=True):
            by_key.setdefault(key, set()).add(word)
            by_canonical.setdefault(word, set()).add(key)
    assert all(len(v) == 1 for v in by_key.values()), {k: v for k, v in by_key.items() if len(v) > 1}
    assert all(len(v) == 1 for v in by_canonical.values()), {k: v for k, v in by_canonical.items() if len(v) > 1}
    assert len({by_canonical[w].pop() for w in ("ma", "má", "mà", "mả", "mã", "mạ")}) == 6


# --- against the stand-in ------------------------------------------------------------------------------------


@pytest.fixture
def es(osmem: Any, request: pytest.FixtureRequest) -> Iterator[ElasticsearchIndex]:
    alias = f"sohoa-es-{uuid.uuid4().hex[:12]}"
    idx = ElasticsearchIndex(osmem.url, index=alias, node_class=osmem.node_class)
    yield idx
    idx.client.indices.delete(index=f"{alias}*", ignore_unavailable=True, expand_wildcards="all")
    idx.close()


def _analyze(idx: ElasticsearchIndex, analyzer: str, text: str) -> list[str]:
    idx._ensure()
    response = idx.client.indices.analyze(index=idx.alias, analyzer=analyzer, text=clean_ocr_text(text))
    return [t["token"] for t in response["tokens"]]


def test_es_analyzers_fold_like_schemas_text(es: ElasticsearchIndex, fold_probes: list[dict[str, Any]]) -> None:
    for probe in fold_probes:
        assert _analyze(es, "sohoa_folded", probe["text"]) == probe["folded"], probe["text"]
        assert _analyze(es, "sohoa_exact", probe["text"]) == probe["exact"], probe["text"]


def test_indexed_text_matches_like_the_probes(es: ElasticsearchIndex, fold_probes: list[dict[str, Any]]) -> None:
    """Index and query paths, not only ``_analyze``: every probe's folded tokens find it as a phrase on
    ``text.folded``, and each word of it, in any tone placement or case, finds it on the exact field."""
    es.upsert([entry(f"p{n}", p["text"]) for n, p in enumerate(fold_probes)])
    for n, probe in enumerate(fold_probes):
        body = {"query": {"match_phrase": {"text.folded": " ".join(probe["folded"])}}, "size": 50}
        assert f"p{n}" in {h["_id"] for h in es._search(body)["hits"]["hits"]}, probe["text"]
        for word in {*probe["text"].split()[:8], *canonical_tones(probe["text"]).split()[:8]}:
            body = {"query": {"match": {"text": {"query": clean_ocr_text(word)}}}, "size": 50}
            assert f"p{n}" in {h["_id"] for h in es._search(body)["hits"]["hits"]}, word


def test_exact_diacritics_rank_first_and_unaccented_finds_all(es: ElasticsearchIndex) -> None:
    es.upsert([entry("ma", "con ma trong nhà"), entry("ma1", "má tôi về"), entry("ma2", "mà thôi"),
               entry("ma3", "mạ non ngoài đồng")])
    found = [h.id for h in es.search(SearchRequest(query="má")).hits]
    assert found[0] == "ma1" and set(found) == {"ma", "ma1", "ma2", "ma3"}
    assert {h.id for h in es.search(SearchRequest(query="ma")).hits} == {"ma", "ma1", "ma2", "ma3"}


def test_a_document_is_found_by_its_code_when_the_text_is_garbled(es: ElasticsearchIndex) -> None:
    es.upsert([*CORPUS, entry("ocr", "S6 l5-NO/TU. NGHl QUYET ...", code_number="15", code_notation="NQ/HU")])
    for query in ("15-NQ/HU", "15 nq hu", "NQ/HU 15", "Số 15-NQ/HU"):
        assert [h.id for h in es.search(SearchRequest(query=query, clearance=3)).hits][:1] == ["ocr"], query


def test_hostile_input_never_reaches_a_query_parser() -> None:
    for query in HOSTILE:
        text = json.dumps(search_body(SearchRequest(query=query)))
        assert "query_string" not in text and "regexp" not in text and "wildcard" not in text


def test_deep_pages_and_empty_pages_do_not_fail(es: ElasticsearchIndex) -> None:
    es.upsert(CORPUS)
    deep = es.search(SearchRequest(query="", offset=100_000, limit=1000, clearance=3))
    assert deep.total == 6 and deep.hits == []
    none = es.search(SearchRequest(query="cong tac", limit=0, facets=True, clearance=3))
    assert none.total == 3 and none.hits == [] and sum(f.count for f in none.facets["type_name"]) == 3


def test_hits_carry_contract_metadata_and_snippets_with_offsets(es: ElasticsearchIndex) -> None:
    es.upsert(CORPUS)
    hit = es.search(SearchRequest(query="THÀNH UỶ ĐÀ NẴNG")).hits[0]
    assert hit.id == "nq15" and hit.metadata["code_number"] == "15" and "place" in hit.metadata
    assert {hit.snippet[s:e] for s, e in hit.highlights} >= {"ĐÀ", "NẴNG"}
    assert PRE_TAG not in hit.snippet and POST_TAG not in hit.snippet


# --- writes: alias swap --------------------------------------------------------------------------------------


def _concrete(idx: ElasticsearchIndex) -> dict[str, list[str]]:
    """Concrete indices of this alias's family → their aliases."""
    got = idx.client.indices.get_alias(index=f"{idx.alias}-*").body
    return {name: sorted(v.get("aliases", {})) for name, v in got.items()}


def test_replace_all_builds_a_new_index_and_swaps_the_alias(es: ElasticsearchIndex) -> None:
    es.upsert(CORPUS)
    (before,) = _concrete(es)
    seen_during: list[set[str]] = []

    def entries() -> Iterator[IndexEntry]:
        for n in range(30):
            if n == 15:  # half loaded: readers still see the old index, complete
                seen_during.append({h.id for h in es.search(SearchRequest(query="", limit=50, clearance=3)).hits})
            yield entry(f"new{n}", f"Thông báo số {n}", issued_date="2023-01-01")

    assert es.replace_all(entries()) == 30
    assert seen_during == [{e.id for e in CORPUS}]
    after = _concrete(es)
    assert before not in after and list(after.values()) == [[es.alias]]
    assert es.ids() == {f"new{n}" for n in range(30)}


def test_replace_all_failing_midway_keeps_the_old_index(es: ElasticsearchIndex) -> None:
    es.upsert(CORPUS)
    before = _concrete(es)

    def entries() -> Iterator[IndexEntry]:
        yield entry("new0", "Thông báo")
        raise RuntimeError("manifest store went away")

    with pytest.raises(RuntimeError, match="went away"):
        es.replace_all(entries())
    assert _concrete(es) == before and es.ids() == {e.id for e in CORPUS}


def test_replace_all_takes_over_a_concrete_index_with_the_alias_name(osmem: Any) -> None:
    name = f"sohoa-legacy-{uuid.uuid4().hex[:8]}"
    idx = ElasticsearchIndex(osmem.url, index=name, node_class=osmem.node_class)
    try:
        idx.client.indices.create(index=name, **index_body())
        idx.client.index(index=name, id="old", document=document_of(entry("old", "cũ")), refresh=True)
        assert idx.ids() == {"old"}
        assert idx.replace_all([entry("new", "mới")]) == 1
        assert idx.ids() == {"new"} and idx.client.indices.exists_alias(name=name)
    finally:
        idx.client.indices.delete(index=f"{name}*", ignore_unavailable=True, expand_wildcards="all")
        idx.close()


def test_ids_pages_through_every_document(es: ElasticsearchIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_es, "IDS_PAGE", 3)
    es.upsert([entry(f"d{n:02d}", "x") for n in range(10)])
    es.delete(["d03", "missing"])
    assert es.ids() == {f"d{n:02d}" for n in range(10)} - {"d03"}


# --- pure helpers --------------------------------------------------------------------------------------------


def test_code_values_are_the_code_key_and_its_prefixes() -> None:
    assert code_values("15", "NQ/TU") == ["15 nq tu", "15 nq"]
    assert code_values("123", "QĐ-UBND") == ["123 qd ubnd", "123 qd"]
    assert code_values("015", "NQ") == ["15 nq"]
    assert code_values(None, "NQ/TU") == [] and code_values("15", None) == []


def test_highlight_tags_become_offsets() -> None:
    snippet, marks = highlighted(f"Giữ {PRE_TAG}hoà{POST_TAG} bình,\n{PRE_TAG}hoà{POST_TAG} giải")
    assert snippet == "Giữ hoà bình, hoà giải" and [snippet[s:e] for s, e in marks] == ["hoà", "hoà"]
    assert highlighted("") == ("", []) and highlighted(f"{PRE_TAG}{POST_TAG}x") == ("x", [])


def test_documents_hold_nfc_text_and_unclassified_as_a_value() -> None:
    doc = document_of(entry("x", unicodedata.normalize("NFD", "Thủy lợi") + PRE_TAG, code_number="7",
                            code_notation="KH/QU", issued_date="2019-11-20", type_name="Kế hoạch"))
    assert doc["text"] == "Thủy lợi " and doc["classification"] == UNCLASSIFIED and doc["code"] == ["7 kh qu", "7 kh"]
    assert doc["issued_date"] == "2019-11-20" and doc["title"] == "Kế hoạch"
    assert document_of(entry("y", "", issued_date="2019-02-30"))["issued_date"] is None


def test_the_client_gets_auth_tls_and_timeout_and_connects_lazily() -> None:
    import certifi

    idx = ElasticsearchIndex("https://es.invalid:9200", username="elastic", password="secret",
                             index="sohoa-documents", ca_file=certifi.where(), timeout_s=7.0)
    try:
        node = idx.client.transport.node_pool.get()
        assert node.config.ca_certs == certifi.where() and node.config.scheme == "https"
        assert idx.client._headers["authorization"].startswith("Basic ")
        assert idx.client._request_timeout == 7.0
    finally:
        idx.close()


def test_huge_words_index_and_search(es: ElasticsearchIndex) -> None:
    """OCR noise: a 40 000-character "word" (over Lucene's 32 766-byte term limit: ``sohoa_long_words`` truncates
    it). The stand-in has neither that limit nor the 1 000 000-character highlight limit (``index_options:
    offsets``): on real Elasticsearch both are covered by the golden mapping only."""
    es.upsert([entry("noise", "_" * 40_000 + " nghị quyết"), entry("long", "báo cáo " * 5_000 + "hòa giải")])
    assert [h.id for h in es.search(SearchRequest(query="nghi quyet")).hits] == ["noise"]
    hits = es.search(SearchRequest(query="hoa giai")).hits
    marked = {fold(hits[0].snippet[s:e]) for s, e in hits[0].highlights}
    assert [h.id for h in hits] == ["long"] and marked and marked <= {"hoa", "giai"}
