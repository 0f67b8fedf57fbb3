"""Zero leakage of classified documents on every read path, end to end (real OCR, real web app, real CLI).

An archive holds the same one-page resolution three times: open, Mật and Tối mật (approved for photographing).
A user without clearance, and a user cleared for Mật looking for the Tối mật copy, try every path: search hits,
totals, facet counts, snippets (web page, REST API, CLI ``--as``), the document page, its page images, the PDF/A,
the originals, the REST document, the review queue, the crops of the scan and the doubtful-line correction
of the review form, the step to the next document, the CLI ``show`` and ``export``. A document they may not see
must be indistinguishable from one that does not exist (same status, same body)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import XrefArchive
from tests.fixtures import generate_sample as gen

pytestmark = pytest.mark.slow
QUERY = "kinh te bien"
PASSWORD = "mat-khau-kiem-thu"
USERS = {"none": 0, "mat": 1, "toimat": 2}
MISSING = "0000000000000000dead"


@pytest.fixture(scope="module")
def base_archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Registered and digitised as a batch (``sohoa batch add --when now``): open, Mật and Tối mật copies
    (approved for photographing) and a Tuyệt mật copy, held at intake (no admin approval)."""
    root = tmp_path_factory.mktemp("leak")
    batch = root / "batch"
    copies = (("mo.png", None, 11), ("mat.png", "Mật", 12), ("toimat.png", "Tối mật", 13),
              ("tuyetmat.png", "Tuyệt mật", 14))
    for doc in (gen.classified_copy(*copy) for copy in copies):
        gen.save(doc, gen.degrade(doc, gen.render(doc)), batch)
    (batch / "batch.toml").write_text('approval_ref = "9-QĐ/VPTU"\napproved_by = "Trần Thị Hoa"\n', encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["batch", "add", str(batch), "--when", "now", "--archive", str(root / "a"), "--json"]) == 0
    data = json.loads(out.getvalue())
    ids = {d["source"].split(".")[0]: d["id"] for d in data["documents"]}
    assert {d["source"]: d["status"] for d in data["documents"]}["tuyetmat.png"] == "quarantined"
    BATCH_IDS[root / "a"] = data["id"]
    return root / "a", ids


BATCH_IDS: dict[Path, str] = {}


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def archive(request: pytest.FixtureRequest, base_archive: tuple[Path, dict[str, str]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    """The archive searched through the embedded index, or through Elasticsearch (the osmem stand-in, filled by
    ``sohoa reindex`` from the same stored documents)."""
    root, ids = base_archive
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "elasticsearch":
            from storage import search_es

            osmem = request.getfixturevalue("osmem")
            plain_init = search_es.ElasticsearchIndex.__init__

            def init(self: object, *args: object, **kwargs: object) -> None:
                kwargs.setdefault("node_class", osmem.node_class)  # the stand-in's content-type quirk (test only)
                plain_init(self, *args, **kwargs)  # type: ignore[arg-type]

            patch.setattr(search_es.ElasticsearchIndex, "__init__", init)
            patch.setenv("SOHOA_SEARCH_INDEX", "elasticsearch")
            patch.setenv("SOHOA_ES_URL", osmem.url)
            patch.setenv("SOHOA_ES_INDEX", "sohoa-leakage")
            copy = tmp_path_factory.mktemp("leak-es") / "a"
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns("web.sqlite3*", "audit.*"))
            assert main(["reindex", "--archive", str(copy)]) == 0
            root = copy
        settings = Settings(archive=root)
        _users(settings)
        yield settings, ids


def _login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def _visible(level: int, ids: dict[str, str]) -> set[str]:
    """The catalogued documents a reader of ``level`` may see (the held Tuyệt mật copy is in no catalog)."""
    return {ids["mo"]} | ({ids["mat"]} if level >= 1 else set()) | ({ids["toimat"]} if level >= 2 else set())


def _hidden_names(level: int) -> list[str]:
    """File names of the batch's documents above ``level``."""
    return [name for name, lv in (("mat.png", 1), ("toimat.png", 2), ("tuyetmat.png", 3)) if lv > level]


@pytest.mark.parametrize("user", list(USERS))
def test_web_and_api_show_nothing_above_clearance(archive: tuple[Settings, dict[str, str]], user: str) -> None:
    settings, ids = archive
    level, visible = USERS[user], _visible(USERS[user], ids)
    hidden = set(ids.values()) - visible
    client = _login(create_app(settings, WebSettings()), user)
    page = client.get("/search", params={"q": QUERY}).text
    shown = set(re.findall(r'href="/documents/([A-Za-z0-9_-]+)[?"]', page))
    assert shown == visible and not any(h in page for h in hidden)
    api = client.get("/api/search", params={"q": QUERY, "facets": "true", "limit": 50}).json()
    assert {h["id"] for h in api["hits"]} == visible and api["total"] == len(visible)
    marks = {f["value"]: f["count"] for f in api["facets"].get("classification", [])}
    assert set(marks) == {"Thường", "Mật", "Tối mật"} - {m for m, lv in (("Mật", 1), ("Tối mật", 2)) if lv > level}
    assert sum(marks.values()) == len(visible)
    review = client.get("/review").text
    assert not any(h in review for h in hidden)
    missing = {p: client.get(p.replace("{id}", MISSING)) for p in (
        "/documents/{id}", "/documents/{id}/pages/1/image", "/documents/{id}/pdf", "/documents/{id}/original/1",
        "/api/documents/{id}", "/review/{id}",
        "/documents/{id}?q=kinh+te+bien", "/documents/{id}?q=kinh+te+bien&page=1&hit=1",  # hits on the scan
        "/documents/{id}/pages/1/crop?box=0,0,400,200", "/documents/{id}/pages/1/crop?box=bad")}  # review crops
    hidden |= {ids["tuyetmat"]}
    for doc_id in hidden:
        for path, absent in missing.items():
            answer = client.get(path.replace("{id}", doc_id))
            assert (answer.status_code, answer.content) == (absent.status_code, absent.content), (user, path)
            assert answer.status_code == 404
    _review_beside_the_scan_leaks_nothing(client, hidden, visible)
    for doc_id in visible:
        assert client.get(f"/documents/{doc_id}").status_code == 200
        shown_hits = client.get(f"/documents/{doc_id}", params={"q": QUERY})  # boxes from the hOCR it may see
        assert shown_hits.status_code == 200 and 'class="hit-box' in shown_hits.text


def _review_beside_the_scan_leaks_nothing(client: TestClient, hidden: set[str], visible: set[str]) -> None:
    """Review beside the scan: a line correction of a hidden document and the step to the next document answer as
    for a missing one; the crop of a visible page is an image; the review queue's next document is never hidden."""
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/review").text)
    assert csrf
    line = {"csrf_token": csrf.group(1), "version": "0", "page": "1", "index": "0", "expected": "x", "text": "y"}
    absent = client.post(f"/review/{MISSING}/line", data=line)
    after_missing = client.get(f"/review/{MISSING}/next", follow_redirects=False)
    assert absent.status_code == 404 and after_missing.status_code == 303
    assert not any(h in after_missing.headers["location"] for h in hidden)
    for doc_id in hidden:
        answer = client.post(f"/review/{doc_id}/line", data=line)
        assert (answer.status_code, answer.content) == (absent.status_code, absent.content)
        step = client.get(f"/review/{doc_id}/next", follow_redirects=False)
        assert (step.status_code, step.headers["location"]) == (303, after_missing.headers["location"])
    for doc_id in visible:
        crop = client.get(f"/documents/{doc_id}/pages/1/crop", params={"box": "0,0,400,200"})
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
        form = client.get(f"/review/{doc_id}").text
        assert not any(h in form for h in hidden)


@pytest.mark.parametrize("user", ["none", "mat"])
def test_cli_as_a_user_shows_nothing_above_clearance(
    archive: tuple[Settings, dict[str, str]], user: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings, ids = archive
    visible = _visible(USERS[user], ids)
    hidden = set(ids.values()) - visible
    where = ["--archive", str(settings.archive), "--as", user]
    capsys.readouterr()
    assert main(["search", QUERY, "--json", "--facets", *where]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {h["id"] for h in found["hits"]} == visible and found["total"] == len(visible)
    for doc_id in hidden:
        assert main(["show", doc_id, *where]) == 6
        forbidden = capsys.readouterr().err.replace(doc_id, "ID")
        assert main(["show", MISSING, *where]) == 6
        assert capsys.readouterr().err.replace(MISSING, "ID") == forbidden  # the same message
    table = tmp_path / "bang.csv"
    assert main(["export", "--out", str(table), *where]) == 0
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert len(rows) - 1 == len(visible)  # one row per document the user may see


@pytest.mark.parametrize("user", list(USERS))
def test_batch_pages_and_register_show_nothing_above_clearance(
    base_archive: tuple[Path, dict[str, str]], user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1 (batch page) and 11 (register): file names, ids, statuses, the held Tuyệt mật entry and the
    counts of documents above the reader's clearance appear nowhere: web batch list and page, ``batch show``,
    ``batch list``, ``register`` and ``register --quarantine`` with ``--as``."""
    root, ids = base_archive
    settings = Settings(archive=root)
    _users(settings)
    level = USERS[user]
    batch_id = BATCH_IDS[root]
    hidden_ids = [ids[k] for k, lv in (("mat", 1), ("toimat", 2), ("tuyetmat", 3)) if lv > level]
    shown = 1 + sum(lv <= level for lv in (1, 2, 3))
    client = _login(create_app(settings, WebSettings()), user)
    for path in ("/batches", f"/batches/{batch_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert not any(h in page.text for h in [*hidden_ids, *_hidden_names(level)]), (user, path)
    where = ["--archive", str(root), "--as", user]
    capsys.readouterr()
    assert main(["batch", "show", batch_id, "--json", *where]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["documents"]) == shown and data["progress"]["documents"] == shown
    assert data["summary"]["documents"] == shown
    assert data["summary"]["quarantined"] == (1 if level >= 3 else 0)
    text = json.dumps(data, ensure_ascii=False)
    assert not any(h in text for h in [*hidden_ids, *_hidden_names(level)])
    assert main(["batch", "list", "--json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)["batches"]
    assert [b["summary"]["documents"] for b in listed] == [shown]
    assert main(["register", "--json", *where]) == 0
    register = json.loads(capsys.readouterr().out)["register"]
    assert {e["doc_id"] for e in register} == {ids[k] for k, lv in (("mat", 1), ("toimat", 2)) if lv <= level}
    assert [e["stt"] for e in register] == list(range(1, len(register) + 1))
    assert main(["register", "--quarantine", "--json", *where]) == 0
    held = json.loads(capsys.readouterr().out)["quarantine"]
    assert held == []  # the held copy is Tuyệt mật: no reader below 3 learns of it
    assert main(["batch", "show", batch_id, "--json", "--archive", str(root)]) == 0  # the local operator: all
    assert len(json.loads(capsys.readouterr().out)["documents"]) == 4


def test_staff_read_no_register(base_archive: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = base_archive
    settings = Settings(archive=root)
    _users(settings)
    add_user(settings, "staff3", PASSWORD, "staff", clearance=3)
    capsys.readouterr()
    assert main(["register", "--json", "--archive", str(root), "--as", "staff3"]) == 0
    assert json.loads(capsys.readouterr().out)["register"] == []


def test_reads_and_probes_are_audited(base_archive: tuple[Path, dict[str, str]]) -> None:
    """Finding 5: the review queue, a review form, a batch page, the admin page and a probe of a hidden id each
    leave an audit entry; the probe of a hidden id is recorded exactly like the probe of a missing one."""
    from flows.audit import open_audit

    root, ids = base_archive
    settings = Settings(archive=root)
    _users(settings)
    if _absent(settings, "boss"):
        add_user(settings, "boss", PASSWORD, "admin", clearance=0)
    mat = _login(create_app(settings, WebSettings()), "mat")
    assert mat.get("/review").status_code == 200
    assert mat.get(f"/review/{ids['mat']}").status_code == 200
    assert mat.get(f"/batches/{BATCH_IDS[root]}").status_code == 200
    assert mat.get(f"/documents/{ids['toimat']}").status_code == 404
    assert mat.get(f"/documents/{MISSING}").status_code == 404
    boss = _login(create_app(settings, WebSettings()), "boss")
    assert boss.get("/admin").status_code == 200
    log = open_audit(settings)
    try:
        entries = [(e.actor, e.action, e.target) for e in log.entries()]
    finally:
        log.close()
    assert ("mat", "review.list", "") in entries
    assert ("mat", "review.view", ids["mat"]) in entries
    assert ("mat", "batch.view", BATCH_IDS[root]) in entries
    assert ("mat", "not_found", f"/documents/{ids['toimat']}") in entries
    assert ("mat", "not_found", f"/documents/{MISSING}") in entries
    assert ("boss", "admin.view", "") in entries


def _absent(settings: Settings, name: str) -> bool:
    from flows.accounts import accounts_of

    return accounts_of(settings).find_user(name) is None


def _users(settings: Settings) -> None:
    for name, level in USERS.items():
        if _absent(settings, name):
            add_user(settings, name, PASSWORD, "archivist", clearance=level, api_token=False)


ADMINS = {"admin0": 0, "admin1": 1}


@pytest.mark.parametrize("user", ["none", "mat"])
def test_packages_and_audit_trail_hold_nothing_above_clearance(
    archive: tuple[Settings, dict[str, str]], user: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Findings 2 and 10 through the leakage suite: ``export --package --as`` packs and names only what the user
    may see; an admin's audit trail (web page and ``audit list --as``) names no document above their clearance."""
    settings, ids = archive
    level = USERS[user]
    visible = _visible(level, ids)
    hidden = set(ids.values()) - visible
    where = ["--archive", str(settings.archive), "--as", user]
    capsys.readouterr()
    dest = tmp_path / "goi"
    assert main(["export", "--package", str(dest), *where]) == 0
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert files
    text = "\n".join(p.read_text(encoding="utf-8", errors="ignore") for p in files)
    assert not any(h in text or any(h in str(p) for p in files) for h in hidden)
    assert {i for i in ids.values() if i in text} == visible
    for name, admin_level in ADMINS.items():
        if _absent(settings, name):
            add_user(settings, name, PASSWORD, "admin", clearance=admin_level)
    admin = "admin0" if level == 0 else "admin1"
    page = _login(create_app(settings, WebSettings()), admin).get("/admin/audit")
    assert page.status_code == 200
    capsys.readouterr()
    assert main(["audit", "list", "--json", "--limit", "100000", "--archive", str(settings.archive),
                 "--as", admin]) == 0
    trail = capsys.readouterr().out
    assert ids["mo"] in trail  # the open copy's entries are there...
    for doc_id in hidden:  # ... and nothing about a copy above the admin's clearance
        assert doc_id not in page.text and doc_id not in trail
    assert main(["audit", "list", "--json", "--archive", str(settings.archive), "--as", "none"]) == 4  # no admin


def test_a_document_raised_in_the_web_is_hidden_on_every_path(
    archive: tuple[Settings, dict[str, str]], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding 9 through the leakage suite: an archivist raises the open copy to Mật in the review form; a
    reader without clearance then meets it nowhere — web, API, CLI ``show``/``search``/``export`` with ``--as``
    — on the embedded index and on Elasticsearch."""
    settings, ids = archive
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    if settings.search_index == "elasticsearch":  # a fresh index for the copy (the shared one stays as it is)
        monkeypatch.setenv("SOHOA_ES_INDEX", "sohoa-leakage-raised")
        assert main(["reindex", "--archive", str(root)]) == 0
    copy = Settings(archive=root)
    doc_id = ids["mo"]
    mat = _login(create_app(copy, WebSettings()), "mat")
    form = mat.get(f"/review/{doc_id}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert csrf and version
    saved = mat.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                "md_classification": "Mật"}, follow_redirects=False)
    assert saved.status_code == 303
    none = _login(create_app(copy, WebSettings()), "none")
    assert doc_id not in none.get("/search", params={"q": QUERY}).text
    assert none.get("/api/search", params={"q": QUERY}).json()["total"] == 0
    assert none.get(f"/documents/{doc_id}").status_code == 404
    where = ["--archive", str(root), "--as", "none"]
    capsys.readouterr()
    assert main(["show", doc_id, *where]) == 6
    assert main(["search", QUERY, "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0
    table = tmp_path / "bang.csv"
    assert main(["export", "--out", str(table), *where]) == 0
    assert doc_id not in table.read_text(encoding="utf-8-sig")
    assert main(["show", doc_id, "--json", "--archive", str(root), "--as", "mat"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["classification"] == "Mật"


def test_outside_review_findings_stay_closed(
    base_archive: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outside review of the boundary (second round): a raised document leaves the register of readers below
    its new level; a status flag that only hidden reasons explain reads as done; restricted readers get no
    relevance scores (term statistics of hidden documents); every read path is audited; ``--as`` must name an
    account on every command."""
    from flows.audit import open_audit

    root = tmp_path / "a"
    shutil.copytree(base_archive[0], root, ignore=shutil.ignore_patterns("work"))
    ids = base_archive[1]
    settings = Settings(archive=root)
    _users(settings)
    where = ["--archive", str(root), "--as", "mat"]
    capsys.readouterr()
    assert main(["register", "--json", *where]) == 0
    assert ids["mat"] in {e["doc_id"] for e in json.loads(capsys.readouterr().out)["register"]}
    toimat = _login(create_app(settings, WebSettings()), "toimat")
    form = toimat.get(f"/review/{ids['mat']}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert csrf and version
    assert toimat.post(f"/review/{ids['mat']}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                      "md_classification": "Tối mật"},
                       follow_redirects=False).status_code == 303
    assert main(["register", "--json", *where]) == 0
    assert ids["mat"] not in capsys.readouterr().out
    # which copy is flagged a possible duplicate of which depends on the order the run catalogued them; the
    # invariant holds either way: a reader never meets a review flag whose only reasons are withheld from them
    none = ["--archive", str(root), "--as", "none"]
    assert main(["show", ids["mo"], "--json", *none]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "done" or shown["review_reasons"]
    client = _login(create_app(settings, WebSettings()), "none")
    api = client.get(f"/api/documents/{ids['mo']}").json()
    assert api["status"] == "done" or api["review_reasons"]
    assert (ids["mo"] in client.get("/review").text) == (api["status"] == "needs_review")
    hits = client.get("/api/search", params={"q": QUERY}).json()["hits"]
    assert hits and all(h["score"] == 0.0 for h in hits)
    batch_id = BATCH_IDS[base_archive[0]]
    assert main(["batch", "show", batch_id, "--json", *none]) == 0
    assert main(["batch", "list", "--json", *none]) == 0
    assert main(["batch", "retry", batch_id, "--archive", str(root), "--as", "ghost-user"]) == 4
    assert main(["batch", "cancel", batch_id, "--archive", str(root), "--as", "ghost-user"]) == 4
    log = open_audit(settings)
    try:
        done = {(e.actor, e.action) for e in log.entries()}
    finally:
        log.close()
    assert {("none", "batch.view"), ("none", "batch.list")} <= done


def test_register_export_neutralises_formulas(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from flows.intake import write_register

    entry = {"stt": 1, "at": "2026-01-01", "doc_id": "x", "source": '=HYPERLINK("http://x","y").png',
             "code": "+1-TU", "organ": "@organ", "classification": "Mật", "pages": 1}
    write_register([entry], tmp_path / "so.csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "so.csv").read_text(encoding="utf-8-sig"))))
    assert not any(cell.startswith(("=", "+", "@")) for cell in rows[1])
    write_register([entry], tmp_path / "so.xlsx")
    sheet = load_workbook(tmp_path / "so.xlsx").active
    assert sheet is not None
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def xref_apps(request: pytest.FixtureRequest, xref_archive: XrefArchive,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Cross-references (issue 22, part 3): the web app over the citing batch, and over the same batch without
    the Mật Kế hoạch 91-KH/TU (a number that does not exist), on the embedded index or on Elasticsearch."""
    root = tmp_path_factory.mktemp("leak-xref")
    apps: dict[str, object] = {}
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "elasticsearch":
            from storage import search_es

            osmem = request.getfixturevalue("osmem")
            plain_init = search_es.ElasticsearchIndex.__init__

            def init(self: object, *args: object, **kwargs: object) -> None:
                kwargs.setdefault("node_class", osmem.node_class)  # the stand-in's content-type quirk (test only)
                plain_init(self, *args, **kwargs)  # type: ignore[arg-type]

            patch.setattr(search_es.ElasticsearchIndex, "__init__", init)
            patch.setenv("SOHOA_SEARCH_INDEX", "elasticsearch")
            patch.setenv("SOHOA_ES_URL", osmem.url)
        else:  # never the Elasticsearch setting another fixture of this module may have left in the environment
            patch.setenv("SOHOA_SEARCH_INDEX", "sqlite")
        for name, source in (("with", xref_archive.archive), ("without", xref_archive.without)):
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("web.sqlite3*"))
            if request.param == "elasticsearch":  # each archive its own index, filled from its stored documents
                patch.setenv("SOHOA_ES_INDEX", f"sohoa-leakage-xref-{name}")
                assert main(["reindex", "--archive", str(root / name)]) == 0
            settings = Settings(archive=root / name)
            _users(settings)
            apps[name] = create_app(settings, WebSettings())
        yield apps


def _masked(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', html)


@pytest.mark.parametrize("user", list(USERS))
def test_cross_references_show_nothing_above_clearance(xref_apps: dict[str, object], xref_archive: XrefArchive,
                                                       user: str) -> None:
    """A citation of a document above the reader's clearance is plain text and a citer above it is not listed:
    the citing and the cited pages are byte for byte those of an archive where the classified document does
    not exist; a reader cleared for it gets the link and the listing."""
    ids, level = xref_archive.ids, USERS[user]
    seen = _login(xref_apps["with"], user)
    for doc, other in (("bc23", "nq15"), ("nq15", "bc23")):
        page = seen.get(f"/documents/{ids[doc]}")
        assert page.status_code == 200
        assert f'href="/documents/{ids[other]}"' in page.text  # the open citation's link, the open citer listed
        if level == 0:
            absent = _login(xref_apps["without"], user).get(f"/documents/{ids[doc]}").text
            assert _masked(page.text) == _masked(absent), doc
            assert ids["kh91"] not in page.text
        else:
            assert f'href="/documents/{ids["kh91"]}"' in page.text, doc  # the link (bc23), the listing (nq15)
    missing = seen.get(f"/documents/{MISSING}")
    hidden = seen.get(f"/documents/{ids['kh91']}")
    if level == 0:
        assert (hidden.status_code, hidden.content) == (missing.status_code, missing.content)
LEAK_FILE, SECRET_FILE, LEAK_FONDS = "HS.2026.01", "AN.2026.02", "Phông kiểm thử"


@pytest.fixture(scope="module")
def filed_archive(base_archive: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Settings, dict[str, str]]:
    """The leakage archive filed (issue 22) by an archivist cleared for all: hồ sơ LEAK_FILE (a record, phông
    LEAK_FONDS) holds the open and Mật copies; SECRET_FILE (no record, no phông) holds the Tối mật copy only."""
    from flows.accounts import accounts_of
    from flows.audit import open_audit
    from flows.review import Reviewer, apply_changes
    from flows.wiring import build_object_store, open_accounts_db

    root = tmp_path_factory.mktemp("leak-files") / "a"
    shutil.copytree(base_archive[0], root, ignore=shutil.ignore_patterns("work"))
    settings, ids = Settings(archive=root), base_archive[1]
    _users(settings)
    add_user(settings, "filer3", PASSWORD, "archivist", clearance=3)
    filer = _login(create_app(settings, WebSettings()), "filer3")
    token = re.search(r'name="csrf_token" value="([^"]+)"', filer.get("/ho-so-moi").text)
    assert token
    assert filer.post("/ho-so-moi", data={"csrf_token": token.group(1), "file_code": LEAK_FILE,
                                          "title": "Hồ sơ kiểm thử", "fonds": LEAK_FONDS},
                      follow_redirects=False).status_code == 303
    for name in ("mo", "mat"):
        assert filer.post(f"/ho-so/{LEAK_FILE}/van-ban", data={"csrf_token": token.group(1), "doc_id": ids[name]},
                          follow_redirects=False).status_code == 303
    user = accounts_of(settings).find_user("filer3")
    assert user is not None
    log = open_audit(settings)
    try:
        apply_changes(Reviewer(settings=settings, store=build_object_store(settings), db=open_accounts_db(settings),
                               audit=log, user=user), ids["toimat"], {"file_code": SECRET_FILE, "sequence": 1})
    finally:
        log.close()
    return settings, ids


def _same(one: object, two: object) -> bool:
    return (one.status_code, one.content) == (two.status_code, two.content)  # type: ignore[attr-defined]


@pytest.mark.parametrize("user", list(USERS))
def test_files_pages_and_muc_luc_show_nothing_above_clearance(
    filed_archive: tuple[Settings, dict[str, str]], user: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hồ sơ and phông (issue 22): phông list, phông, hồ sơ, breadcrumb, mục lục (web and ``export --muc-luc --as``)
    list, count and number only the visible copies; a hồ sơ known only from a hidden copy is the same 404 as an
    unknown one; an archivist cannot file or take out a copy above their clearance (the same 404 as a missing id)."""
    from openpyxl import load_workbook

    from flows.files import NO_FONDS

    settings, ids = filed_archive
    level = USERS[user]
    visible, hidden = _visible(level, ids), set(ids.values()) - _visible(level, ids)
    in_file = visible - {ids["toimat"]}
    client = _login(create_app(settings, WebSettings()), user)
    pages = {path: client.get(path) for path in ("/phong", f"/phong/{LEAK_FONDS}", f"/ho-so/{LEAK_FILE}",
                                                 f"/documents/{ids['mo']}")}
    for path, page in pages.items():
        assert page.status_code == 200, (user, path)
        assert not any(h in page.text for h in hidden), (user, path)
    assert re.findall(r'class="doc-count">(\d+)<', pages[f"/phong/{LEAK_FONDS}"].text) == [str(len(in_file))]
    listed = re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', pages[f"/ho-so/{LEAK_FILE}"].text)
    assert set(listed) == in_file and len(listed) == len(in_file)
    assert f"{len(in_file)} văn bản, {len(in_file)} trang" in pages[f"/ho-so/{LEAK_FILE}"].text
    assert re.findall(r'data-label="STT">(\d+)<', pages[f"/ho-so/{LEAK_FILE}"].text) == [
        str(n) for n in range(1, len(in_file) + 1)]
    secret, absent = client.get(f"/ho-so/{SECRET_FILE}"), client.get("/ho-so/AN.2026.99")
    unnamed, nowhere = client.get(f"/phong/{NO_FONDS}"), client.get("/phong/Kh%C3%B4ng%20c%C3%B3")
    if level < 2:  # a hồ sơ (and a phông) known only from a hidden copy does not exist
        assert secret.status_code == 404 and _same(secret, absent) and _same(unnamed, nowhere)
        assert _same(client.get(f"/ho-so/{SECRET_FILE}/muc-luc.xlsx"), client.get("/ho-so/AN.2026.99/muc-luc.xlsx"))
        assert SECRET_FILE not in pages["/phong"].text and "Chưa xác định phông" not in pages["/phong"].text
    else:
        assert secret.status_code == 200 and ids["toimat"] in secret.text and SECRET_FILE in unnamed.text
    book = load_workbook(io.BytesIO(client.get(f"/ho-so/{LEAK_FILE}/muc-luc.xlsx").content))
    rows = [[c.value for c in r] for r in book["Mục lục văn bản"].iter_rows(min_row=2)]
    assert [r[0] for r in rows] == list(range(1, len(in_file) + 1))
    assert [c.value for c in book["Mục lục hồ sơ"][2]][6] == f"{len(in_file)} trang / {len(in_file)} văn bản"
    marks = {str(r[6]) for r in rows}
    assert not any(m in " ".join(marks) for m, lv in (("Tối mật", 2), ("Mật", 1)) if lv > level)
    out = tmp_path / "muc-luc.xlsx"
    where = ["--archive", str(settings.archive), "--as", user]
    assert main(["export", "--muc-luc", LEAK_FILE, "--out", str(out), *where]) == 0
    cli_rows = [[c.value for c in r] for r in load_workbook(out)["Mục lục văn bản"].iter_rows(min_row=2)]
    assert cli_rows == rows
    capsys.readouterr()
    assert main(["export", "--muc-luc", "AN.2026.99", "--out", str(out), *where]) == 6
    missing_message = capsys.readouterr().err
    if level < 2:  # the hidden-only hồ sơ: the same exit and message as an unknown code
        assert main(["export", "--muc-luc", SECRET_FILE, "--out", str(out), *where]) == 6
        assert capsys.readouterr().err == missing_message
    for doc_id in hidden:  # filing a hidden copy: exactly a missing id
        token = re.search(r'name="csrf_token" value="([^"]+)"', pages[f"/ho-so/{LEAK_FILE}"].text)
        assert token
        into = [client.post(f"/ho-so/{LEAK_FILE}/van-ban", data={"csrf_token": token.group(1), "doc_id": d})
                for d in (doc_id, MISSING)]
        assert into[0].status_code == 404 and _same(*into)
        out_of = [client.post(f"/ho-so/{LEAK_FILE}/van-ban/{d}/bo", data={"csrf_token": token.group(1)})
                  for d in (doc_id, MISSING)]
        assert out_of[0].status_code == 404 and _same(*out_of)


@pytest.mark.parametrize("user", list(USERS))
def test_status_and_dashboard_count_nothing_above_clearance(
    base_archive: tuple[Path, dict[str, str]], user: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``sohoa status --as`` and ``/dashboard``: every figure (documents, pages per night, review backlog and its
    reasons, held documents, run rates, the last fixity audit and backup) counts only the documents the reader
    may see — the same figures as a reader of exactly those documents would get — and is below a clearance-2
    reader's on the same archive; no id or file name above the reader's clearance appears."""
    for name in [k for k in os.environ if k.startswith(("SOHOA_SEARCH", "SOHOA_ES_"))]:
        monkeypatch.delenv(name)  # the archive's own embedded index, whatever a module fixture left in the environment
    root = tmp_path / "a"
    shutil.copytree(base_archive[0], root, ignore=shutil.ignore_patterns("work"))
    ids = base_archive[1]
    settings = Settings(archive=root)
    _users(settings)
    assert main(["verify", "--archive", str(root)]) == 0
    assert main(["backup", "--archive", str(root), "--to", str(tmp_path / "sao-luu")]) == 0
    level, visible = USERS[user], _visible(USERS[user], ids)

    def status(*who: str) -> dict[str, Any]:
        capsys.readouterr()
        assert main(["status", "--json", "--archive", str(root), *who]) == 0
        return dict(json.loads(capsys.readouterr().out))

    mine, cleared2, operator = status("--as", user), status("--as", "toimat"), status()
    text = json.dumps(mine, ensure_ascii=False)
    assert not any(h in text for h in [*(set(ids.values()) - visible), *_hidden_names(level)])
    assert mine["documents"] == len(visible) and cleared2["documents"] == 3 and operator["documents"] == 3
    assert mine["pages_last_nights"] == len(visible)  # one page each, all digitised tonight
    assert mine["held"] == 0 and operator["held"] == 1  # the held Tuyệt mật copy: the operator only
    assert mine["runs"] == [] and len(operator["runs"]) == 1  # the run spent time on the held copy
    # the review backlog is what `show --as` tells the same reader about each document they may see
    backlog: dict[str, int] = {}
    flagged = 0
    for doc_id in visible:
        capsys.readouterr()
        assert main(["show", doc_id, "--json", "--archive", str(root), "--as", user]) == 0
        shown = json.loads(capsys.readouterr().out)
        if shown["status"] == "needs_review":
            flagged += 1
            for code in {r["code"] for r in shown["review_reason_codes"]}:
                backlog[code] = backlog.get(code, 0) + 1
    assert mine["review_backlog"] == flagged
    assert {r["code"]: r["documents"] for r in mine["review_reasons"]} == backlog
    fixity, backup = mine["fixity"], mine["backup"]
    assert isinstance(fixity, dict) and isinstance(backup, dict)
    assert fixity["documents_checked"] == len(visible) and fixity["objects_checked"] is None
    assert backup["problems"] == 0 and backup["objects_copied"] is None
    for key in ("documents", "pages_last_nights", "review_backlog"):
        assert mine[key] <= cleared2[key]
    page = _login(create_app(settings, WebSettings()), user).get("/dashboard")
    assert page.status_code == 200
    assert not any(h in page.text for h in [*(set(ids.values()) - visible), *_hidden_names(level)])
    for fid, key in (("fig-documents", "documents"), ("fig-pages", "pages_last_nights"),
                     ("fig-review", "review_backlog"), ("fig-held", "held")):
        assert re.search(rf'id="{fid}"><strong>{mine[key]}</strong>', page.text), (user, fid)
    assert sum(int(p) for p in re.findall(r'data-pages="(\d+)"', page.text)) == len(visible)
    assert BATCH_IDS[base_archive[0]] not in page.text  # no run rate: the batch holds a hidden copy
def _grant_setup(base_archive: tuple[Path, dict[str, str]], tmp_path: Path) -> tuple[object, list[object]]:
    """A copy of the archive (its own web.sqlite3 and audit trail) and its web app with an injected clock."""
    from datetime import UTC, datetime

    root = tmp_path / "a"
    shutil.copytree(base_archive[0], root, ignore=shutil.ignore_patterns("work"))
    settings = Settings(archive=root)
    _users(settings)
    app = create_app(settings, WebSettings())
    clock: list[object] = [datetime(2026, 3, 2, 8, 0, tzinfo=UTC)]
    app.state.web.clock = lambda: clock[0]
    return app, clock


def _ask(client: TestClient, reference: str, doc_ref: str) -> object:
    form = client.get("/requests/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    return client.post("/requests", data={"csrf_token": token.group(1), "reference": reference, "doc_ref": doc_ref,
                                          "purpose": "Nghiên cứu"}, follow_redirects=False)


def _responses(client: TestClient, doc_ids: list[str]) -> dict[str, tuple[int, bytes]]:
    """Every read path of ``doc_ids`` and the searches, as the client gets them (status and body)."""
    paths = [p.replace("{id}", d) for d in doc_ids for p in (
        "/documents/{id}", "/documents/{id}/pages/1/image", "/documents/{id}/pdf", "/documents/{id}/original/1",
        "/api/documents/{id}", "/review/{id}", "/documents/{id}?q=kinh+te+bien")]
    paths += [f"/search?q={QUERY}", f"/api/search?q={QUERY}&facets=true&limit=50",
              f"/search?q={QUERY}&classification=M%E1%BA%ADt"]
    return {p: (a.status_code, a.content) for p, a in ((p, client.get(p)) for p in paths)}


def test_access_request_changes_nothing_before_approval_and_after_expiry(
    base_archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A reader without clearance asks for the Mật copy: before an approver decides, and after the grant expires,
    every path answers exactly as before the request (document page, page image, PDF, originals, REST, review form,
    search page and API with facets); while the grant runs only the Mật copy's page, image and PDF open — the
    searches, the Tối mật copy and a missing id answer as before."""
    from datetime import timedelta

    ids = base_archive[1]
    app, clock = _grant_setup(base_archive, tmp_path)
    none, approver = _login(app, "none"), _login(app, "toimat")
    probed = [ids["mat"], ids["toimat"], ids["tuyetmat"], MISSING]
    before = _responses(none, probed)
    assert _ask(none, "27-NQ/TU ngày 14/3/2023", ids["mat"]).status_code == 303  # type: ignore[attr-defined]
    assert _responses(none, probed) == before  # pending: nothing changed
    listing = approver.get("/requests/approve").text
    request_id = re.findall(r'id="request-(\d+)"', listing)[-1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', listing)
    assert token
    assert approver.post(f"/requests/{request_id}/grant", data={"csrf_token": token.group(1), "doc_id": ids["mat"],
                                                                "days": 3}, follow_redirects=False).status_code == 303
    during = _responses(none, probed)
    opened = {p for p in during if during[p] != before[p]}
    mat = ids["mat"]
    assert opened == {f"/documents/{mat}", f"/documents/{mat}/pages/1/image", f"/documents/{mat}/pdf",
                      f"/documents/{mat}?q=kinh+te+bien"}
    assert all(during[p][0] == 200 for p in opened)
    clock[0] = clock[0] + timedelta(days=3)  # type: ignore[operator]
    assert _responses(none, probed) == before  # expired: as before the request


def test_access_request_confirmation_is_identical_for_any_reference(
    base_archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The answer to a request for an existing classified document (its số/ký hiệu and id) and to one for a
    document that does not exist is byte-identical (the redirect and the confirmation page)."""
    ids = base_archive[1]
    app, _ = _grant_setup(base_archive, tmp_path)
    none = _login(app, "none")
    answers = []
    for reference, doc_ref in (("27-NQ/TU ngày 14/3/2023", ids["toimat"]), ("99-NQ/XYZ ngày 1/1/1999", MISSING),
                               ("27-NQ/TU", ids["tuyetmat"]), ("không có", "")):
        sent = _ask(none, reference, doc_ref)
        page = none.get(sent.headers["location"])  # type: ignore[attr-defined]
        answers.append((sent.status_code, sent.headers["location"], sent.content,  # type: ignore[attr-defined]
                        page.status_code, page.content))
    assert answers[0][3] == 200 and b'id="request-sent"' in answers[0][4]
    assert all(a == answers[0] for a in answers)
