"""The production stack on one machine without Docker (issue 23): two hosts share one night, one is SIGKILLed.

Real components only: the session's PostgreSQL cluster (two databases: sohoa's catalog/registry/queue/accounts/
audit trail, and the Prefect server's), SeaweedFS as the S3 object store, the Elasticsearch stand-in (osmem, behind
``tests.tools.es_proxy`` because the workers' clients cannot be patched), a ``prefect server start`` on PostgreSQL
and two ``prefect worker start`` process workers (``--limit 1``) playing two hosts: each its own folder, Prefect
home, TMPDIR, ``SOHOA_ARCHIVE`` and ``SOHOA_HOST_ID``; no shared archive folder. What they share is what hosts share
in production: the settings (database URL, S3, ES), the audit key (a file outside both archive folders, like a
mounted secret) and the scan folder (read-only, like a mounted share).

The deployments are registered by ``sohoa serve --work-pool``; the batch by ``sohoa batch add --when tonight``;
the work is done by flow runs of the ``nightly-digitisation`` deployment, as the scheduler starts them (the window
is set to the whole day). Host A starts first; once it holds a claim, host B comes up and joins the run; once both
hold claims, host A is SIGKILLed with everything it started. Host B finishes the batch; a document A held is taken
over once its lease (5 s) has run out, in B's own run (B, left with nothing to claim, waits for it). Then: every
document is catalogued once, stored once (its originals byte-identical to the scans), indexed once; the batch is
``done``; ``sohoa verify`` and ``sohoa audit verify`` are clean on every host (also on the dead host's folder and on
one that never wrote); the web app built from the same settings finds and opens the documents.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import SAMPLE_BATCH
from tests.tools.es_proxy import EsHeaderProxy
from tests.tools.postgres import PostgresServer
from tests.tools.prefect_server import BIN, PrefectServer, PrefectWorkers, clean_environment
from tests.tools.seaweed import SeaweedServer

POOL = "kho-chung"
AUTH = "sohoa:khoa-may-chu-prefect"
NIGHTLY = "nightly_digitisation/nightly-digitisation"
TIMEOUT_S = 600.0  # the whole night, on 2 shared cores


def shared_settings(db_url: str, seaweed: SeaweedServer, es_url: str, tag: str, key_file: Path) -> dict[str, str]:
    """What every host of the archive is configured with (docker-compose's shared environment)."""
    return {
        "SOHOA_DATABASE_URL": db_url, "SOHOA_OBJECT_STORE": "s3", "SOHOA_S3_ENDPOINT": seaweed.endpoint,
        "SOHOA_S3_ACCESS_KEY": seaweed.access_key, "SOHOA_S3_SECRET_KEY": seaweed.secret_key,
        "SOHOA_S3_BUCKET": "sohoa", "SOHOA_S3_PREFIX": tag, "SOHOA_SEARCH_INDEX": "elasticsearch",
        "SOHOA_ES_URL": es_url, "SOHOA_ES_INDEX": f"sohoa-{tag}", "SOHOA_AUDIT_KEY_FILE": str(key_file),
        "SOHOA_LEASE_S": "5", "SOHOA_WORKERS": "1", "SOHOA_NIGHT_WINDOW": "00:00-00:00", "OMP_THREAD_LIMIT": "1",
    }


def host_settings(shared: dict[str, str], hosts: Path, name: str) -> dict[str, str]:
    folder = hosts / name
    return shared | {"SOHOA_ARCHIVE": str(folder / "archive"), "SOHOA_HOST_ID": name,
                     "SOHOA_PREFECT_HOME": str(folder / "prefect-home")}


def sohoa(env: dict[str, str], folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``sohoa ARGS`` on a host configured by ``env`` only (nothing of this process's SOHOA_*/PREFECT_*)."""
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run([str(BIN / "sohoa"), *args], env=clean_environment(folder / "prefect-home", **env),
                          cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` without write permission for anyone (a read-only share); restored afterwards for clean-up."""
    dirs = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    files = [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        p.chmod(0o444)
    for d in dirs:
        d.chmod(0o555)
    try:
        yield folder
    finally:
        for d in dirs:
            d.chmod(0o755)
        for p in files:
            p.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)


def claims(db_url: str, batch_id: str) -> list[tuple[str, str, str | None, int]]:
    """The batch's work items as the queue holds them: (source, state, worker, attempts)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT source, state, worker, attempts FROM work_items WHERE batch_id = %s "
                            "ORDER BY position", (batch_id,)).fetchall()
    return [(str(r[0]), str(r[1]), r[2], int(r[3])) for r in rows]


def batch_state(db_url: str, batch_id: str) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT state FROM batches WHERE id = %s", (batch_id,)).fetchone()
    assert row is not None
    return str(row[0])


def wait_for(what: str, check: Any, timeout_s: float = TIMEOUT_S, logs: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs() if logs else ''}")
        time.sleep(0.3)
    return found


def holding(db_url: str, batch_id: str, host: str) -> list[str]:
    return [s for s, state, worker, _ in claims(db_url, batch_id)
            if state == "claimed" and (worker or "").startswith(f"{host}:")]


class Night:
    """Flow runs of the nightly deployment on the Prefect server, as its schedule starts them."""

    def __init__(self, server: PrefectServer) -> None:
        self.server = server
        self.runs: list[Any] = []

    def trigger(self) -> Any:
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url, PREFECT_API_AUTH_STRING: AUTH}):
            run = run_deployment(NIGHTLY, timeout=0, as_subflow=False)  # scheduled now; a worker picks it up
        self.runs.append(run)
        return run

    def state(self, run_id: Any) -> str:
        with psycopg.connect(self.server.database_url) as conn:
            row = conn.execute("SELECT state_type FROM flow_run WHERE id = %s", (run_id,)).fetchone()
        return str(row[0]) if row and row[0] else "?"


def _checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_stored_once(seaweed: SeaweedServer, tag: str, ids: dict[str, str], batch: Path) -> None:
    """One document folder per catalogued id in the bucket, each with the scan's bytes as its original."""
    store = seaweed.store(bucket="sohoa", prefix=tag)
    keys = list(store.list("documents/"))
    folders = {k.split("/")[1] for k in keys}
    assert folders == set(ids.values()), (sorted(folders), ids)
    manifests = [k for k in keys if k.endswith("/document.json")]
    assert len(manifests) == len(ids)
    for source, doc_id in ids.items():
        scan = batch / source
        expected = _checksums(scan) if scan.is_dir() else {source: hashlib.sha256(scan.read_bytes()).hexdigest()}
        prefix = f"documents/{doc_id}/original/"
        stored = {k[len(prefix):]: hashlib.sha256(store.get_bytes(k)).hexdigest() for k in keys if k.startswith(prefix)}
        if scan.is_dir():  # a folder document keeps its folder
            stored = {k.removeprefix(f"{source}/"): v for k, v in stored.items()}
        assert stored == expected, (source, sorted(stored), sorted(expected))


def assert_indexed_once(es_url: str, tag: str, ids: dict[str, str]) -> None:
    body = json.dumps({"size": 100, "query": {"match_all": {}}}).encode()
    request = urllib.request.Request(f"{es_url}/sohoa-{tag}/_search", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        hits = json.loads(resp.read())["hits"]["hits"]
    indexed = sorted(str(h["_source"].get("id", h["_id"])) for h in hits)
    assert indexed == sorted(ids.values()), indexed


def in_process_settings(env: dict[str, str]) -> Any:
    """The same settings for code running in this process (the web app): ``SOHOA_X=v`` → ``Settings(x=v)``."""
    from schemas.settings import Settings

    return Settings(**{k.removeprefix("SOHOA_").lower(): v for k, v in env.items() if k.startswith("SOHOA_")})


def assert_web_finds_and_opens(env: dict[str, str], ids: dict[str, str]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from interfaces.web import add_user, create_app
    from interfaces.web.config import WebSettings
    from tests.test_web import hit_ids, login

    settings = in_process_settings(env)
    add_user(settings, "arch", "kho-luu-tru-tang-ba", "archivist", clearance=1)  # may see the Mật report
    add_user(settings, "staff", "mat-khau-can-bo", "staff")
    with TestClient(create_app(settings, WebSettings())) as client:
        login(client, "arch", "kho-luu-tru-tang-ba")
        for source, number in (("kh_02.tif", "84-KH/TU"), ("bc_03.pdf", "312-BC/BTCTU"), ("cv_04", "1457-CV/VPTU")):
            page = client.get("/search", params={"q": number})
            assert page.status_code == 200 and hit_ids(page.text)[:1] == [ids[source]], (number, hit_ids(page.text))
        for doc_id in ids.values():
            assert client.get(f"/documents/{doc_id}").status_code == 200
        staff = login(TestClient(client.app), "staff", "mat-khau-can-bo")  # clearance 0: the Mật report stays hidden
        secret = ids["bc_03.pdf"]
        assert secret not in hit_ids(staff.get("/search", params={"q": "312-BC/BTCTU"}).text)
        assert staff.get(f"/documents/{secret}").status_code == 404
        assert staff.get(f"/documents/{ids['kh_02.tif']}").status_code == 200


def start_night(stack: dict[str, Any], workers: PrefectWorkers, night: Night, batch_id: str) -> str:
    """Host A starts on the batch; host B comes up and joins; once both hold claims host A is SIGKILLed.
    Returns the documents A held when it died."""
    db_url, hosts, shared = stack["db_url"], stack["hosts"], stack["shared"]
    doomed = workers.start("host-a", host_settings(shared, hosts, "host-a"), limit=1)
    night.trigger()
    wait_for("host A's first claim", lambda: holding(db_url, batch_id, "host-a"), logs=doomed.log_text)
    survivor = workers.start("host-b", host_settings(shared, hosts, "host-b"), limit=1)
    night.trigger()
    wait_for("host B's first claim while host A holds one",
             lambda: holding(db_url, batch_id, "host-b") and holding(db_url, batch_id, "host-a"),
             logs=lambda: doomed.log_text()[-3000:] + survivor.log_text()[-3000:])
    workers.kill("host-a")
    assert doomed.process.returncode == -9
    held = holding(db_url, batch_id, "host-a")  # frozen now: nobody renews them, nobody completes them
    assert held, claims(db_url, batch_id)
    return held[0]


def finish_night(stack: dict[str, Any], workers: PrefectWorkers, night: Night, batch_id: str) -> None:
    """Host B's run ends the batch: left with nothing to claim, it waits for A's claim to run out (nobody renews it),
    takes the document over and records the outcome — in the same run, not a later scheduled one."""
    db_url = stack["db_url"]
    survivor = workers.workers["host-b"]
    run_id = night.runs[-1].id
    wait_for(f"flow run {run_id} to end",
             lambda: night.state(run_id) in ("COMPLETED", "FAILED", "CRASHED"),
             logs=lambda: survivor.log_text()[-4000:])
    assert night.state(run_id) == "COMPLETED", survivor.log_text()[-4000:]
    assert batch_state(db_url, batch_id) != "running", claims(db_url, batch_id)


def catalogued_ids(db_url: str) -> dict[str, str]:
    """source → document id, as the shared catalog holds them (every source once)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT source, id FROM documents ORDER BY source").fetchall()
    sources = [str(r[0]) for r in rows]
    assert len(sources) == len(set(sources)), sources
    return {str(r[0]): str(r[1]) for r in rows}


@pytest.mark.slow
def test_two_hosts_share_one_night_and_a_sigkilled_host_loses_nothing_and_duplicates_nothing(
    postgres: PostgresServer, seaweed: SeaweedServer, osmem: Any, tmp_path: Path,
) -> None:
    tag = f"prod-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12]}"
    db_url = postgres.create_database(tag.replace("-", "_"))
    prefect_db = postgres.create_database(f"prefect_{tag.replace('-', '_')}")
    share, hosts = tmp_path / "share", tmp_path / "hosts"
    batch = share / "lo-dem"
    shutil.copytree(SAMPLE_BATCH, batch)
    (tmp_path / "secrets").mkdir()
    key_file = tmp_path / "secrets" / "audit.key"  # mounted on every host, outside their archive folders
    with EsHeaderProxy(osmem.url) as proxy, read_only(share), \
            PrefectServer(prefect_db, tmp_path / "server", auth_string=AUTH) as server:
        shared = shared_settings(db_url, seaweed, proxy.url, tag, key_file)
        stack = {"db_url": db_url, "hosts": hosts, "shared": shared}
        office = host_settings(shared, hosts, "office")  # the archivist's machine: registers, verifies
        api = {"PREFECT_API_URL": server.api_url, "PREFECT_API_AUTH_STRING": AUTH}
        done = sohoa(office | api, hosts / "office", "serve", "--work-pool", POOL)
        assert done.returncode == 0, done.stderr[-3000:]
        added = sohoa(office, hosts / "office", "batch", "add", str(batch), "--when", "tonight", "--json")
        assert added.returncode == 0, added.stderr[-3000:]
        batch_id = str(json.loads(added.stdout)["id"])
        night = Night(server)
        with PrefectWorkers(server.api_url, POOL, hosts, auth_string=AUTH) as workers:
            held = start_night(stack, workers, night, batch_id)
            finish_night(stack, workers, night, batch_id)
            stopped = workers.stop_all()
        assert stopped["host-b"], workers.workers["host-b"].log_text()[-3000:]
        assert night.state(night.runs[0].id) != "COMPLETED"  # host A's run died with it
        assert_the_night_is_exactly_once(stack, batch_id, held, batch, seaweed, tag, proxy.url)
        for host in ("host-c", "office", "host-a", "host-b"):  # every host sees the same clean archive
            assert_clean_on(host_settings(shared, hosts, host), hosts / host)
        assert not list((hosts / "host-b").rglob("catalog.sqlite"))  # nothing of the catalog on a host
        assert_web_finds_and_opens(office, catalogued_ids(db_url))
        assert proxy.requests > 0


def assert_clean_on(env: dict[str, str], folder: Path) -> None:
    """``sohoa audit verify`` then ``sohoa verify`` on a host. ``host-c`` is a host that never wrote anything, so
    it has no ``audit.anchor`` of its own: the shared trail is vouched for by the store's anchor (``verify``
    appends, so it comes second)."""
    fresh = not (folder / "archive" / "audit.anchor").exists()
    audited = sohoa(env, folder, "audit", "verify", "--json")
    assert audited.returncode == 0, (folder.name, fresh, audited.stdout[-3000:], audited.stderr[-3000:])
    result = json.loads(audited.stdout)
    assert result["problems"] == [] and result["entries"] >= 1
    checked = sohoa(env, folder, "verify", "--json")
    assert checked.returncode == 0, (folder.name, checked.stdout[-3000:], checked.stderr[-3000:])
    assert json.loads(checked.stdout)["problems"] == []
    if folder.name == "host-c":
        assert fresh


def assert_the_night_is_exactly_once(stack: dict[str, Any], batch_id: str, held: str, batch: Path,
                                     seaweed: SeaweedServer, tag: str, es_url: str) -> None:
    db_url = stack["db_url"]
    sources = sorted(p.name for p in batch.iterdir() if p.name != "batch.toml")
    ids = catalogued_ids(db_url)
    assert sorted(ids) == sources
    items = {s: (state, worker, attempts) for s, state, worker, attempts in claims(db_url, batch_id)}
    assert sorted(items) == sources and all(state == "finished" for state, _, _ in items.values()), items
    assert items[held][1].startswith("host-b:") and items[held][2] == 2, items  # taken over once, by B
    by_host = {str(worker).split(":")[0] for _, worker, _ in items.values()}
    assert by_host <= {"host-a", "host-b"} and "host-b" in by_host, items
    assert batch_state(db_url, batch_id) == "done"
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT summary FROM batches WHERE id = %s", (batch_id,)).fetchone()
    assert row is not None
    summary = json.loads(row[0])
    assert (summary["done"] + summary["needs_review"], summary["failed"], summary["pending"]) == (5, 0, 0)
    assert summary["pages"] == 8, summary  # every page once: the dead host's claim counted none
    assert_stored_once(seaweed, tag, ids, batch)
    assert_indexed_once(es_url, tag, ids)
