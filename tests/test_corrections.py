"""Corrections are one truth (``flows.corrections``): an archivist's correction in the web review form is a
versioned record in the object store, and every reader applies it — ``sohoa show`` (with and without ``--as``),
search, ``export --package``, ``backup`` (carried), ``reindex`` (re-applied from the store), ``verify`` (clean).

Real components: the sample batch digitised through the CLI (real OCR), the real web app through FastAPI's
TestClient, the real CLI on copies of the archive."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, printed at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows import correction_index, correction_legacy, corrections
from flows.corrections import VersionConflict, edits_of, record
from flows.wiring import build_object_store
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from storage.layout import correction_key, corrections_prefix
from tests.conftest import DigitisedArchive

PASSWORD = "mat-khau-kiem-thu"
EAD = "{http://ead3.archivists.org/schema/}"


@dataclass
class Raised:
    root: Path  # the archive (a copy of the digitised sample) after the correction
    doc_id: str  # nq_01.png: digitised open (no secrecy mark), raised to "Mật" in the review form
    machine: bytes  # its stored manifest before the correction


def _ids(digitised: DigitisedArchive) -> dict[str, str]:
    report = digitised.report["documents"]
    assert isinstance(report, list)
    return {str(d["source"]): str(d["id"]) for d in report if d["id"]}


def _copy(digitised: DigitisedArchive, dest: Path) -> Path:
    shutil.copytree(digitised.archive, dest, ignore=shutil.ignore_patterns("work"))
    return dest


def _users(root: Path) -> None:
    settings = Settings(archive=root)
    add_user(settings, "staff0", PASSWORD, "staff")  # clearance 0: unclassified documents only
    add_user(settings, "arch", PASSWORD, "archivist", clearance=1)


def _login(client: TestClient, username: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": token.group(1), "next": "/search"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    form = client.get("/search")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    return csrf.group(1)


def _raise_in_review_form(root: Path, doc_id: str, classification: str = "Mật") -> None:
    with TestClient(create_app(Settings(archive=root), WebSettings())) as client:
        _login(client, "arch")
        form = client.get(f"/review/{doc_id}")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        version = re.search(r'name="version" value="(\d+)"', form.text)
        assert csrf and version
        saved = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                       "md_classification": classification},
                            follow_redirects=False)
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == f"/review/{doc_id}?saved=1"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def raised(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> Raised:
    root = _copy(digitised, tmp_path_factory.mktemp("corr") / "archive")
    _users(root)
    doc_id = _ids(digitised)["nq_01.png"]
    machine = (root / "objects" / "documents" / doc_id / "document.json").read_bytes()
    assert json.loads(machine)["metadata"]["classification"] is None  # digitised open
    _raise_in_review_form(root, doc_id)
    return Raised(root=root, doc_id=doc_id, machine=machine)


def test_show_applies_the_correction(raised: Raised, capsys: pytest.CaptureFixture[str]) -> None:
    archive = str(raised.root)
    # a reader without clearance: "not found", exactly like a missing document, and nothing printed
    code, out = _run(capsys, "show", raised.doc_id, "--archive", archive, "--as", "staff0", "--json")
    assert (code, out) == (6, "")
    code, out = _run(capsys, "show", raised.doc_id, "--archive", archive, "--as", "staff0")
    assert (code, out) == (6, "")
    missing, _ = _run(capsys, "show", "0000000000000000dead", "--archive", archive, "--as", "staff0")
    assert missing == 6
    # the local operator sees the corrected classification, and who corrected it, before → after
    code, out = _run(capsys, "show", raised.doc_id, "--archive", archive, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["metadata"]["classification"] == "Mật"
    assert [(c["field"], c["before"], c["after"], c["username"], c["version"]) for c in shown["corrections"]] == [
        ("metadata.classification", None, "Mật", "arch", 1)]
    code, out = _run(capsys, "show", raised.doc_id, "--archive", archive)
    assert code == 0 and "Độ mật: Mật" in out
    # the machine reading stays in the stored manifest, as provenance
    assert (raised.root / "objects" / "documents" / raised.doc_id / "document.json").read_bytes() == raised.machine
    # the correction is an object of the store
    stored = json.loads((raised.root / "objects" / correction_key(raised.doc_id, 1)).read_text(encoding="utf-8"))
    assert stored["changes"] == [{"field": "metadata.classification", "before": None, "after": "Mật"}]


def test_backup_carries_the_correction_and_verify_stays_clean(
    raised: Raised, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = str(raised.root)
    assert main(["verify", "--archive", archive]) == 0  # the correction is not an unexpected object
    backup = tmp_path / "backup"
    assert main(["backup", "--archive", archive, "--to", str(backup)]) == 0
    key = correction_key(raised.doc_id, 1)
    assert (backup / "objects" / key).read_bytes() == (raised.root / "objects" / key).read_bytes()
    assert main(["backup", "--archive", archive, "--to", str(backup)]) == 0  # nothing left to copy
    assert main(["verify", "--store", str(backup), "--archive", archive]) == 0
    # an archive rebuilt from the backup alone knows the document as corrected
    restored = tmp_path / "restored"
    assert main(["reindex", "--archive", str(restored), "--store", str(backup)]) == 0
    code, out = _run(capsys, "search", "", "--archive", str(restored), "--classification", "Mật", "--json")
    assert code == 0
    assert raised.doc_id in [h["id"] for h in json.loads(out)["hits"]]


def test_reindex_reapplies_corrections_from_the_store(
    raised: Raised, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(raised.root, root, ignore=shutil.ignore_patterns("work", "catalog.sqlite*"))
    (root / "web.sqlite3").unlink()  # accounts and the old corrections table are not where corrections live
    for suffix in ("-wal", "-shm"):
        (root / f"web.sqlite3{suffix}").unlink(missing_ok=True)
    _users(root)
    assert main(["reindex", "--archive", str(root)]) == 0
    code, out = _run(capsys, "search", "nghi quyet kinh te bien", "--archive", str(root), "--json")
    assert code == 0
    hit = next(h for h in json.loads(out)["hits"] if h["id"] == raised.doc_id)
    assert hit["metadata"]["classification"] == "Mật"  # the index holds the corrected document
    code, out = _run(capsys, "search", "nghi quyet kinh te bien", "--archive", str(root), "--as", "staff0", "--json")
    assert code == 0 and raised.doc_id not in [h["id"] for h in json.loads(out)["hits"]]
    assert _run(capsys, "show", raised.doc_id, "--archive", str(root), "--as", "staff0", "--json") == (6, "")
    code, out = _run(capsys, "show", raised.doc_id, "--archive", str(root), "--json")
    assert code == 0 and json.loads(out)["metadata"]["classification"] == "Mật"
    assert main(["verify", "--archive", str(root)]) == 0


def test_export_package_carries_the_corrected_metadata(
    raised: Raised, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "aip"
    assert main(["export", "--package", str(dest), "--archive", str(raised.root),
                 "--query", "nghi quyet kinh te bien"]) == 0
    package = dest / raised.doc_id
    ead = ET.parse(package / "metadata" / "descriptive" / "ead.xml").getroot()
    marks = [el.findtext(f"{EAD}p") for el in ead.iter(f"{EAD}accessrestrict")
             if el.get("localtype") == "classification"]
    assert marks == ["Mật"]
    # the package keeps the machine reading as provenance: the stored manifest, byte for byte
    copies = [p for p in package.rglob("*.json") if p.read_bytes() == raised.machine]
    assert copies, sorted(p.relative_to(package).as_posix() for p in package.rglob("*"))
    # a reader without clearance gets no package of it
    mine = tmp_path / "aip-staff0"
    main(["export", "--package", str(mine), "--archive", str(raised.root), "--as", "staff0"])
    assert not (mine / raised.doc_id).exists()


def test_a_version_is_written_once(raised: Raised, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(raised.root / "objects", root / "objects")
    store = build_object_store(Settings(archive=root))
    with pytest.raises(VersionConflict):  # version 1 exists: a correction made from version 0 is stale
        record(store, raised.doc_id, "khac", [("metadata.subject", None, "bản cũ")], after=0)
    written = record(store, raised.doc_id, "khac", [("metadata.subject", None, "bản mới")], after=1)
    assert [e.id for e in written] == [2]
    assert [e.after for e in edits_of(store, raised.doc_id)] == ["Mật", "bản mới"]


def test_damaged_correction_fails_closed(raised: Raised, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "archive"
    shutil.copytree(raised.root, root, ignore=shutil.ignore_patterns("work"))
    damaged = root / "objects" / correction_key(raised.doc_id, 1)
    damaged.write_text(damaged.read_text(encoding="utf-8").replace('"Mật"', "null"), encoding="utf-8")
    # the operator is told, instead of being shown the document as the machine read it
    assert _run(capsys, "show", raised.doc_id, "--archive", str(root), "--json") == (7, "")
    for f in root.glob("catalog.sqlite*"):
        f.unlink()
    assert main(["reindex", "--archive", str(root)]) == 7  # reported, and the document is not indexed
    code, out = _run(capsys, "search", "nghi quyet kinh te bien", "--archive", str(root), "--as", "staff0", "--json")
    assert code == 0 and raised.doc_id not in [h["id"] for h in json.loads(out)["hits"]]


def test_corrections_kept_in_web_sqlite3_move_to_the_store_once(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(digitised, tmp_path / "archive")
    _users(root)
    doc_id = _ids(digitised)["kh_02.tif"]  # digitised open
    at1, at2 = "2025-05-02T08:00:00+00:00", "2025-05-03T09:30:00+00:00"
    with sqlite3.connect(root / "web.sqlite3") as conn:  # as an earlier version's review form wrote them
        conn.executemany("INSERT INTO edits(doc_id, field, before, after, username, at) VALUES (?,?,?,?,?,?)", [
            (doc_id, "metadata.classification", "null", '"Mật"', "cu", at1),
            (doc_id, "status", '"done"', '"done"', "cu", at1),
            (doc_id, "metadata.signer", '"Lê Văn A"', '"Lê Văn B"', "cu2", at2),
        ])
    correction_legacy._migrated.clear()  # a new process
    # the first use copies them into the store: a reader without clearance no longer sees the document
    assert _run(capsys, "show", doc_id, "--archive", str(root), "--as", "staff0", "--json") == (6, "")
    code, out = _run(capsys, "search", "", "--archive", str(root), "--as", "staff0", "--json")
    assert code == 0 and doc_id not in [h["id"] for h in json.loads(out)["hits"]]  # re-indexed as corrected
    objects = root / "objects"
    first = {k: (objects / k).read_bytes() for k in (correction_key(doc_id, 1), correction_key(doc_id, 2))}
    assert sorted(p.name for p in (objects / corrections_prefix(doc_id)).iterdir()) == ["000001.json", "000002.json"]
    history = json.loads(first[correction_key(doc_id, 1)])
    assert (history["username"], history["at"], [c["field"] for c in history["changes"]]) == (
        "cu", at1, ["metadata.classification", "status"])
    assert json.loads(first[correction_key(doc_id, 2)])["changes"][0]["after"] == "Lê Văn B"
    # once: again (even after the note of it is lost, or half done), nothing changes or is duplicated
    settings = Settings(archive=root)
    store = build_object_store(settings)
    correction_legacy._migrated.clear()
    assert corrections.migrate_legacy(settings, store) == 0
    (objects / correction_key(doc_id, 2)).unlink()
    with sqlite3.connect(root / "web.sqlite3") as conn:
        conn.execute("DELETE FROM corrections_migrated")
    correction_legacy._migrated.clear()
    assert corrections.migrate_legacy(settings, store) == 1
    assert {k: (objects / k).read_bytes() for k in first} == first
    with sqlite3.connect(root / "web.sqlite3") as conn:  # the old table is left as it was
        assert conn.execute("SELECT count(*) FROM edits WHERE doc_id = ?", (doc_id,)).fetchone()[0] == 3
    code, out = _run(capsys, "show", doc_id, "--archive", str(root), "--json")
    assert code == 0 and json.loads(out)["metadata"]["classification"] == "Mật"
    assert main(["verify", "--archive", str(root)]) == 0


# --- the audit trail vouches for the corrections (review finding 3) -------------------------------------------


def _audit_entries(root: Path, action: str) -> list[dict[str, object]]:
    from flows.audit import read_entries

    return [e.as_dict() for e in read_entries(Settings(archive=root), action=action)]


def test_each_correction_is_recorded_in_the_audit_trail_with_its_version(raised: Raised) -> None:
    recorded = [e for e in _audit_entries(raised.root, "correction.record") if e["target"] == raised.doc_id]
    assert len(recorded) == 1, recorded
    details = recorded[0]["details"]
    assert isinstance(details, dict) and details["version"] == 1
    assert details["fields"] == ["metadata.classification"]
    stored = (raised.root / "objects" / correction_key(raised.doc_id, 1)).read_bytes()
    assert details["sha256"] == hashlib.sha256(stored).hexdigest()


def test_deleting_the_newest_correction_is_found_and_fails_closed(
    raised: Raised, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(raised.root, root, ignore=shutil.ignore_patterns("work"))
    (root / "objects" / correction_key(raised.doc_id, 1)).unlink()  # the raise to "Mật" silently undone?
    capsys.readouterr()
    assert main(["verify", "--archive", str(root), "--json"]) == 7
    report = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["key"]) for p in report["problems"]] == [("missing", correction_key(raised.doc_id, 1))]
    # the operator is told, instead of being shown the document as the machine read it
    assert _run(capsys, "show", raised.doc_id, "--archive", str(root), "--json") == (7, "")
    assert main(["reindex", "--archive", str(root)]) == 7  # reported, and the document is left out
    for who in ((), ("--as", "staff0")):
        code, out = _run(capsys, "search", "", "--archive", str(root), "--json", *who)
        assert code == 0 and raised.doc_id not in [h["id"] for h in json.loads(out)["hits"]]
    assert _run(capsys, "show", raised.doc_id, "--archive", str(root), "--as", "staff0", "--json") == (6, "")
    # replacing the record by another, sealed anew, is found as well
    (root / "objects" / correction_key(raised.doc_id, 1)).write_bytes(
        corrections.Correction(doc_id=raised.doc_id, version=1, username="arch", at="2025-01-01T00:00:00+00:00",
                               changes=(corrections.Change("metadata.subject", None, "khác"),)).to_bytes())
    capsys.readouterr()
    assert main(["verify", "--archive", str(root), "--json"]) == 7
    report = json.loads(capsys.readouterr().out)
    assert ("changed", correction_key(raised.doc_id, 1)) in [(p["kind"], p["key"]) for p in report["problems"]]


# --- a raise is atomic: a failed re-index never leaves the document at its old level (review finding 4) ---------


def _save_in_review_form(client: TestClient, doc_id: str, classification: str) -> int:
    form = client.get(f"/review/{doc_id}")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert csrf and version
    return client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                  "md_classification": classification},
                       follow_redirects=False).status_code


def _found(capsys: pytest.CaptureFixture[str], root: Path, doc_id: str, *who: str) -> dict[str, object] | None:
    code, out = _run(capsys, "search", "", "--archive", str(root), "--json", "--limit", "50", *who)
    assert code == 0
    return next((h for h in json.loads(out)["hits"] if h["id"] == doc_id), None)


def test_a_raise_whose_reindex_fails_never_leaves_the_document_at_its_old_level(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.catalog import SqliteCatalog

    root = _copy(digitised, tmp_path / "archive")
    _users(root)
    ids = _ids(digitised)
    once, always = ids["kh_02.tif"], ids["nq_01.png"]  # both digitised open
    assert _found(capsys, root, once, "--as", "staff0") and _found(capsys, root, always, "--as", "staff0")
    monkeypatch.setattr(correction_index, "REINDEX_RETRY_DELAYS_S", (0.0, 0.0))
    commit = SqliteCatalog.commit_document
    failures = {"left": 0}

    def flaky(self: SqliteCatalog, manifest: object, key: str) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        commit(self, manifest, key)  # type: ignore[arg-type]

    with TestClient(create_app(Settings(archive=root), WebSettings()), raise_server_exceptions=False) as client:
        _login(client, "arch")
        monkeypatch.setattr(SqliteCatalog, "commit_document", flaky)
        failures["left"] = 1  # fails once: the retry re-indexes it
        assert _save_in_review_form(client, once, "Mật") == 303
        failures["left"] = 1000  # fails every time: the document is taken out of the index
        assert _save_in_review_form(client, always, "Mật") == 500
    assert _found(capsys, root, once, "--as", "staff0") is None
    hit = _found(capsys, root, once)
    assert hit is not None and hit["metadata"]["classification"] == "Mật"  # type: ignore[index]
    assert _found(capsys, root, always, "--as", "staff0") is None  # search hits, snippets...
    assert _run(capsys, "show", always, "--archive", str(root), "--as", "staff0", "--json") == (6, "")
    table = tmp_path / "bang.csv"
    assert main(["export", "--out", str(table), "--archive", str(root), "--as", "staff0"]) == 0
    assert always not in table.read_text(encoding="utf-8-sig")  # ...and export rows
    marker = root / corrections.PENDING_DIR / f"{always}.json"
    assert marker.exists()
    capsys.readouterr()
    assert main(["verify", "--archive", str(root), "--json"]) == 7  # the operator is told it is out of the index
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["kind"], p["key"]) for p in problems] == [("not_indexed", always)]
    # the next start re-indexes it with its correction
    monkeypatch.setattr(SqliteCatalog, "commit_document", commit)
    with TestClient(create_app(Settings(archive=root), WebSettings())):
        pass
    hit = _found(capsys, root, always)
    assert hit is not None and hit["metadata"]["classification"] == "Mật"  # type: ignore[index]
    assert _found(capsys, root, always, "--as", "staff0") is None
    assert not marker.exists()
    assert main(["verify", "--archive", str(root)]) == 0


# --- a correction the audit trail never recorded is not accepted (review finding: planted correction) -----------


def test_a_correction_the_audit_trail_never_recorded_fails_closed(
    raised: Raised, digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(raised.root, root, ignore=shutil.ignore_patterns("work"))
    secret = _ids(digitised)["bc_03.pdf"]  # digitised "Mật", never corrected
    manifest = json.loads((root / "objects" / "documents" / secret / "document.json").read_bytes())
    assert manifest["metadata"]["classification"] == "Mật"
    assert _found(capsys, root, secret, "--as", "staff0") is None
    assert main(["verify", "--archive", str(root)]) == 0
    # a valid-looking record (sealed, in its place) copied straight into the store: "Mật" → open
    planted = root / "objects" / correction_key(secret, 1)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(corrections.Correction(
        doc_id=secret, version=1, username="arch", at="2025-01-01T00:00:00+00:00",
        changes=(corrections.Change("metadata.classification", "Mật", None),)).to_bytes())
    # sohoa verify reports it, naming the document
    capsys.readouterr()
    assert main(["verify", "--archive", str(root), "--json"]) == 7
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["kind"], p["key"], p["document"]) for p in problems] == [
        ("unexpected", correction_key(secret, 1), secret)]
    # the operator is told; the document is never shown as the planted record would have it
    assert _run(capsys, "show", secret, "--archive", str(root), "--json") == (7, "")
    assert _run(capsys, "show", secret, "--archive", str(root), "--as", "staff0", "--json") == (6, "")
    # reindex reports it and leaves it out; the web's resync does not apply it either
    assert main(["reindex", "--archive", str(root)]) == 7
    assert _found(capsys, root, secret) is None and _found(capsys, root, secret, "--as", "staff0") is None
    with TestClient(create_app(Settings(archive=root), WebSettings())) as client:
        _login(client, "staff0")
        assert client.get(f"/documents/{secret}").status_code != 200
    assert _found(capsys, root, secret, "--as", "staff0") is None
    # the other documents' corrections, recorded in the trail, are still read
    code, out = _run(capsys, "show", raised.doc_id, "--archive", str(root), "--json")
    assert code == 0 and json.loads(out)["metadata"]["classification"] == "Mật"
