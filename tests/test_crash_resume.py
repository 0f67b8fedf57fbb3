"""``kill -9`` of a digitisation run at named points in the middle of a batch, then a re-run: every document exactly
once in the store, the catalog and the index, no orphan files, no process left behind. A real subprocess, really
killed — by itself, deterministically: ``SOHOA_FAULT_KILL_AT=<point>:<n>`` (``flows.faults``) SIGKILLs the process
at the n-th hit of the point, so no poll has to catch a moment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interfaces.cli import main
from tests.conftest import SAMPLE_BATCH, catalogued

SOHOA = Path(sys.executable).with_name("sohoa")
DOCUMENTS = ("nq_01.png", "kh_02.tif", "qd_05.jpg")  # 3 documents, 4 pages


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stored_without_manifest(archive: Path) -> list[Path]:
    documents = archive / "objects" / "documents"
    folders = [d for d in documents.iterdir() if d.is_dir()] if documents.is_dir() else []
    return [d for d in folders if not (d / "document.json").exists()]


def _manifests_not_catalogued(archive: Path) -> set[str]:
    documents = archive / "objects" / "documents"
    stored = {d.name for d in documents.iterdir() if (d / "document.json").exists()} if documents.is_dir() else set()
    with sqlite3.connect(f"file:{archive / 'catalog.sqlite'}?mode=ro", uri=True) as conn:
        listed = {row[0] for row in conn.execute("SELECT id FROM documents")}
    return stored - listed


def _scratch(work: Path) -> list[Path]:
    return [p for d in work.iterdir() for p in ([d, *d.rglob("*")] if d.is_dir() else [d])] if work.is_dir() else []


# point:n -> what must be on disk right after the kill (evidence the run died exactly there)
POINTS = {
    "ocr:2": "scratch",  # the second page's OCR images are written, tesseract not started
    "store:3": "objects",  # three objects of a document stored, no manifest
    "pdfa:2": "pdf",  # the PDF/A half written in the scratch folder
    "catalog:1": "manifest",  # a manifest stored, the catalog transaction not begun
    "index:1": "manifest",  # inside the catalog+index transaction, at a full-text row: rolled back
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
def test_kill_9_at_a_named_point_then_rerun_completes_exactly_once(point: str, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in DOCUMENTS:
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    archive = tmp_path / "archive"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "SOHOA_"))}
    scratch = tmp_path / "scratch"  # the run's local scratch (SOHOA_SCRATCH_DIR), outside the archive
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "SOHOA_OBJECT_STORE": "directory",
            "SOHOA_SCRATCH_DIR": str(scratch)}
    cmd = [str(SOHOA), "digitise", str(batch), "--archive", str(archive), "--workers", "1", "--quiet"]
    run = subprocess.Popen(cmd, env={**env, "SOHOA_FAULT_KILL_AT": point}, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = run.communicate(timeout=600)
    assert run.returncode == -signal.SIGKILL, f"the run was not killed at {point}: {err.decode()[-2000:]}"
    before = catalogued(archive)
    assert before < len(DOCUMENTS)
    evidence = POINTS[point]
    if evidence == "scratch":
        assert any(p.suffix == ".pgm" for p in _scratch(scratch))
    elif evidence == "objects":
        assert _stored_without_manifest(archive)
    elif evidence == "pdf":
        assert any(p.name == "document.pdf" for p in _scratch(scratch))
    else:
        assert _manifests_not_catalogued(archive)
    deadline = time.monotonic() + 60  # its children (tesseract, Prefect's local API) must not linger
    while group_alive(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(run.pid), "processes of the killed run are still running"

    report = tmp_path / "again.json"
    again = subprocess.run([*cmd[:-1], "--report", str(report), "--quiet"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    docs = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert sorted(d["source"] for d in docs) == sorted(DOCUMENTS)
    assert {d["status"] for d in docs} <= {"done", "needs_review"}
    assert sum(d["skipped"] for d in docs) >= before  # what was done before the crash is not done again
    assert catalogued(archive) == len(DOCUMENTS)
    with sqlite3.connect(archive / "catalog.sqlite") as conn:
        assert conn.execute("SELECT count(DISTINCT source) FROM documents").fetchone()[0] == len(DOCUMENTS)
    assert main(["verify", "--archive", str(archive)]) == 0  # no missing, unexpected or orphan objects or entries
    assert not list(scratch.iterdir())  # the crashed run's scratch folders are gone (its process is dead)
    assert not (archive / "work").exists()  # nothing of it was ever in the archive
    assert not list((archive / "objects" / ".incoming").iterdir())  # and its half-written objects
