"""``kill -9`` of a digitisation run in the middle of a batch, then a re-run: every document exactly once in the
store, the catalog and the index, no orphan files, no process left behind. A real subprocess, really killed."""

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

from flows.cli import main
from tests.conftest import SAMPLE_BATCH, catalogued

SOHOA = Path(sys.executable).with_name("sohoa")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_mid_batch_then_rerun_completes_exactly_once(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    shutil.copytree(SAMPLE_BATCH, batch)
    archive = tmp_path / "archive"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "SOHOA_OBJECT_STORE": "directory"}
    cmd = [str(SOHOA), "digitise", str(batch), "--archive", str(archive), "--workers", "1", "--quiet"]
    run = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while catalogued(archive) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)  # the worker dies mid-batch, mid-document
    run.wait()
    before = catalogued(archive)
    assert 2 <= before < 5, "the run must be killed in the middle of the batch"
    deadline = time.monotonic() + 60  # its children (tesseract, Prefect's local API) must not linger
    while group_alive(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(run.pid), "processes of the killed run are still running"

    report = tmp_path / "again.json"
    again = subprocess.run([*cmd[:-1], "--report", str(report), "--quiet"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    docs = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert len(docs) == 5 and {d["status"] for d in docs} <= {"done", "needs_review"}
    assert sum(d["skipped"] for d in docs) >= before  # what was done before the crash is not done again
    assert catalogued(archive) == 5
    with sqlite3.connect(archive / "catalog.sqlite") as conn:
        assert conn.execute("SELECT count(DISTINCT source) FROM documents").fetchone()[0] == 5
    assert main(["verify", "--archive", str(archive)]) == 0  # no missing, unexpected or orphan objects or entries
    assert not list((archive / "work").iterdir())  # the crashed run's scratch folders are gone
    assert not list((archive / "objects" / ".incoming").iterdir())  # and its half-written objects
