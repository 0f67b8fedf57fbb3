"""``sohoa serve`` end to end: a batch queued for tonight, a real ``sohoa serve`` process (which starts its own
``prefect server start``), and the ``nightly_digitisation/nightly-digitisation`` deployment triggered through that
server's API, as its schedule would. With the night window closed the run starts no document and the batch stays
queued; with a window around the current time (Asia/Ho_Chi_Minh) the run digitises the batch (on Dask, picked from
serve's environment at run time). Every process that ``serve`` started is gone once it is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest

from flows.prefect_env import OFFLINE_DEFAULTS
from interfaces.cli import main
from tests.conftest import SAMPLE_BATCH, catalogued

SOHOA = Path(sys.executable).with_name("sohoa")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEPLOYMENT = "nightly_digitisation/nightly-digitisation"
UI_LINE = re.compile(r"Giao diện Prefect: (http://127\.0\.0\.1:\d+)")


def window(start: datetime, end: datetime) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


def serve_env(tmp_path: Path, archive: Path) -> dict[str, str]:
    """The environment ``sohoa serve`` would have on an offline machine: no Prefect server configured (serve starts
    its own), Prefect's data under the test's folder, analytics off; the runner polls every second."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SOHOA_"))}
    env |= OFFLINE_DEFAULTS
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "SOHOA_PREFECT_HOME": str(tmp_path / "prefect"),
            "SOHOA_ARCHIVE": str(archive), "SOHOA_WORKERS": "1", "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING"}
    return env


@contextlib.contextmanager
def served(env: dict[str, str], log: Path, leftovers: list[str], started: list[str]) -> Iterator[str]:
    """A running ``sohoa serve``; yields its Prefect API URL. On exit it is stopped with SIGTERM (a SIGINT may be
    ignored by a process started in the background, as CI starts us) and every process it started must end by
    itself; ``leftovers`` gets any that did not (they, and the process group, are then killed). ``started`` gets
    the command lines of the processes it had running when it was stopped."""
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SOHOA), "serve"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            found = UI_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
            url = found.group(1) if found else None
            assert proc.poll() is None, f"sohoa serve exited: {log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"sohoa serve did not start: {log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.2)
        yield url + "/api"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            started += [_command(p) for p in family[1:] if _running(p)]
        proc.terminate()  # SIGTERM: Prefect's runner stops gracefully, then serve stops its server
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            leftovers.append(f"sohoa serve {proc.pid}")
        _, alive = psutil.wait_procs(family, timeout=20)
        leftovers += [f"{p.pid} {_command(p)}" for p in alive if _running(p)]
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _command(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.NoSuchProcess:
        return f"{p.pid} (ended)"


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def trigger_nightly(api_url: str, timeout_s: float = 100.0) -> tuple[Any, list[str]]:
    """Run the nightly deployment now through the serve's API and wait for the run to end; returns the flow run
    and the markdown of the artifacts it published."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments.flow_runs import arun_deployment

    async def go() -> tuple[Any, list[str]]:
        async with PrefectClient(api=api_url) as client:
            deadline = time.monotonic() + 60
            while True:  # serve registers its deployments once the server is up
                try:
                    await client.read_deployment_by_name(DEPLOYMENT)
                    break
                except Exception:
                    assert time.monotonic() < deadline, f"{DEPLOYMENT} was never registered"
                    await asyncio.sleep(0.5)
            run = await arun_deployment(DEPLOYMENT, client=client, timeout=timeout_s, poll_interval=1,
                                        as_subflow=False)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            return run, [str(a.data) for a in artifacts]

    return asyncio.run(go())


def batch_state(archive: Path, batch_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["batch", "show", batch_id, "--archive", str(archive), "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


@pytest.mark.slow
def test_serve_runs_the_queued_batch_only_inside_the_night_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    batch, archive = tmp_path / "lo-dem", tmp_path / "archive"
    batch.mkdir()
    for name in ("nq_01.png", "qd_05.jpg"):  # two one-page documents keep the night short
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    capsys.readouterr()
    assert main(["batch", "add", str(batch), "--when", "tonight", "--archive", str(archive), "--json"]) == 0
    batch_id = str(json.loads(capsys.readouterr().out)["id"])
    env = serve_env(tmp_path, archive)
    now = datetime.now(TZ)
    leftovers: list[str] = []
    started: list[str] = []

    # (b) the window is closed now: the run ends without starting a document, the batch stays queued
    closed = window(now + timedelta(hours=2), now + timedelta(hours=3))
    with served(env | {"SOHOA_NIGHT_WINDOW": closed}, tmp_path / "serve-closed.log", leftovers,
                started) as api:
        run, artifacts = trigger_nightly(api)
    assert leftovers == [], leftovers
    # serve's runner used the server serve started, not a temporary one of Prefect's own (uvicorn)
    assert any("prefect server start" in cmd for cmd in started) and not any("uvicorn" in c for c in started), started
    assert run.state is not None and run.state.is_completed(), run.state
    assert any(f"({closed}): 0 lô" in a for a in artifacts), artifacts
    shown = batch_state(archive, batch_id, capsys)
    assert shown["state"] == "queued" and shown["started_at"] is None
    assert {d["status"] for d in shown["documents"]} == {"pending"} and catalogued(archive) == 0

    # (a) a window around the current time in Hà Nội: the same deployment digitises the batch, its documents on the
    # Dask LocalCluster that the run starts (SOHOA_TASK_RUNNER is read inside the flow, from serve's environment)
    open_ = window(now - timedelta(hours=1), now + timedelta(hours=1))
    dask_tmp = tmp_path / "dask"
    with served(env | {"SOHOA_NIGHT_WINDOW": open_, "SOHOA_TASK_RUNNER": "dask",
                       "DASK_TEMPORARY_DIRECTORY": str(dask_tmp)}, tmp_path / "serve-open.log", leftovers,
                started) as api:
        run, artifacts = trigger_nightly(api)
        deadline = time.monotonic() + 60  # a scheduled quarter-hour run may have taken the batch instead
        while batch_state(archive, batch_id, capsys)["state"] != "done" and time.monotonic() < deadline:
            time.sleep(1)
    assert leftovers == [], leftovers
    assert run.state is not None and run.state.is_completed(), run.state
    shown = batch_state(archive, batch_id, capsys)
    assert shown["state"] == "done", shown
    summary = shown["summary"]
    assert summary["done"] + summary["needs_review"] == 2 and summary["failed"] == summary["pending"] == 0
    assert summary["pages"] == 2 and catalogued(archive) == 2
    assert (dask_tmp / "dask-scratch-space").is_dir()  # Dask workers ran (they keep their scratch space there)
