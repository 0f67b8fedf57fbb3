"""Zero leakage of classified documents on every read path, end to end (real OCR, real web app, real CLI).

An archive holds the same one-page resolution three times: open, Mật and Tối mật (approved for photographing).
A user without clearance, and a user cleared for Mật looking for the Tối mật copy, try every path: search hits,
totals, facet counts, snippets (web page, REST API, CLI ``--as``), the document page, its page images, the PDF/A,
the originals, the REST document, the review queue, the CLI ``show`` and ``export``. A document they may not see
must be indistinguishable from one that does not exist (same status, same body)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.cli import main
from flows.web import add_user, create_app
from flows.web.config import WebSettings
from schemas.settings import Settings
from tests.fixtures import generate_sample as gen

pytestmark = pytest.mark.slow
QUERY = "kinh te bien"
PASSWORD = "mat-khau-kiem-thu"
USERS = {"none": 0, "mat": 1, "toimat": 2}
MISSING = "0000000000000000dead"


def _variant(source: str, classification: str | None, seed: int) -> gen.Doc:
    base = next(d for d in gen.DOCS if d.source == "nq_01.png")
    values = tuple(classification if k == "classification" else v for k, v in zip(gen.KEYS, base.values, strict=True))
    return dataclasses.replace(base, source=source, seed=seed, values=values)


@pytest.fixture(scope="module")
def base_archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("leak")
    batch = root / "batch"
    for doc in (_variant("mo.png", None, 11), _variant("mat.png", "Mật", 12), _variant("toimat.png", "Tối mật", 13)):
        gen.save(doc, gen.degrade(doc, gen.render(doc)), batch)
    (batch / "batch.toml").write_text('approval_ref = "9-QĐ/VPTU"\napproved_by = "Trần Thị Hoa"\n', encoding="utf-8")
    report = root / "r.json"
    assert main(["digitise", str(batch), "--archive", str(root / "a"), "--report", str(report), "--quiet"]) == 0
    ids = {d["source"].split(".")[0]: d["id"] for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}
    return root / "a", ids


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
        for name, level in USERS.items():
            add_user(settings, name, PASSWORD, "archivist", clearance=level, api_token=False)
        yield settings, ids


def _login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def _visible(level: int, ids: dict[str, str]) -> set[str]:
    return {ids["mo"]} | ({ids["mat"]} if level >= 1 else set()) | ({ids["toimat"]} if level >= 2 else set())


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
        "/api/documents/{id}", "/review/{id}")}
    for doc_id in hidden:
        for path, absent in missing.items():
            answer = client.get(path.replace("{id}", doc_id))
            assert (answer.status_code, answer.content) == (absent.status_code, absent.content), (user, path)
            assert answer.status_code == 404
    for doc_id in visible:
        assert client.get(f"/documents/{doc_id}").status_code == 200


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
