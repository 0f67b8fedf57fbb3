"""``sohoa serve --work-pool`` end to end, as docker-compose runs it: a real ``prefect server start``, a one-shot
``sohoa serve --work-pool test-pool`` that creates the ``process`` work pool and registers the scheduled deployments
in it (twice: registering again updates them), and a real ``prefect worker start --pool test-pool --type process``
started in another folder, that runs the ``fixity_audit/fixity-audit`` deployment triggered through the API,
importing the flow from the installed package (module entrypoint). The audit report lands in the archive; every
process is gone afterwards (the worker is stopped with SIGINT). The worker runs with ``--with-healthcheck``, as in
docker-compose, and its health endpoint answers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from flows.local_api import free_port
from flows.prefect_env import OFFLINE_DEFAULTS
from flows.serve import start_server, wait_ready

BIN = Path(sys.executable).parent
POOL = "test-pool"
AUDIT = "fixity_audit/fixity-audit"
NIGHTLY = "nightly_digitisation/nightly-digitisation"


def _sigint_default() -> None:
    """In the child: a process started in the background (as CI starts us) inherits SIGINT ignored, and Python then
    never turns it into KeyboardInterrupt; the worker must stop on SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout_s: float) -> bool:
    """Send ``sig``; True if the process ended within ``timeout_s`` (else it is killed)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def _family(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read_deployments(api_url: str) -> dict[str, Any]:
    import asyncio

    from prefect.client.orchestration import PrefectClient

    async def go() -> dict[str, Any]:
        async with PrefectClient(api=api_url) as client:
            return {name: await client.read_deployment_by_name(name) for name in (AUDIT, NIGHTLY)}

    return asyncio.run(go())


@pytest.mark.slow
def test_work_pool_worker_runs_the_registered_fixity_audit(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    elsewhere = tmp_path / "worker-cwd"  # not the checkout: the flow must come from the installed package
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SOHOA_"))}
    env |= OFFLINE_DEFAULTS | {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    sohoa_env = env | {"PREFECT_API_URL": api, "SOHOA_ARCHIVE": str(archive),
                       "SOHOA_PREFECT_HOME": str(tmp_path / "prefect"), "SOHOA_WORKERS": "1",
                       "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    server = worker = None
    stopped: dict[str, bool] = {}
    leftovers: list[str] = []
    try:
        with server_log.open("wb") as out:
            server = start_server(port, env, stdout=out, stderr=out)
        wait_ready(api, server, 90.0)

        for attempt in (1, 2):  # the second registration updates the deployments in place
            done = subprocess.run([str(BIN / "sohoa"), "serve", "--work-pool", POOL], env=sohoa_env,
                                  cwd=elsewhere, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
            out_text = done.stdout.decode("utf-8", "replace")
            assert done.returncode == 0, (attempt, out_text, done.stderr.decode("utf-8", "replace")[-3000:])
            assert f"Đã đăng ký {AUDIT} vào hàng đợi công việc «{POOL}»" in out_text, out_text
            assert f"Đã đăng ký {NIGHTLY} vào hàng đợi công việc «{POOL}»" in out_text, out_text
        registered = _read_deployments(api)
        audit, nightly = registered[AUDIT], registered[NIGHTLY]
        assert audit.work_pool_name == nightly.work_pool_name == POOL
        assert audit.entrypoint == "flows.scheduled.fixity_audit"
        assert nightly.entrypoint == "flows.batches.nightly_digitisation"
        assert [s.schedule.cron for s in audit.schedules] == ["0 2 * * 0"]  # one schedule, not one per apply
        assert [s.schedule.cron for s in nightly.schedules] == ["*/15 0-5,22-23 * * *"]
        assert audit.parameters == {"archive": str(archive.resolve()), "sample": None}

        health_port = free_port()  # docker-compose's worker health check asks the same endpoint
        with worker_log.open("wb") as out:
            worker = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--with-healthcheck"],
                env=sohoa_env | {"PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                                 "PREFECT_WORKER_WEBSERVER_PORT": str(health_port)},
                cwd=elsewhere, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, preexec_fn=_sigint_default)

        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api}):
            run = run_deployment(AUDIT, timeout=90, poll_interval=1, as_subflow=False)
        log = worker_log.read_text(encoding="utf-8", errors="replace")
        assert run.state is not None and run.state.is_completed(), (run.state, log[-4000:])
        assert run.work_pool_name == POOL
        assert f"submitting flow run '{run.id}'" in log, log[-4000:]  # this worker ran it, from an empty folder
        reports = sorted((archive / "objects" / "audit" / "fixity").glob("*.json"))
        assert len(reports) == 1, reports
        report = json.loads(reports[0].read_text(encoding="utf-8"))
        assert report["documents_checked"] == 0 and report["problems"] == [] and report["finished_at"]
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/health", timeout=5) as resp:
            assert resp.status == 200
    finally:
        for name, proc, sig, timeout_s in (("worker", worker, signal.SIGINT, 40.0),
                                           ("server", server, signal.SIGTERM, 30.0)):
            if proc is None:
                continue
            family = _family(proc)
            stopped[name] = _stop(proc, sig, timeout_s)  # False: it had to be killed
            _, alive = psutil.wait_procs(family, timeout=15)
            leftovers += [f"{name}: {p.pid}" for p in alive if _alive(p)]
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert all(stopped.values()) and leftovers == [], (stopped, leftovers,
                                                       worker_log.read_text(errors="replace")[-3000:])


def test_work_pool_deployments_on_a_shared_database_leave_the_archive_to_each_hosts_worker(tmp_path: Path) -> None:
    """Registered in a work pool with ``SOHOA_DATABASE_URL``, the deployments carry no archive folder: each host's
    worker uses its own ``SOHOA_ARCHIVE`` (the registering host's path may not exist on the others). ``sohoa serve``
    on one host (``flow.serve``), or a pool on an embedded archive, keeps the path."""
    from pydantic import SecretStr

    from flows.scheduled import deployments
    from schemas.settings import Settings

    archive = tmp_path / "kho"
    shared = Settings(archive=archive, database_url=SecretStr("postgresql://sohoa@db.kho.local/sohoa"),
                      search_index="elasticsearch")
    embedded = Settings(archive=archive, database_url=None)
    params = {d.name: d.parameters for d in deployments(shared, by_module=True)}
    assert params == {"fixity-audit": {"archive": None, "sample": None}, "nightly-digitisation": {"archive": None}}
    for settings, by_module in ((shared, False), (embedded, True), (embedded, False)):
        for d in deployments(settings, by_module=by_module):
            assert d.parameters["archive"] == str(archive.resolve()), (d.name, by_module)
