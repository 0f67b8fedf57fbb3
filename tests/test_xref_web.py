"""Cross-references on the document page (issue 22, part 3), through FastAPI's TestClient over the cross-reference
batch digitised for real (``tests/fixtures/generate_xref.py``, fixture ``xref_archive``).

A citation of an open document links to it; one naming two visible documents links to a search for the number;
one naming a classified document is plain text for a reader below its level, in the very bytes of the page of
an archive where that document does not exist; "Được trích dẫn bởi" lists only the citers the reader may see."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import XrefArchive
from tests.fixtures.generate_xref import HIDDEN_CITE, MISSING_CITE

PASSWORD = "mat-khau-trich-dan"
USERS = {"doc0": 0, "doc1": 1, "doc2": 2}


def copy_with_users(source: Path, dest: Path) -> Settings:
    shutil.copytree(source, dest)
    settings = Settings(archive=dest)
    for name, level in USERS.items():
        add_user(settings, name, PASSWORD, "staff", clearance=level)
    return settings


def login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)},
                         follow_redirects=False)
    assert answer.status_code == 303
    return client


def masked(html: str) -> str:
    """A page without its per-session CSRF token (the one part that differs between two logins)."""
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', html)


def page_text(html: str) -> str:
    match = re.search(r'<pre class="page-text" id="page-text">(.*?)</pre>', html, re.S)
    assert match, html
    return match.group(1)


def citation_links(html: str) -> dict[str, str]:
    """The linked citations of the page text: their text -> href."""
    return {re.sub(r"\s+", " ", text): href for href, text in
            re.findall(r'<a class="citation" data-cite="\w+" href="([^"]+)">(.*?)</a>', page_text(html), re.S)}


def cited_by(html: str) -> list[str]:
    section = re.search(r'<section class="cited-by" id="cited-by">(.*?)</section>', html, re.S)
    assert section, "no cited-by section"
    return re.findall(r'<li><a href="/documents/([A-Za-z0-9_-]+)"', section.group(1))


@pytest.fixture(scope="module")
def apps(xref_archive: XrefArchive, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The web app over the archive, and over the archive without the classified Kế hoạch 91-KH/TU."""
    root = tmp_path_factory.mktemp("xref-web")
    return {"with": create_app(copy_with_users(xref_archive.archive, root / "with"), WebSettings()),
            "without": create_app(copy_with_users(xref_archive.without, root / "without"), WebSettings())}


def test_citation_of_an_open_document_links_to_it(apps: dict[str, object], xref_archive: XrefArchive) -> None:
    ids = xref_archive.ids
    client = login(apps["with"], "doc0")
    html = client.get(f"/documents/{ids['bc23']}").text
    links = citation_links(html)
    assert links["Nghị quyết số 15-NQ/TU ngày 12/3/2021"] == f"/documents/{ids['nq15']}"
    # the same number without a date: two visible Nghị quyết 15-NQ/TU (2019 and 2021) -> a search for it
    assert links["Nghị quyết số 15-NQ/TU"] == "/search?q=15-NQ%2FTU"
    assert len(links) == 2  # 91-KH/TU (Mật) and 92-KH/TU (no such document) are plain text
    target = client.get(links["Nghị quyết số 15-NQ/TU ngày 12/3/2021"])
    assert target.status_code == 200 and "cải cách hành chính giai đoạn 2021 - 2025" in target.text
    found = client.get("/search", params={"q": "15-NQ/TU"}).text
    assert f"/documents/{ids['nq15']}" in found and f"/documents/{ids['nq15cu']}" in found
    # the search's words are still marked inside a linked citation
    marked = citation_links(client.get(f"/documents/{ids['bc23']}", params={"q": "nghi quyet"}).text)
    assert "<mark>Nghị</mark> <mark>quyết</mark> số 15-NQ/TU ngày 12/3/2021" in marked


def test_classified_citation_reads_as_a_missing_number(apps: dict[str, object], xref_archive: XrefArchive) -> None:
    """Below Mật, the citation of the Mật Kế hoạch is the same plain text as the citation of a number that does
    not exist: the page is byte for byte the page of an archive without that document."""
    ids = xref_archive.ids
    present = masked(login(apps["with"], "doc0").get(f"/documents/{ids['bc23']}").text)
    absent = masked(login(apps["without"], "doc0").get(f"/documents/{ids['bc23']}").text)
    assert present == absent
    text = page_text(present)
    hidden, missing = (re.search(re.escape(c).replace(r"\ ", r"\s+") + r"[^\n]*", text) for c in
                       (HIDDEN_CITE, MISSING_CITE))
    assert hidden and missing
    assert hidden.group(0).replace("91", "92") == missing.group(0)  # rendered alike, character for character
    assert ids["kh91"] not in present
    for name in ("doc1", "doc2"):  # cleared for Mật: the link
        links = citation_links(login(apps["with"], name).get(f"/documents/{ids['bc23']}").text)
        assert links["Kế hoạch số 91-KH/TU ngày 20/5/2022"] == f"/documents/{ids['kh91']}"
        assert not any("92-KH/TU" in text for text in links)
        gone = citation_links(login(apps["without"], name).get(f"/documents/{ids['bc23']}").text)
        assert not any("91-KH/TU" in text for text in gone)


def test_cited_by_lists_only_visible_citers(apps: dict[str, object], xref_archive: XrefArchive) -> None:
    ids = xref_archive.ids
    none = login(apps["with"], "doc0")
    assert cited_by(none.get(f"/documents/{ids['nq15']}").text) == [ids["bc23"]]
    for name in ("doc1", "doc2"):
        assert sorted(cited_by(login(apps["with"], name).get(f"/documents/{ids['nq15']}").text)) == sorted(
            [ids["bc23"], ids["kh91"]])
    # the 2019 Nghị quyết 15-NQ/TU: cited only by the undated citation (the Mật one names 2021)
    assert cited_by(login(apps["with"], "doc2").get(f"/documents/{ids['nq15cu']}").text) == [ids["bc23"]]
    # nobody cites the Báo cáo: the section says so
    page = none.get(f"/documents/{ids['bc23']}").text
    assert cited_by(page) == [] and "Chưa có văn bản nào trong kho trích dẫn văn bản này." in page
    # below Mật, the cited document's page is the page of an archive where the Mật citer does not exist
    present = masked(none.get(f"/documents/{ids['nq15']}").text)
    assert present == masked(login(apps["without"], "doc0").get(f"/documents/{ids['nq15']}").text)
    assert ids["kh91"] not in present and "91-KH/TU" not in present
    assert none.get(f"/documents/{ids['kh91']}").status_code == 404
