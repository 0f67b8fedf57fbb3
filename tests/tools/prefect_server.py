"""A Prefect server on PostgreSQL and Prefect process workers, started without Docker, for tests.

    url = postgres.create_database("prefect_t1")               # the ``postgres`` fixture (tests/tools/postgres.py)
    with PrefectServer(url, tmp_path / "server", auth_string="u:pw") as server:  # ``prefect server start``
        with PrefectWorkers(server.api_url, "pool", tmp_path / "hosts", auth_string="u:pw") as workers:
            workers.start("host-a", {"SOHOA_ARCHIVE": ...})  # ``prefect worker start --pool pool --type process``
            workers.start("host-b")
            workers.kill("host-a")                             # SIGKILL: the host is gone, its flow runs too

The server is the same ``prefect server start`` that ``sohoa serve`` starts (``flows.serve.start_server``), with
its database set by ``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…`` (Prefect's documented setting;
migrations run at start). Every worker plays a separate host: its own working folder, its own ``PREFECT_HOME``,
no ``PREFECT_*``/``SOHOA_*`` inherited from the test process, and its own process group, so ``kill`` takes the
worker and the flow-run subprocesses it started down together, as a power cut would. Everything still running is
stopped at the end (workers with SIGINT, which a process worker honours, the server with SIGTERM; SIGKILL to the
process group after a grace period), so no process outlives the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import psutil

from flows.local_api import free_port
from flows.prefect_env import OFFLINE_DEFAULTS
from flows.serve import start_server, wait_ready

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180.0  # a cold start runs every migration on an empty database (2 shared cores)
DATABASE_SETTING = "PREFECT_API_DATABASE_CONNECTION_URL"


def asyncpg_url(url: str) -> str:
    """``postgresql://user@host:port/db`` as SQLAlchemy's asyncpg URL, which Prefect's server needs."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme):]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def clean_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``PREFECT_*``/``SOHOA_*`` (a fresh host), offline, with its own
    Prefect home, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SOHOA_"))}
    return env | OFFLINE_DEFAULTS | {"PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "INFO"} | extra


def _sigint_default() -> None:
    """In the child: a process started in the background inherits SIGINT ignored; a worker must stop on it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Every process ``proc`` started, recursively (a flow run may sit in a session of its own)."""
    try:
        return list(psutil.Process(proc.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def kill_tree(proc: subprocess.Popen[bytes], family: list[psutil.Process]) -> None:
    """SIGKILL ``proc``'s process group and ``family`` (its descendants, listed while it was alive)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.wait()
    psutil.wait_procs(family, timeout=15)


def stop_group(proc: subprocess.Popen[bytes], sig: int, grace_s: float) -> bool:
    """Send ``sig`` to ``proc``; True when it ended within ``grace_s``. Its process group and descendants are
    SIGKILLed after, either way (the children it started: flow runs, uvicorn)."""
    ended = True
    family = descendants(proc)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            ended = False
    kill_tree(proc, family)
    return ended


class PrefectServer:
    """``prefect server start`` on 127.0.0.1:<free port> with its database in PostgreSQL ``database_url``."""

    def __init__(self, database_url: str, folder: Path, *, auth_string: str | None = None,
                 timeout_s: float = START_TIMEOUT_S) -> None:
        self.database_url = database_url
        self.auth_string = auth_string  # "user:password": HTTP basic auth on the API, as docker-compose sets it
        self.folder = folder
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log = folder / "server.log"
        self.timeout_s = timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped_cleanly: bool | None = None

    def environment(self) -> dict[str, str]:
        extra = {DATABASE_SETTING: asyncpg_url(self.database_url)}
        if self.auth_string:
            extra["PREFECT_SERVER_API_AUTH_STRING"] = self.auth_string
        return clean_environment(self.folder / "prefect-home", **extra)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:  # start_server: own session, dies with this process even on kill -9
            self.process = start_server(self.port, self.environment(), stdout=out, stderr=out, cwd=self.folder)
        try:
            wait_ready(self.api_url, self.process, self.timeout_s)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"Prefect server did not start: {exc}\n{self.log_tail()}") from exc

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            self.stopped_cleanly = stop_group(self.process, signal.SIGTERM, 30.0)
            self.process = None

    def __enter__(self) -> PrefectServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Worker:
    """One ``prefect worker start`` playing one host."""

    def __init__(self, name: str, folder: Path, process: subprocess.Popen[bytes]) -> None:
        self.name, self.folder, self.process = name, folder, process
        self.log = folder / "worker.log"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


class PrefectWorkers:
    """Process workers of work pool ``pool`` on the server at ``api_url``, each in ``base/<name>``."""

    def __init__(self, api_url: str, pool: str, base: Path, *, auth_string: str | None = None) -> None:
        self.api_url, self.pool, self.base, self.auth_string = api_url, pool, base, auth_string
        self.workers: dict[str, Worker] = {}

    def environment(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        folder = self.base / name
        if self.auth_string:
            extra = {"PREFECT_API_AUTH_STRING": self.auth_string, **(extra or {})}
        # tests poll every second (a flow run is picked up at once); ``extra`` may set Prefect's defaults back
        polling = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
        return clean_environment(folder / "prefect-home", PREFECT_API_URL=self.api_url, **(polling | (extra or {})))

    def start(self, name: str, extra_env: dict[str, str] | None = None, *, limit: int | None = None) -> Worker:
        """Start worker ``name`` (its environment: a fresh host's, ``PREFECT_API_URL``, then ``extra_env``);
        ``limit``: at most that many flow runs at a time (``--limit``), so the others are left to other workers."""
        folder = self.base / name
        (folder / "scratch").mkdir(parents=True, exist_ok=True)
        env = self.environment(name, {"TMPDIR": str(folder / "scratch"), **(extra_env or {})})
        with (folder / "worker.log").open("ab") as out:
            proc = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", self.pool, "--type", "process", "--name", name,
                 *(["--limit", str(limit)] if limit else [])],
                env=env, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, preexec_fn=_sigint_default)
        self.workers[name] = worker = Worker(name, folder, proc)
        return worker

    def kill(self, name: str) -> None:
        """SIGKILL worker ``name`` and everything it started: the host is gone."""
        proc = self.workers[name].process
        kill_tree(proc, descendants(proc))

    def stop_all(self) -> dict[str, bool]:
        """Stop every worker still running (SIGINT, 40 s grace); name → whether it stopped by itself."""
        return {name: stop_group(w.process, signal.SIGINT, 40.0) for name, w in self.workers.items()}

    def __enter__(self) -> PrefectWorkers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()
