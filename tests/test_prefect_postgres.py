"""Prefect's server on PostgreSQL (issue 23), started without Docker by ``tests/tools/prefect_server.py``.

A real ``prefect server start`` keeps its state in a database of the session's real PostgreSQL cluster (its tables
are there, no SQLite file is made) and asks for HTTP basic auth as docker-compose sets it (health probes stay open);
``sohoa serve --work-pool`` registers the scheduled deployments in a process
work pool on it; two real ``prefect worker start`` processes play two hosts (own folders, own Prefect homes, no
shared environment). One is SIGKILLed with everything it started; the server keeps answering, and a
``fixity_audit`` run triggered afterwards completes on the other host, recorded as COMPLETED in PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.tools.postgres import PostgresServer
from tests.tools.prefect_server import BIN, PrefectServer, PrefectWorkers, clean_environment

POOL = "pg-pool"
AUTH = "sohoa:khoa-kiem-thu-42"  # the API's basic auth, as docker-compose sets it
AUDIT = "fixity_audit/fixity-audit"
PREFECT_TABLES = {"alembic_version", "flow", "flow_run", "deployment", "work_pool", "worker", "log"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {str(r[0]) for r in rows}


def _workers_seen(url: str) -> set[str]:
    """The workers that have sent the server a heartbeat, as PostgreSQL holds them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT w.name FROM worker w JOIN work_pool p ON p.id = w.work_pool_id "
                            "WHERE p.name = %s", (POOL,)).fetchall()
    return {str(r[0]) for r in rows}


def _wait_for_workers(url: str, names: set[str], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not names <= _workers_seen(url):
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {names - _workers_seen(url)} never reached the server")
        time.sleep(0.5)


def _healthy(api_url: str) -> bool:
    with urllib.request.urlopen(api_url + "/health", timeout=10) as resp:
        return resp.status == 200


def _status_without_auth(api_url: str) -> int:
    try:
        with urllib.request.urlopen(f"{api_url}/work_pools/{POOL}", timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _register(api_url: str, archive: Path, folder: Path) -> None:
    """``sohoa serve --work-pool POOL``: the pool and the scheduled deployments, as docker-compose's deploy does."""
    folder.mkdir(parents=True, exist_ok=True)
    env = clean_environment(folder / "prefect-home", PREFECT_API_URL=api_url, PREFECT_API_AUTH_STRING=AUTH,
                            SOHOA_ARCHIVE=str(archive),
                            SOHOA_PREFECT_HOME=str(folder / "prefect-home"))
    done = subprocess.run([str(BIN / "sohoa"), "serve", "--work-pool", POOL], env=env, cwd=folder,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-3000:]


def _host_env(archive: Path, host: Path) -> dict[str, str]:
    return {"SOHOA_ARCHIVE": str(archive), "SOHOA_PREFECT_HOME": str(host / "prefect-home"), "SOHOA_WORKERS": "1"}


@pytest.mark.slow
def test_prefect_server_on_postgres_runs_a_flow_through_a_worker_and_survives_a_killed_one(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database(f"prefect_{tmp_path.name}".lower())
    archive = tmp_path / "archive"
    archive.mkdir()
    hosts = tmp_path / "hosts"
    with PrefectServer(url, tmp_path / "server", auth_string=AUTH) as server:
        assert _tables(url) >= PREFECT_TABLES, sorted(_tables(url))  # the migrations ran in PostgreSQL
        assert not [p for p in (tmp_path / "server").rglob("*.db")]  # and no SQLite database was made
        _register(server.api_url, archive, tmp_path / "deploy")
        assert _status_without_auth(server.api_url) == 401 and _healthy(server.api_url)  # probes stay open
        with PrefectWorkers(server.api_url, POOL, hosts, auth_string=AUTH) as workers:
            doomed = workers.start("host-a", _host_env(archive, hosts / "host-a"))
            survivor = workers.start("host-b", _host_env(archive, hosts / "host-b"))
            _wait_for_workers(url, {"host-a", "host-b"})
            family = [psutil.Process(doomed.process.pid), *psutil.Process(doomed.process.pid).children(True)]
            workers.kill("host-a")
            _, alive = psutil.wait_procs(family, timeout=15)
            assert alive == [] and doomed.process.returncode == -9
            assert server.process is not None and server.process.poll() is None and _healthy(server.api_url)

            from prefect.deployments import run_deployment
            from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: AUTH}):
                run = run_deployment(AUDIT, parameters={"archive": str(archive), "sample": None},
                                     timeout=180, poll_interval=1, as_subflow=False)
            assert run.state is not None and run.state.is_completed(), (run.state, survivor.log_text()[-4000:])
            assert f"submitting flow run '{run.id}'" in survivor.log_text()
            assert str(run.id) not in doomed.log_text()
            with psycopg.connect(url) as conn:
                state = conn.execute("SELECT state_type FROM flow_run WHERE id = %s", (run.id,)).fetchone()
            assert state is not None and state[0] == "COMPLETED"
            reports = sorted((archive / "objects" / "audit" / "fixity").glob("*.json"))
            assert len(reports) == 1 and json.loads(reports[0].read_text(encoding="utf-8"))["problems"] == []
            assert _healthy(server.api_url)
            stopped = workers.stop_all()
    assert stopped == {"host-a": True, "host-b": True}, survivor.log_text()[-3000:]  # SIGINT was enough
    assert server.stopped_cleanly, server.log_tail()
