"""Hits on the scan (issue 22, part 2): the query's words as boxes over the page image of the document page, from
the page's stored hOCR, with previous/next hit links across pages.

- the pure parts: word boxes from hOCR words (clipped, malformed page), matching, the hit navigation;
- the document page (TestClient) on a copy of the digitised sample archive: boxes and links as rendered, a
  missing or malformed hOCR (no boxes, no error), a page text corrected by an archivist (boxes still from the
  hOCR), no route serving hOCR;
- the dev corpus (``../shared/corpus/dev``, 4 documents digitised here): 20 queries picked from the stored page
  texts, typed without diacritics (common and rare words, two-word queries, quoted phrases); on every page of
  every document the boxes drawn are exactly the hOCR words one of whose folded tokens is a query word, computed
  here independently from the stored hOCR (its own XML reading). Without the corpus: skipped, a failure in CI.

The browser half (Chromium at 1366 and 390 px) is ``tests/test_web_hits_browser.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.access import Rule
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from interfaces.web.hits import HitStep, current_hit, hit_number, step_hits
from pipeline.hits import hit_boxes, matching_words, page_words
from schemas.ocr import OcrWord
from schemas.settings import Settings
from schemas.text import fold, tokens
from tests.conftest import DigitisedArchive
from tests.test_access_rules import declared_routes

PASSWORD = "mat-khau-tim-tren-anh"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"
DEV_DOCUMENTS = ("dev_001.tif", "dev_005.pdf", "dev_007", "dev_018.tif")  # faint, clean (Mật), small tilt, clean
Box = tuple[int, int, int, int]


# --- pure parts ------------------------------------------------------------------------------------------------
def _word(text: str, box: Box) -> OcrWord:
    return OcrWord(text=text, box=box, confidence=0.9)


def test_word_boxes_are_clipped_matched_by_folded_tokens_and_given_in_percent() -> None:
    words = [_word("KẾ", (10, 20, 50, 40)), _word("hoạch", (60, 20, 140, 40)), _word("ghost", (0, 0, 0, 0)),
             _word("15-NQ/TU", (10, 100, 90, 120)), _word("kê", (10, 150, 30, 170)), _word("outside", (120, 5, 150, 9))]
    page = page_words(words, (100, 200))
    assert page is not None
    assert [w.text for w in page.words] == ["KẾ", "hoạch", "15-NQ/TU", "kê"]  # no area inside the page: left out
    assert page.words[1].box == (60, 20, 100, 40)  # clipped to the page
    assert [w.text for w in matching_words(page, {"ke", "hoach"})] == ["KẾ", "hoạch", "kê"]
    assert [w.text for w in matching_words(page, {"nq"})] == ["15-NQ/TU"]  # one of the word's tokens
    assert matching_words(page, set()) == []
    first = hit_boxes(page, {"ke"})[0]
    assert (first.left, first.top, first.width, first.height) == (10.0, 10.0, 40.0, 10.0)
    assert page_words(words, (0, 0)) is None and page_words(words, (100, -1)) is None  # no page size: no boxes


def test_hit_navigation_moves_across_pages_with_hits() -> None:
    counts = {1: 2, 2: 0, 3: 1, 4: 0}
    assert current_hit(counts, 1, None) == 1 and current_hit(counts, 1, 9) == 2 and current_hit(counts, 1, -3) == 1
    assert current_hit(counts, 2, 1) is None
    assert step_hits(counts, 1, 1) == (None, HitStep(1, 2))
    assert step_hits(counts, 1, 2) == (HitStep(1, 1), HitStep(3, 1))  # on to the next page with hits
    assert step_hits(counts, 2, None) == (HitStep(1, 2), HitStep(3, 1))  # a page without hits: both ways
    assert step_hits(counts, 3, 1) == (HitStep(1, 2), None)  # back to the last hit of the previous page
    assert step_hits(counts, 4, None) == (HitStep(3, 1), None)
    assert step_hits({}, 1, None) == (None, None)
    assert [hit_number(counts, 1, 2), hit_number(counts, 3, 1), hit_number(counts, 2, None)] == [2, 3, None]


# --- reading the rendered page and the stored hOCR (independently of the code under test) -----------------------
_RECT = re.compile(r'<rect id="hit-(\d+)" class="hit-box( current)?" data-word="[^"]*" x="([\d.]+)%" '
                   r'y="([\d.]+)%" width="([\d.]+)%" height="([\d.]+)%"></rect>')
_BBOX = re.compile(r"bbox (-?\d+) (-?\d+) (-?\d+) (-?\d+)")
_XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class HocrPage:
    width: int
    height: int
    words: list[tuple[str, Box]]


def read_hocr(data: bytes) -> HocrPage:
    """The page size and the words with their boxes, read as XML (not with the app's hOCR reader)."""
    root = ET.fromstring(data)
    page = next(e for e in root.iter(f"{_XHTML}div") if e.get("class") == "ocr_page")
    size = _BBOX.search(page.get("title") or "")
    assert size
    width, height = int(size.group(3)), int(size.group(4))
    words = []
    for span in root.iter(f"{_XHTML}span"):
        if span.get("class") != "ocrx_word":
            continue
        m = _BBOX.search(span.get("title") or "")
        text = "".join(span.itertext()).strip()
        if not m or not text:
            continue
        x0, y0, x1, y1 = (int(g) for g in m.groups())
        box = (max(0, min(width, x0)), max(0, min(height, y0)), max(0, min(width, x1)), max(0, min(height, y1)))
        if box[2] > box[0] and box[3] > box[1]:
            words.append((text, box))
    return HocrPage(width, height, words)


def expected_boxes(hocr: HocrPage, query: str) -> list[Box]:
    """Every hOCR word one of whose folded tokens is a word of the query (phrases: each of their words)."""
    wanted = set(tokens(query))
    return [box for text, box in hocr.words if wanted & set(tokens(text))]


def drawn_boxes(html: str, hocr: HocrPage) -> list[Box]:
    """The boxes of the rendered page, back in the hOCR's pixels (percent × page size)."""
    out = []
    for m in _RECT.finditer(html):
        x, y, w, h = (float(g) for g in m.groups()[2:])
        out.append((round(x * hocr.width / 100), round(y * hocr.height / 100),
                    round((x + w) * hocr.width / 100), round((y + h) * hocr.height / 100)))
    assert html.count("<rect") == len(out)  # every rect drawn was read
    return out


def _login(app: object, username: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
                         follow_redirects=False)
    assert answer.status_code == 303
    return client


def _hocr_path(archive: Path, doc_id: str, number: int) -> Path:
    return archive / "objects" / "documents" / doc_id / "pages" / f"{number:04d}.hocr"


def _link(html: str, element_id: str) -> str | None:
    m = re.search(rf'<a class="button secondary" id="{element_id}" href="([^"]+)"', html)
    return m.group(1).replace("&amp;", "&") if m else None


# --- the document page on the sample archive --------------------------------------------------------------------
@dataclass
class SampleWeb:
    root: Path
    ids: dict[str, str]
    client: TestClient


@pytest.fixture(scope="module")
def sample_web(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> SampleWeb:
    root = tmp_path_factory.mktemp("hits") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    add_user(settings, "boss", PASSWORD, "admin", clearance=3)
    add_user(settings, "reader", PASSWORD, "staff", clearance=0)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    ids = {str(d["source"]): str(d["id"]) for d in report if d["id"]}
    return SampleWeb(root=root, ids=ids, client=_login(create_app(settings, WebSettings()), "boss"))


QUERY = "ke hoach chuyen doi so"


def test_document_page_draws_the_query_words_and_steps_through_them(sample_web: SampleWeb) -> None:
    doc_id, client = sample_web.ids["kh_02.tif"], sample_web.client
    hocr = [read_hocr(_hocr_path(sample_web.root, doc_id, n).read_bytes()) for n in (1, 2)]
    expected = [expected_boxes(h, QUERY) for h in hocr]
    assert len(expected[0]) >= 3 and len(expected[1]) >= 1  # hits on both pages (the test can move between them)
    html = client.get(f"/documents/{doc_id}", params={"q": QUERY}).text
    assert "Trang 1/2" in html  # the page with the first hit opens first
    assert drawn_boxes(html, hocr[0]) == expected[0]
    assert [m.group(1) for m in _RECT.finditer(html) if m.group(2)] == ["1"]  # the first hit is the current one
    total = len(expected[0]) + len(expected[1])
    assert f"Kết quả 1/{total}" in html
    assert _link(html, "hit-prev") is None
    assert _link(html, "hit-next") == f"/documents/{doc_id}?q=ke+hoach+chuyen+doi+so&page=1&hit=2#hit-2"
    counts = re.findall(r'<span class="hit-count" title="(\d+) kết quả">', html)
    assert counts == [str(len(expected[0])), str(len(expected[1]))]  # each page's hit count by its link

    last = client.get(f"/documents/{doc_id}", params={"q": QUERY, "page": 1, "hit": len(expected[0])}).text
    assert f"Kết quả {len(expected[0])}/{total}" in last
    assert _link(last, "hit-next") == f"/documents/{doc_id}?q=ke+hoach+chuyen+doi+so&page=2&hit=1#hit-1"
    second = client.get(f"/documents/{doc_id}", params={"q": QUERY, "page": 2, "hit": 1}).text
    assert drawn_boxes(second, hocr[1]) == expected[1]
    assert _link(second, "hit-prev") == (f"/documents/{doc_id}?q=ke+hoach+chuyen+doi+so&page=1&hit={len(expected[0])}"
                                         f"#hit-{len(expected[0])}")
    plain = client.get(f"/documents/{doc_id}").text  # no query: no boxes, no hit links
    assert "<rect" not in plain and 'id="hit-nav"' not in plain and "hit-count" not in plain
    odd = client.get(f"/documents/{doc_id}", params={"q": QUERY, "page": 1, "hit": 10**9})
    assert odd.status_code == 200 and f"Kết quả {len(expected[0])}/{total}" in odd.text  # clamped
    assert client.get(f"/documents/{doc_id}", params={"q": QUERY, "hit": "x"}).status_code == 422


def test_missing_or_malformed_hocr_shows_the_page_without_boxes(sample_web: SampleWeb, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(sample_web.root, root)
    client = _login(create_app(Settings(archive=root), WebSettings()), "boss")
    nq, qd, cv = sample_web.ids["nq_01.png"], sample_web.ids["qd_05.jpg"], sample_web.ids["cv_04"]
    _hocr_path(root, nq, 1).unlink()  # missing
    _hocr_path(root, qd, 1).write_bytes(b"\xff\xfe<div class='ocr_page'>\x00 not hOCR")  # not UTF-8
    broken = _hocr_path(root, cv, 1)  # no page size, a word without a box, tags left open
    broken.write_text(re.sub(r"bbox 0 0 \d+ \d+", "bbox 0 0", broken.read_text(encoding="utf-8"), count=1)[:4000],
                      encoding="utf-8")
    for doc_id, query in ((nq, "kinh te bien"), (qd, "quyet dinh"), (cv, "thanh uy")):
        page = client.get(f"/documents/{doc_id}", params={"q": query, "page": 1})
        assert page.status_code == 200, doc_id
        assert "<rect" not in page.text and 'id="page-image"' in page.text
        assert "<mark>" in page.text  # the text beside the image is still marked
        assert 'id="hit-nav"' in page.text


def test_a_corrected_page_text_keeps_the_boxes_of_the_hocr(sample_web: SampleWeb, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(sample_web.root, root)
    client = _login(create_app(Settings(archive=root), WebSettings()), "boss")
    doc_id = sample_web.ids["nq_01.png"]
    hocr = read_hocr(_hocr_path(root, doc_id, 1).read_bytes())
    expected = expected_boxes(hocr, "kinh te bien")
    assert expected
    form = client.get(f"/review/{doc_id}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    saved = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "page_1": "Trang đã được sửa."},
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].endswith("saved=1")
    page = client.get(f"/documents/{doc_id}", params={"q": "kinh te bien"}).text
    assert "Trang đã được sửa." in page and "<mark>" not in page  # the corrected text has none of the words
    assert drawn_boxes(page, hocr) == expected  # the boxes: the words the OCR read on the image


def test_no_route_serves_hocr_and_the_document_page_follows_the_document_rule(sample_web: SampleWeb) -> None:
    app = sample_web.client.app
    declared = declared_routes(app)  # type: ignore[arg-type]  # every route, included routers too
    assert len(declared) > 20 and not [path for path in declared if "hocr" in path.lower()]
    assert declared["/documents/{doc_id}"] is Rule.DOCUMENT
    reader = _login(app, "reader")  # clearance 0: the Mật document with a query is a missing one
    secret = sample_web.ids["bc_03.pdf"]
    hidden = reader.get(f"/documents/{secret}", params={"q": "quy hoach", "page": 1, "hit": 1})
    missing = reader.get("/documents/0000000000000000dead", params={"q": "quy hoach", "page": 1, "hit": 1})
    assert hidden.status_code == missing.status_code == 404 and hidden.content == missing.content


# --- the dev corpus: 20 queries, boxes checked against the stored hOCR --------------------------------------------
@dataclass
class DevArchive:
    root: Path
    pages: dict[str, list[str]]  # document id -> its stored page texts
    client: TestClient


@pytest.fixture(scope="module")
def dev_archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> DevArchive:
    if not (CORPUS / "batch").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the dev corpus is missing: {CORPUS}")
        pytest.skip(f"the dev corpus is not here ({CORPUS})")
    from interfaces.cli import main

    base = tmp_path_factory.mktemp("hits-dev")
    batch = base / "batch"
    batch.mkdir()
    for name in DEV_DOCUMENTS:
        source = CORPUS / "batch" / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, batch / name)
    root, report = base / "archive", base / "report.json"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setenv("SOHOA_SECRET_WITHOUT_APPROVAL", "review")  # the Mật document is digitised, not held
        code = main(["digitise", str(batch), "--archive", str(root), "--report", str(report), "--quiet"])
    assert code == 0
    documents = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert len(documents) == len(DEV_DOCUMENTS) and all(d["id"] for d in documents)
    pages = {}
    for d in documents:
        manifest = json.loads((root / "objects" / "documents" / d["id"] / "document.json").read_text("utf-8"))
        pages[d["id"]] = [p["text"] for p in manifest["pages"]]
    settings = Settings(archive=root)
    add_user(settings, "boss", PASSWORD, "admin", clearance=3)
    return DevArchive(root=root, pages=pages, client=_login(create_app(settings, WebSettings()), "boss"))


def _stable(word: str) -> str:
    return hashlib.sha256(word.encode()).hexdigest()


def pick_queries(pages: dict[str, list[str]]) -> list[str]:
    """20 queries from the stored page texts, folded (typed without diacritics): the 6 most common words, 8 rare
    words (once in the whole set), 2 two-word queries (a common and a rare word) and 4 quoted phrases (two words
    following each other on a line)."""
    texts = [text for doc in pages.values() for text in doc]
    counts = Counter(t for text in texts for t in tokens(text) if t.isalpha())
    common = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) >= 2][:6]
    rare = sorted((w for w, c in counts.items() if c == 1 and len(w) >= 4), key=_stable)[:8]
    pairs = sorted({" ".join(line_tokens[i:i + 2]) for text in texts for line in text.splitlines()
                    for line_tokens in [tokens(line)] for i in range(len(line_tokens) - 1)
                    if all(t.isalpha() and len(t) >= 3 for t in line_tokens[i:i + 2])}, key=_stable)[:4]
    queries = [*common, *rare, f"{common[2]} {rare[-1]}", f"{common[4]} {rare[-2]}", *(f'"{p}"' for p in pairs)]
    assert len(queries) == len(set(queries)) == 20, queries
    return queries


def test_dev_corpus_boxes_cover_exactly_the_matched_words(dev_archive: DevArchive) -> None:
    queries = pick_queries(dev_archive.pages)
    client = dev_archive.client
    hocr = {(doc_id, n): read_hocr(_hocr_path(dev_archive.root, doc_id, n).read_bytes())
            for doc_id, texts in dev_archive.pages.items() for n in range(1, len(texts) + 1)}
    accented, per_query = 0, {}
    for query in queries:
        assert query == fold(query)  # typed without diacritics
        found = 0
        for doc_id, texts in dev_archive.pages.items():
            expected = {n: expected_boxes(hocr[doc_id, n], query) for n in range(1, len(texts) + 1)}
            opened = client.get(f"/documents/{doc_id}", params={"q": query})
            assert opened.status_code == 200
            first = min((n for n, boxes in expected.items() if boxes), default=None)
            if first is not None:  # the page with the first hit opens first
                assert f"Trang {first}/{len(texts)}" in opened.text, (query, doc_id)
            for n in expected:
                html = client.get(f"/documents/{doc_id}", params={"q": query, "page": n}).text
                assert drawn_boxes(html, hocr[doc_id, n]) == expected[n], (query, doc_id, n)
                total = sum(len(b) for b in expected.values())
                assert (f"/{total}</span>" in html) if expected[n] else ("Kết quả 1/" not in html), (query, n)
                found += len(expected[n])
                accented += sum(1 for text, box in hocr[doc_id, n].words
                                if box in expected[n] and fold(text) != text.lower())
        per_query[query] = found
    print("\nboxes per query:", json.dumps(per_query, ensure_ascii=False))
    assert all(per_query.values()), per_query  # every query was picked from the pages: it is found on them
    assert accented >= 20  # many of the boxed words carry diacritics the queries were typed without
