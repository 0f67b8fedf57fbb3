"""Workers without a shared folder (issue 23): batches read from an S3 inbox, per-document work in local scratch.

On a real SeaweedFS server: a batch uploaded under ``s3://<inbox>/<prefix>/`` digitised by ``sohoa digitise`` and by
``sohoa batch add --when now`` with the archive's store on S3 too; the report equals the folder run's; originals are
stored with the checksums of the files uploaded; an object over ``max_file_mb`` fails naming it and is never
downloaded; the scratch folder is empty after the run and the archive folder holds only the embedded databases;
a missing bucket or prefix is a clear error. A mounted read-only share is a folder: nothing is written into it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from flows.digitise import page_total
from flows.inbox import batch_documents, fetched, is_inbox, parse_inbox
from interfaces.cli import main
from pipeline.load import Limits
from schemas.document import DocumentManifest
from schemas.errors import ConfigError, LimitExceededError
from schemas.settings import Settings
from storage.layout import COPY_REGISTER, manifest_key
from storage.objects_s3 import S3ObjectStore
from storage.scratch import LEASE, new_work_dir, private_root, remove_expired
from tests.conftest import SAMPLE_BATCH, DigitisedArchive
from tests.tools.seaweed import SeaweedServer

# what a digitise run with the S3 object store may leave in the archive folder: the embedded databases (catalog
# and its WAL, the audit trail, its key and local anchor) and the hand-run log; never scratch ("work") nor objects
ARCHIVE_FOLDER_ALLOWED = {"catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "audit.sqlite3",
                          "audit.sqlite3-wal", "audit.sqlite3-shm", "audit.key", "audit.anchor", "run-log.jsonl"}


def use_servers(monkeypatch: pytest.MonkeyPatch, server: SeaweedServer, tmp_path: Path, **extra: str) -> Path:
    """The archive's store on ``server`` (bucket sohoa, a fresh prefix), the inbox on the same server by default;
    a private scratch folder; returns it."""
    scratch = tmp_path / "scratch"
    env = {"SOHOA_OBJECT_STORE": "s3", "SOHOA_S3_ENDPOINT": server.endpoint, "SOHOA_S3_ACCESS_KEY": server.access_key,
           "SOHOA_S3_SECRET_KEY": server.secret_key, "SOHOA_S3_BUCKET": "sohoa",
           "SOHOA_S3_PREFIX": f"a-{tmp_path.name[-20:]}-{uuid.uuid4().hex[:6]}", "SOHOA_S3_RETRIES": "1",
           "SOHOA_S3_BACKOFF_S": "0.2", "SOHOA_SCRATCH_DIR": str(scratch), **extra}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return scratch


def upload_folder(server: SeaweedServer, folder: Path, bucket: str, prefix: str) -> dict[str, str]:
    """Every file under ``folder`` put under ``prefix/`` in ``bucket`` (made when missing); key → SHA-256."""
    raw = server.minio()
    if not raw.bucket_exists(bucket):
        raw.make_bucket(bucket)
    sums = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            raw.put_object(bucket, f"{prefix}/{rel}", io.BytesIO(data), len(data))
            sums[rel] = hashlib.sha256(data).hexdigest()
    return sums


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``folder``: (mode, mtime_ns, SHA-256 of a file's bytes), to tell that nothing changed."""
    out = {}
    for path in sorted([folder, *folder.rglob("*")]):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[path.relative_to(folder).as_posix()] = (st.st_mode, st.st_mtime_ns, digest)
    return out


def archive_store(settings: Settings) -> S3ObjectStore:
    return S3ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key.get_secret_value(),
                         settings.s3_bucket, prefix=settings.s3_prefix, create_bucket=False)


class Downloads:
    """Records the keys an ``S3ObjectStore`` downloads (wrapping the real ``get_file``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = S3ObjectStore.get_file

        def spy(store: S3ObjectStore, key: str, dest: Path, **kw: Any) -> None:
            self.names.append(f"{store.bucket}/{store.prefix}{key}")
            real(store, key, dest, **kw)

        monkeypatch.setattr(S3ObjectStore, "get_file", spy)


# --- batch discovery: the folder rules, from a listing --------------------------------------------------------


def test_an_inbox_prefix_lists_the_documents_a_folder_would(
    seaweed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "lo-07"
    shutil.copytree(SAMPLE_BATCH, folder)
    (folder / ".DS_Store").write_bytes(b"x")
    (folder / "Thumbs.db").write_bytes(b"x")
    (folder / "cv_04" / ".hidden.jpg").write_bytes(b"x")
    (folder / "cv_04" / "p10.jpg").write_bytes(b"x")  # natural order: after p2
    (folder / "cv_04" / "deeper").mkdir()
    (folder / "cv_04" / "deeper" / "p3.jpg").write_bytes(b"x")  # not a page (a folder's sub-folder is not)
    (folder / "tt_06").mkdir()
    (folder / "tt_06" / "only" / "x.png").parent.mkdir()
    (folder / "tt_06" / "only" / "x.png").write_bytes(b"x")  # a document folder without pages: it fails later
    (folder / "batch.toml").write_text('order = ["qd_05.jpg", "nq_01.png"]\napproval_ref = "12-QĐ/VPTU"\n',
                                       encoding="utf-8")
    use_servers(monkeypatch, seaweed, tmp_path)
    bucket, prefix = f"inbox-{uuid.uuid4().hex[:8]}", "den/lo-07"
    upload_folder(seaweed, folder, bucket, prefix)
    spec = f"s3://{bucket}/{prefix}"
    assert is_inbox(spec) and not is_inbox(Path(spec)) and parse_inbox(spec).name == "lo-07"

    local = batch_documents(folder, Settings())
    remote = batch_documents(spec, Settings())
    assert [(d.source, d.kind, d.sequence, [p.name for p in d.files]) for d in local] == \
           [(d.source, d.kind, d.sequence, [f.key.split("/")[-1] for f in d.remote]) for d in remote]
    assert [d.source for d in remote] == ["bc_03.pdf", "cv_04", "kh_02.tif", "nq_01.png", "qd_05.jpg", "tt_06"]
    assert {d.inbox for d in remote} == {f"s3://{bucket}/{prefix}/"} and all(not d.files for d in remote)
    assert remote[3].origin == f"s3://{bucket}/{prefix}/nq_01.png"
    assert page_total(remote) == 7  # from the listing alone: cv_04's 3 pages, one per file (nothing downloaded)
    sizes = {f.key: f.bytes for d in remote for f in d.remote}
    assert sizes["kh_02.tif"] == (SAMPLE_BATCH / "kh_02.tif").stat().st_size


def test_a_fetched_document_is_checked_before_download_and_removed_after(
    seaweed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = use_servers(monkeypatch, seaweed, tmp_path)
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    sums = upload_folder(seaweed, SAMPLE_BATCH, bucket, "lo")
    settings = Settings()
    downloads = Downloads(monkeypatch)
    docs = {d.source: d for d in batch_documents(f"s3://{bucket}/lo/", settings)}
    with fetched(docs["cv_04"], settings, Limits()) as local:
        assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in local.files] == \
               [sums["cv_04/p1.jpg"], sums["cv_04/p2.jpg"]]
        assert scratch in local.files[0].parents
        assert (local.files[0].parent.parent / "batch.toml").read_bytes() == (SAMPLE_BATCH / "batch.toml").read_bytes()
        assert local.origin == f"s3://{bucket}/lo/cv_04" and not local.remote
    assert not any(scratch.iterdir())
    assert downloads.names == [f"{bucket}/lo/cv_04/p1.jpg", f"{bucket}/lo/cv_04/p2.jpg"]
    limit = Limits(max_file_bytes=400_000)  # kh_02.tif is 313 kB, bc_03.pdf 509 kB
    too_big = r"bc_03\.pdf: tệp 0\.5 MB vượt giới hạn 0\.4 MB \(không tải về\)"
    with pytest.raises(LimitExceededError, match=too_big), fetched(docs["bc_03.pdf"], settings, limit):
        pass
    too_long = r"cv_04/: 2 trang vượt giới hạn 1 trang"
    with pytest.raises(LimitExceededError, match=too_long), fetched(docs["cv_04"], settings, Limits(max_pages=1)):
        pass
    assert len(downloads.names) == 2 and not any(scratch.iterdir())
    # replaced by a larger object after the listing (275 kB listed, under the limit): the download stops at the limit
    larger = os.urandom(500_000)
    seaweed.minio().put_object(bucket, "lo/nq_01.png", io.BytesIO(larger), len(larger))
    with pytest.raises(LimitExceededError, match=r"nq_01\.png: tệp vượt giới hạn .* \(đã dừng tải về\)"), \
            fetched(docs["nq_01.png"], settings, Limits(max_file_bytes=300_000)):
        pass
    assert not any(scratch.iterdir())


def test_a_missing_bucket_or_prefix_is_a_clear_error(
    seaweed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    use_servers(monkeypatch, seaweed, tmp_path)
    archive = tmp_path / "archive"
    missing = f"nobucket-{uuid.uuid4().hex[:8]}"
    capsys.readouterr()
    assert main(["digitise", f"s3://{missing}/lo/", "--archive", str(archive), "--quiet"]) == 4
    err = capsys.readouterr().err
    assert f"Không tìm thấy bucket «{missing}»" in err and "SOHOA_INBOX_S3_ENDPOINT" in err
    assert not seaweed.minio().bucket_exists(missing)  # an inbox is read, never created
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    upload_folder(seaweed, SAMPLE_BATCH, bucket, "lo")
    for command in (["digitise", f"s3://{bucket}/khong-co/"], ["batch", "add", f"s3://{bucket}/khong-co/"]):
        assert main([*command, "--archive", str(archive)]) == 4
        err = capsys.readouterr().err
        assert f"Không có tệp nào dưới s3://{bucket}/khong-co/" in err and "kiểm tra lại địa chỉ lô" in err
    assert main(["digitise", "s3:///lo/", "--archive", str(archive)]) == 4
    assert "Địa chỉ lô không hợp lệ" in capsys.readouterr().err
    for bad in (f"s3://{bucket}/a/../b", f"s3://{bucket}/a//b", "s3://key:secret@host/lo/", "s3://Hoa/lo/"):
        with pytest.raises(ConfigError, match="Địa chỉ lô không hợp lệ"):
            parse_inbox(bad)


# --- local scratch ---------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_scratch_leftovers_go_by_dead_process_or_expired_lease_never_by_another_hosts_pid(tmp_path: Path) -> None:
    root = private_root(tmp_path / "scratch")
    assert root.stat().st_mode & 0o777 == 0o700
    mine = new_work_dir(root, "doc-live")  # this process: alive
    crashed = new_work_dir(root, "doc-crashed")
    crashed_owner = json.loads((crashed / LEASE).read_text(encoding="utf-8"))
    (crashed / LEASE).write_text(json.dumps({**crashed_owner, "pid": _dead_pid()}), encoding="utf-8")
    other_fresh = new_work_dir(root, "doc-other-host")  # another host's folder, lease renewed just now
    (other_fresh / LEASE).write_text(json.dumps({"host": "may-khac", "pid": _dead_pid()}), encoding="utf-8")
    other_old = new_work_dir(root, "doc-other-host-old")
    (other_old / LEASE).write_text(json.dumps({"host": "may-khac", "pid": os.getpid()}), encoding="utf-8")
    stray = root / "stray.part"  # no lease at all: judged by its own age
    stray.write_bytes(b"x")
    now = time.time()
    for path in (other_old / LEASE, stray):
        os.utime(path, (now - 7200, now - 7200))
    assert remove_expired(root, lease_s=3600, now=now) == 3
    assert sorted(p.name for p in root.iterdir()) == sorted([mine.name, other_fresh.name])
    assert remove_expired(root, lease_s=3600, now=now + 7200) == 2  # leases not renewed for two hours: expired


def test_scratch_refuses_a_symlinked_root(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ConfigError, match="không an toàn"):
        private_root(tmp_path / "link")


def test_default_scratch_is_under_the_system_temp_dir_not_the_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOHOA_SCRATCH_DIR", raising=False)
    settings = Settings(archive=Path("/srv/archive"))
    import tempfile

    assert settings.scratch_path().parent == Path(tempfile.gettempdir()).resolve()
    assert Path("/srv/archive") not in settings.scratch_path().parents


# --- end to end: digitise, batch add ---------------------------------------------------------------------------


def _statuses(report: dict[str, object]) -> dict[str, tuple[str, str | None]]:
    docs = report["documents"]
    assert isinstance(docs, list)
    return {d["source"]: (d["status"], d["failure_code"]["code"] if d["failure_code"] else None) for d in docs}


@pytest.mark.slow
def test_digitise_an_s3_inbox_like_the_folder(
    prefect_api: None, seaweed: SeaweedServer, digitised: DigitisedArchive, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(digitised.batch, inbox)  # the sample batch and the four broken files the folder run had
    (inbox / ".DS_Store").write_bytes(b"x")
    big = os.urandom(int(1.5 * 2**20))
    (inbox / "big.png").write_bytes(big)  # over SOHOA_MAX_FILE_MB=1: never downloaded
    scratch = use_servers(monkeypatch, seaweed, tmp_path, SOHOA_MAX_FILE_MB="1")
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    sums = upload_folder(seaweed, inbox, bucket, "den/lo-09")
    downloads = Downloads(monkeypatch)
    archive, report_path = tmp_path / "archive", tmp_path / "report.json"
    code = main(["digitise", f"s3://{bucket}/den/lo-09/", "--archive", str(archive), "--report", str(report_path),
                 "--quiet"])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert code == digitised.exit_code == 3  # the broken files fail, as in the folder run
    assert report["batch"] == f"s3://{bucket}/den/lo-09/"
    statuses = _statuses(report)
    assert statuses.pop("big.png") == ("failed", "document_rejected")
    assert statuses == _statuses(digitised.report)
    big_error = next(d["error"] for d in report["documents"] if d["source"] == "big.png")
    assert "big.png: tệp 1.5 MB vượt giới hạn 1.0 MB (không tải về)" in big_error
    assert f"{bucket}/den/lo-09/big.png" not in downloads.names
    assert f"{bucket}/den/lo-09/nq_01.png" in downloads.names

    store = archive_store(Settings())
    originals: dict[str, str] = {}
    for doc in report["documents"]:
        if doc["status"] in ("done", "needs_review"):
            manifest = DocumentManifest.model_validate_json(store.get_bytes(manifest_key(doc["id"])))
            originals |= {f.key.removeprefix("original/"): f.sha256 for f in manifest.files if f.role == "original"}
    assert originals == {k: v for k, v in sums.items() if k.split("/")[0] in
                         {s for s, (status, _) in statuses.items() if status in ("done", "needs_review")}}
    secret = next(d for d in report["documents"] if d["source"] == "bc_03.pdf")
    entry = json.loads(store.get_bytes(f"{COPY_REGISTER}{secret['id']}.json"))
    assert entry["source"] == f"s3://{bucket}/den/lo-09/bc_03.pdf" and entry["batch"] == "lo-09"

    assert not any(scratch.iterdir())  # every downloaded original and work file is gone
    assert {p.name for p in archive.iterdir()} <= ARCHIVE_FOLDER_ALLOWED, sorted(p.name for p in archive.iterdir())

    # the same inbox again: everything already in the archive is skipped
    again = tmp_path / "again.json"
    assert main(["digitise", f"s3://{bucket}/den/lo-09", "--archive", str(archive), "--report", str(again),
                 "--quiet"]) == 3
    docs = json.loads(again.read_text(encoding="utf-8"))["documents"]
    assert all(d["skipped"] for d in docs if d["status"] != "failed")


@pytest.mark.slow
def test_a_read_only_folder_then_batch_add_an_s3_inbox(
    prefect_api: None, seaweed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scratch = use_servers(monkeypatch, seaweed, tmp_path, SOHOA_WORKERS="1")
    archive = tmp_path / "archive"
    # a mounted read-only share is a folder: the run writes nothing into it (root ignores chmod: compare instead)
    share = tmp_path / "share"
    share.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", share / "nq_01.png")
    (share / "batch.toml").write_text('title = "Hồ sơ thử"\nfonds = "Phông Thành ủy"\n', encoding="utf-8")
    before = snapshot(share)
    report = tmp_path / "share.json"
    assert main(["digitise", str(share), "--archive", str(archive), "--report", str(report), "--quiet"]) == 0
    assert snapshot(share) == before
    docs = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert [(d["source"], d["status"] in ("done", "needs_review"), d["skipped"]) for d in docs] == \
           [("nq_01.png", True, False)]
    assert not any(scratch.iterdir())

    # the same document and another one, from an S3 inbox, through the batch registry
    shutil.copy(SAMPLE_BATCH / "qd_05.jpg", share / "qd_05.jpg")
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    upload_folder(seaweed, share, bucket, "lo-10")
    capsys.readouterr()
    code = main(["batch", "add", f"s3://{bucket}/lo-10", "--when", "now", "--archive", str(archive), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    shown = json.loads(out.out)
    assert shown["folder"] == f"s3://{bucket}/lo-10/" and shown["state"] == "done", shown
    assert shown["title"] == "Hồ sơ thử" and shown["fonds"] == "Phông Thành ủy" and not shown["folder_missing"]
    assert sorted((d["source"], d["status"] in ("done", "needs_review")) for d in shown["documents"]) == \
           [("nq_01.png", True), ("qd_05.jpg", True)]
    assert shown["summary"]["skipped"] == 1  # nq_01.png: archived by the folder run, downloaded, hashed, skipped
    assert not any(scratch.iterdir())
    assert {p.name for p in archive.iterdir()} <= ARCHIVE_FOLDER_ALLOWED, sorted(p.name for p in archive.iterdir())
