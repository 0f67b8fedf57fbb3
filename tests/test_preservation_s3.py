"""Preservation on the S3 backend (a real SeaweedFS server): the archive's store is a bucket.

* verify/backup/reindex with S3 as source and target, damage made behind the store's back;
* a batch digitised onto S3 whose server is killed mid-batch, then restarted: re-running completes it with
  nothing lost, nothing duplicated and no index entry without its stored document.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

from flows.fixity import verify_store
from interfaces.cli import main
from storage.layout import prefix_of
from tests.conftest import SAMPLE_BATCH, DigitisedArchive, catalogued, require_weed
from tests.test_preservation import run_json, search_all
from tests.tools.seaweed import SeaweedServer


def use_s3(monkeypatch: pytest.MonkeyPatch, server: SeaweedServer, prefix: str, **extra: str) -> None:
    """Point sohoa's settings (environment) at ``server``: the archive's object store is s3://sohoa/<prefix>."""
    env = {"SOHOA_OBJECT_STORE": "s3", "SOHOA_S3_ENDPOINT": server.endpoint, "SOHOA_S3_ACCESS_KEY": server.access_key,
           "SOHOA_S3_SECRET_KEY": server.secret_key, "SOHOA_S3_BUCKET": "sohoa", "SOHOA_S3_PREFIX": prefix,
           "SOHOA_S3_RETRIES": "1", "SOHOA_S3_BACKOFF_S": "0.2", **extra}
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_verify_backup_reindex_on_s3(
    seaweed: SeaweedServer, digitised: DigitisedArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = search_all(capsys, digitised.archive)
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    use_s3(monkeypatch, seaweed, prefix)
    monkeypatch.setenv("SOHOA_OBJECT_STORE", "directory")  # source: the embedded archive
    code, first = run_json(capsys, "backup", "--archive", str(digitised.archive), "--to", f"s3://sohoa/{prefix}",
                           "--json")
    assert code == 0 and first["objects_copied"] == first["objects_seen"] > 30
    code, second = run_json(capsys, "backup", "--archive", str(digitised.archive), "--to", f"s3://sohoa/{prefix}",
                            "--json")
    assert code == 0 and second["objects_copied"] == 0

    monkeypatch.setenv("SOHOA_OBJECT_STORE", "s3")  # from here the archive's store is the bucket
    archive = tmp_path / "archive"  # a new machine: only the bucket, no catalog yet
    code, report = run_json(capsys, "reindex", "--archive", str(archive), "--json")
    assert code == 0 and report["documents_indexed"] == 5
    assert search_all(capsys, archive) == before
    code, clean = run_json(capsys, "verify", "--archive", str(archive), "--json")
    assert code == 0 and clean["documents_checked"] == 5 and clean["problems"] == []
    code, shown = run_json(capsys, "show", before[0]["hits"][0]["id"], "--archive", str(archive), "--json")
    assert code == 0 and str(shown["files"]["pdfa"]).startswith(f"s3://sohoa/{prefix}/documents/")  # type: ignore[index]

    # damage behind the store's back: a flipped byte in a PDF/A, a deleted hOCR page, a stray object
    raw = seaweed.minio()
    doc = str(before[0]["hits"][0]["id"])
    keys = [o.object_name for o in raw.list_objects("sohoa", prefix=f"{prefix}/{prefix_of(doc)}", recursive=True)]
    pdf = next(k for k in keys if k.endswith(".pdf"))
    hocr = next(k for k in keys if k.endswith(".hocr"))
    data = bytearray(raw.get_object("sohoa", pdf).read())
    data[len(data) // 2] ^= 0x01
    import io

    raw.put_object("sohoa", pdf, io.BytesIO(bytes(data)), len(data))
    raw.remove_object("sohoa", hocr)
    raw.put_object("sohoa", f"{prefix}/{prefix_of(doc)}stray.bin", io.BytesIO(b"x"), 1)
    code, found = run_json(capsys, "verify", "--archive", str(archive), "--json")
    assert code == 7
    assert sorted((p["kind"], p["key"]) for p in found["problems"]) == sorted([  # type: ignore[index, union-attr]
        ("changed", pdf.removeprefix(prefix + "/")), ("missing", hocr.removeprefix(prefix + "/")),
        ("unexpected", f"{prefix_of(doc)}stray.bin")])
    # restore from the directory archive (the other copy) into the bucket
    monkeypatch.setenv("SOHOA_OBJECT_STORE", "directory")
    assert main(["backup", "--archive", str(digitised.archive), "--to", f"s3://sohoa/{prefix}"]) == 0
    raw.remove_object("sohoa", f"{prefix}/{prefix_of(doc)}stray.bin")
    monkeypatch.setenv("SOHOA_OBJECT_STORE", "s3")
    assert main(["verify", "--archive", str(archive)]) == 0
    # and S3 → directory
    copy = tmp_path / "copy"
    code, back = run_json(capsys, "backup", "--archive", str(archive), "--to", str(copy), "--json")
    assert code == 0 and back["objects_copied"] >= 37
    assert main(["verify", "--store", str(copy)]) == 0


def test_store_outage_mid_batch_then_rerun_loses_and_duplicates_nothing(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    require_weed()
    batch = tmp_path / "batch"
    shutil.copytree(SAMPLE_BATCH, batch)
    archive = tmp_path / "archive"
    with SeaweedServer(tmp_path / "sw") as server:
        use_s3(monkeypatch, server, "outage", SOHOA_WORKERS="1")
        outcome: dict[str, int] = {}
        first_report = tmp_path / "first.json"
        run = threading.Thread(target=lambda: outcome.setdefault("code", main(
            ["digitise", str(batch), "--archive", str(archive), "--report", str(first_report), "--quiet"])))
        run.start()
        deadline = time.monotonic() + 300
        while catalogued(archive) < 1 and run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # the S3 server dies mid-batch
        killed_after = catalogued(archive)
        run.join(timeout=600)
        assert not run.is_alive()
        first = json.loads(first_report.read_text(encoding="utf-8"))
        failed = [d for d in first["documents"] if d["status"] == "failed"]
        assert outcome["code"] == 3 and 1 <= killed_after < 5 and failed, first
        assert all("chưa lưu được vào kho" in d["error"] and "chạy lại lô" in d["error"] for d in failed)
        assert catalogued(archive) == 5 - len(failed)  # nothing catalogued that was not stored

        server.restart()
        store = server.store("sohoa", prefix="outage")
        from storage.catalog import SqliteCatalog

        catalog = SqliteCatalog(archive / "catalog.sqlite")
        try:  # before the re-run: every index entry has its stored document (no orphans)
            assert not [p for p in verify_store(store, catalog=catalog, keep_report=False).problems
                        if p.kind in ("orphan_index", "missing", "changed", "unreadable")]
        finally:
            catalog.close()

        second_report = tmp_path / "second.json"
        assert main(["digitise", str(batch), "--archive", str(archive), "--report", str(second_report),
                     "--quiet"]) == 0
        second = json.loads(second_report.read_text(encoding="utf-8"))
        assert {d["status"] for d in second["documents"]} <= {"done", "needs_review"}
        assert sum(not d["skipped"] for d in second["documents"]) <= len(failed)
        assert catalogued(archive) == 5
        code, audit = run_json(capsys, "verify", "--archive", str(archive), "--json")
        assert code == 0 and audit["documents_checked"] == 5 and audit["problems"] == []  # no orphans, no strays
        ids = {d["id"] for d in second["documents"]}
        assert len(ids) == 5 and ids == {d["id"] for d in first["documents"] if d["id"]}
