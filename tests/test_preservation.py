"""Preservation on the embedded directory store, through the CLI: verify, backup/restore, reindex, TT 05 names.

The same commands against the S3 backend (a real SeaweedFS server) are in ``test_preservation_s3.py``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from flows.fixity import verify_store
from interfaces.cli import main
from pipeline.load import discover_documents, number_documents
from schemas.document import DocumentSource
from storage.objects import DirectoryObjectStore
from tests.conftest import SAMPLE_BATCH, DigitisedArchive, sample_expected


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(list(args))
    return code, dict(json.loads(capsys.readouterr().out))


def copy_archive(digitised: DigitisedArchive, dest: Path) -> Path:
    shutil.copytree(digitised.archive, dest, ignore=shutil.ignore_patterns("work"))
    return dest


def search_queries() -> list[str]:
    queries = [str(d["subject_query"]) for d in sample_expected()]
    queries += [f"{d['code_number']}-{d['code_notation']}" for d in sample_expected() if d.get("code_number")]
    return [*queries, "dang bo", "\"thanh pho da nang\"", "ke hoach"]


def search_all(capsys: pytest.CaptureFixture[str], archive: Path) -> list[dict[str, object]]:
    """Every query's result; hits of equal score in id order (the embedded index ranks a tier's hits most
    recently indexed first, and a rebuild indexes in document-id order)."""
    out = []
    for q in search_queries():
        code, result = run_json(capsys, "search", q, "--archive", str(archive), "--json", "--limit", "20")
        assert code == 0
        result["hits"] = sorted(result["hits"], key=lambda h: (-h["score"], h["id"]))
        out.append(result)
    return out


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_reports_every_flipped_byte_and_every_deleted_object(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    code, clean = run_json(capsys, "verify", "--archive", str(archive), "--json")
    assert code == 0 and clean["problems"] == [] and clean["documents_checked"] == 5
    store = DirectoryObjectStore(archive / "objects")
    keys = [k for k in store.list("documents/")]
    assert len(keys) >= 5 * 6  # originals, PDF/A, hOCR, text, seal, manifest per document
    rng = random.Random(7)
    for key in keys:  # every stored object: one flipped byte is found, and named
        path = Path(store.locate(key))
        original = path.read_bytes()
        flip_byte(path, rng.randrange(len(original)))
        report = verify_store(store, keep_report=False)
        path.write_bytes(original)
        named = key.removesuffix(".sha256")  # a damaged seal shows as a manifest that no longer matches it
        assert {p.key for p in report.problems} == {named}, key
        assert "changed" in {p.kind for p in report.problems} <= {"changed", "unreadable"}, key
    for key in keys:  # every stored object: deleting it is found
        path = Path(store.locate(key))
        moved = tmp_path / "moved"
        shutil.move(path, moved)
        report = verify_store(store, keep_report=False)
        shutil.move(moved, path)
        assert key in {p.key for p in report.problems}, key
        assert {p.kind for p in report.problems} <= {"missing", "unexpected", "not_indexed"}
    stray = archive / "objects" / "documents" / keys[0].split("/")[1] / "stray.bin"
    stray.write_bytes(b"x")
    code, found = run_json(capsys, "verify", "--archive", str(archive), "--json")
    assert code == 7
    assert [(p["kind"], p["key"]) for p in found["problems"]] == [  # type: ignore[index, union-attr]
        ("unexpected", stray.relative_to(archive / "objects").as_posix())]
    assert len(list((archive / "objects" / "audit" / "fixity").iterdir())) == 2  # CLI audits are kept


def test_sample_checks_only_that_many_documents(digitised: DigitisedArchive, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    code, report = run_json(capsys, "verify", "--archive", str(archive), "--sample", "2", "--json")
    assert code == 0 and report["documents_checked"] == 2 and len(report["documents"]) == 2  # type: ignore[arg-type]
    assert main(["verify", "--archive", str(archive), "--sample", "0"]) == 4


def test_catalog_and_store_disagreeing_is_reported(digitised: DigitisedArchive, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    doc = sorted((archive / "objects" / "documents").iterdir())[0]
    shutil.rmtree(doc)
    code, report = run_json(capsys, "verify", "--archive", str(archive), "--json")
    assert code == 7
    assert [(p["kind"], p["key"]) for p in report["problems"]] == [("orphan_index", doc.name)]  # type: ignore[index, union-attr]


def test_backup_is_incremental_verified_and_restores_damage(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    backup = tmp_path / "backup"
    code, first = run_json(capsys, "backup", "--archive", str(archive), "--to", str(backup), "--json")
    assert code == 0 and first["objects_copied"] == first["objects_seen"] > 30
    code, second = run_json(capsys, "backup", "--archive", str(archive), "--to", str(backup), "--json")
    assert code == 0 and second["objects_copied"] == 0 and second["bytes_copied"] == 0
    code, check = run_json(capsys, "verify", "--store", str(backup), "--json")
    assert code == 0 and check["documents_checked"] == 5
    # damage the archive: a flipped original, a lost page text, a lost seal
    docs = sorted((archive / "objects" / "documents").iterdir())
    original = next((docs[0] / "original").rglob("*.*"))
    flip_byte(original, 99)
    (docs[1] / "pages" / "0001.txt").unlink()
    (docs[2] / "document.json.sha256").unlink()
    assert main(["verify", "--archive", str(archive)]) == 7
    # a backup never spreads damage: a fresh copy refuses the damaged objects, an incremental one keeps its own
    code, refused = run_json(capsys, "backup", "--archive", str(archive), "--to", str(tmp_path / "b2"), "--json")
    assert code == 7
    assert {(p["kind"], p["document"]) for p in refused["problems"]} == {  # type: ignore[index, union-attr]
        ("changed", docs[0].name), ("missing", docs[1].name), ("missing", docs[2].name)}
    assert main(["backup", "--archive", str(archive), "--to", str(backup)]) == 7
    assert main(["verify", "--store", str(backup)]) == 0
    # restore: the backup copied back over the archive repairs it
    code, restore = run_json(capsys, "backup", "--archive", str(backup), "--to", str(archive), "--json")
    assert code == 0 and restore["objects_repaired"] == 1
    assert main(["verify", "--archive", str(archive)]) == 0


def test_reindex_from_the_store_alone_gives_the_same_search_results(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    before = search_all(capsys, archive)
    assert all(r["total"] for r in before[:5])
    for f in archive.glob("catalog.sqlite*"):
        f.unlink()
    code, report = run_json(capsys, "reindex", "--archive", str(archive), "--json")
    assert code == 0 and report["documents_indexed"] == 5 and report["problems"] == []
    assert search_all(capsys, archive) == before
    # and from a backup into an empty archive folder
    backup = tmp_path / "backup"
    assert main(["backup", "--archive", str(archive), "--to", str(backup)]) == 0
    restored = tmp_path / "restored"
    assert main(["reindex", "--archive", str(restored), "--store", str(backup)]) == 0
    assert main(["verify", "--store", str(backup)]) == 0
    for result in search_all(capsys, restored):
        assert result == before.pop(0)


def test_export_package_writes_verifiable_aips_and_is_idempotent(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aip import parse_checksum_manifest
    from schemas.checksums import sha256_file

    archive = copy_archive(digitised, tmp_path / "archive")
    out = tmp_path / "aip"
    code, report = run_json(capsys, "export", "--package", str(out), "--archive", str(archive), "--json")
    assert code == 0 and len(report["packages"]) == 5  # type: ignore[arg-type]
    for package in out.iterdir():
        listed = parse_checksum_manifest((package / "manifest-sha256.txt").read_bytes())
        assert "METS.xml" in listed and any(p.endswith(".pdf") for p in listed)
        for rel, sha in listed.items():
            assert sha256_file(package / rel) == sha, rel
    code, again = run_json(capsys, "export", "--package", str(out), "--archive", str(archive), "--json")
    assert code == 0 and {p["status"] for p in again["packages"]} == {"unchanged"}  # type: ignore[union-attr, index]
    assert main(["verify", "--archive", str(archive)]) == 0  # a new fixity event: PREMIS changes
    assert main(["export", "--package", str(out), "--archive", str(archive)]) == 7  # never silently overwritten
    assert main(["export", "--package", str(out), "--archive", str(archive), "--replace"]) == 0
    premis = next(out.glob("*/metadata/preservation/premis.xml")).read_text(encoding="utf-8")
    assert len(list(out.iterdir())) == 5 and premis.count(">fixity check<") == 2  # the audit and the packaging check


def test_documents_are_numbered_by_batch_order_then_name(tmp_path: Path) -> None:
    docs = [DocumentSource(source=n, kind="file", files=[tmp_path / n]) for n in ("a10.tif", "a2.tif", "b.tif")]
    assert [d.sequence for d in number_documents(docs, [])] == [2, 1, 3]
    assert [d.sequence for d in number_documents(docs, ["b.tif"])] == [3, 2, 1]


def test_batch_toml_names_the_pdfa_by_file_code(prefect_api: None, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("qd_05.jpg", "nq_01.png"):
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    (batch / "batch.toml").write_text('[ho_so]\nfile_code = "H49.64.33.2001.160"\ntitle = "Hồ sơ thử"\n'
                                      'order = ["qd_05.jpg"]\n', encoding="utf-8")
    assert [(d.source, d.sequence) for d in discover_documents(batch)] == [("nq_01.png", 2), ("qd_05.jpg", 1)]
    archive = tmp_path / "archive"
    report = tmp_path / "r.json"
    assert main(["digitise", str(batch), "--archive", str(archive), "--report", str(report), "--quiet"]) == 0
    ids = {d["source"]: d["id"] for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}
    for source, number in (("qd_05.jpg", 1), ("nq_01.png", 2)):
        code, shown = run_json(capsys, "show", ids[source], "--archive", str(archive), "--json")
        assert code == 0
        assert Path(shown["files"]["pdfa"]).name == f"H49.64.33.2001.160.{number}.pdf"  # type: ignore[index]
        manifest = json.loads(Path(shown["files"]["manifest"]).read_text(encoding="utf-8"))  # type: ignore[index]
        assert manifest["file_code"] == "H49.64.33.2001.160" and manifest["sequence"] == number
    assert main(["verify", "--archive", str(archive)]) == 0


@pytest.mark.parametrize("content", ['file_code = "a/b"', "order = 5", "not toml ["])
def test_bad_batch_toml_is_refused_naming_the_file(tmp_path: Path, content: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "qd_05.jpg", batch)
    (batch / "batch.toml").write_text(content, encoding="utf-8")
    assert main(["digitise", str(batch), "--archive", str(tmp_path / "a"), "--quiet"]) == 4
    assert "batch.toml" in capsys.readouterr().err


def test_fixity_audit_flow_runs_in_prefect_and_publishes_a_summary(
    prefect_api: None, digitised: DigitisedArchive, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client

    from flows.scheduled import FixityProblemsFound, deployments, fixity_audit
    from schemas.settings import Settings

    archive = copy_archive(digitised, tmp_path / "archive")
    settings = Settings(archive=archive)
    report = fixity_audit(str(archive))
    assert report.ok and report.documents_checked == 5
    flip_byte(next((archive / "objects" / "documents").rglob("*.pdf")), 500)
    with pytest.raises(FixityProblemsFound):
        fixity_audit(str(archive))

    async def artifact() -> str:
        async with get_client() as client:
            found = await client.read_latest_artifacts()
            return next(str(a.data) for a in found if a.key == "fixity-audit")

    import asyncio

    assert "1 vấn đề" in asyncio.run(artifact())
    deployment = next(d for d in deployments(settings) if d.name == "fixity-audit")
    assert deployment.name == "fixity-audit" and deployment.parameters["archive"] == str(archive.resolve())
    assert deployment.schedules[0].schedule.cron == settings.fixity_cron
    assert deployment.schedules[0].schedule.timezone == "Asia/Ho_Chi_Minh"


def test_archive_from_before_sealed_manifests_is_indexed_and_sealed_on_request(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(digitised, tmp_path / "archive")
    for seal in (archive / "objects").rglob("document.json.sha256"):
        seal.unlink()
    flip_byte(next((archive / "objects").rglob("*.hocr")), 10)  # one damaged document must not be sealed
    assert main(["verify", "--archive", str(archive)]) == 7
    for f in archive.glob("catalog.sqlite*"):
        f.unlink()
    code, report = run_json(capsys, "reindex", "--archive", str(archive), "--json")
    assert code == 7 and report["documents_indexed"] == 5  # indexed, and the missing seals reported
    code, sealed = run_json(capsys, "verify", "--archive", str(archive), "--seal-missing", "--json")
    assert code == 7 and {p["kind"] for p in sealed["problems"]} == {"changed", "missing"}  # type: ignore[union-attr]
    assert len({p["document"] for p in sealed["problems"]}) == 1  # type: ignore[union-attr]
    assert len(list((archive / "objects").rglob("document.json.sha256"))) == 4


def test_reindex_and_verify_keep_an_elasticsearch_index_in_step(
    digitised: DigitisedArchive, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """With Elasticsearch as the search index: reindex rebuilds it from the store, verify compares it with the store."""
    from flows.preservation import rebuild_index, stored_manifests
    from storage.catalog import SqliteCatalog
    from storage.search_index import entry_of
    from tests.test_search_contract import make_es

    archive = copy_archive(digitised, tmp_path / "archive")
    store = DirectoryObjectStore(archive / "objects")
    es = make_es(tmp_path, request)
    catalog = SqliteCatalog(archive / "catalog.sqlite")
    try:
        report = rebuild_index(store, catalog, es)
        assert report.documents_indexed == 5 and es.ids() == {e.id for e in catalog.entries()}
        assert verify_store(store, catalog=catalog, external=es, keep_report=False).ok
        gone = sorted(es.ids())[0]
        es.delete([gone])
        problems = verify_store(store, catalog=catalog, external=es, keep_report=False).problems
        assert [(p.kind, p.key) for p in problems] == [("not_indexed", gone)]
        assert "Elasticsearch" in problems[0].detail
        es.upsert([entry_of(m) for m, _ in stored_manifests(store, []) if m.id == gone])
        assert verify_store(store, catalog=catalog, external=es, keep_report=False).ok
    finally:
        catalog.close()
        es.close()
