"""The default user path: ``sohoa digitise`` with no Prefect server configured (embedded local API)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_BATCH

pytestmark = pytest.mark.slow


def prefect_servers_using(home: Path) -> list[int]:
    """Pids of Prefect API servers whose PREFECT_HOME is ``home``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"prefect.server.api.server:create_app" in cmdline and f"PREFECT_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def test_digitise_in_local_mode_as_a_user_would(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["SOHOA_PREFECT_HOME"] = str(tmp_path / "prefect-home")
    sohoa = Path(sys.executable).with_name("sohoa")
    report = tmp_path / "report.json"
    proc = subprocess.run([str(sohoa), "digitise", str(batch), "--archive", str(tmp_path / "archive"),
                           "--report", str(report)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 xong" in proc.stderr or "1 cần xem lại" in proc.stderr  # Vietnamese summary
    (doc,) = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert doc["status"] in ("done", "needs_review") and doc["pages"] == 1
    assert (tmp_path / "prefect-home" / "prefect.db").exists()  # the run was recorded by a real Prefect API
    assert not prefect_servers_using(tmp_path / "prefect-home")  # the local API was stopped
    # the run log keeps the start-up milestones: the first page entered OCR before it was read, Prefect came after
    run = json.loads((tmp_path / "archive" / "run-log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    marks = run["milestones"]
    assert run["started_at"] and 0 < marks["page_started"] <= marks["ocr_started"] <= marks["page_read"]
    assert marks["prefect_ready"] <= marks["flow_started"]
    assert set(run["milestones_cpu_s"]) == set(marks)
    again = subprocess.run([str(sohoa), "digitise", str(batch), "--archive", str(tmp_path / "archive"),
                            "--report", str(report)], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    (skipped,) = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert skipped["skipped"] and skipped["id"] == doc["id"]
    search = subprocess.run([str(sohoa), "search", "kinh te bien", "--archive", str(tmp_path / "archive"), "--json"],
                            env=env, capture_output=True, text=True, check=True)
    assert json.loads(search.stdout)["hits"][0]["id"] == doc["id"]
