"""A throw-away PostgreSQL cluster (Debian's ``postgresql`` package) for tests and benchmarks.

    with PostgresServer() as pg:                  # initdb + start; stopped and deleted at the end
        url = pg.create_database("t1")            # postgresql://sohoa@127.0.0.1:PORT/t1
        ...
        pg.kill(); pg.start()                     # crash and come back: same data directory, same port

PostgreSQL refuses to run as root, so when the tests run as root (CI) the cluster belongs to ``nobody``: the data
directory is a fresh ``mkdtemp`` outside pytest's 0700 temp tree, owned by that user, and the server process is
started with ``user=``. It listens on 127.0.0.1 only (no Unix socket), trusts local connections (a test cluster
holds no data worth a password), and runs with ``fsync=off`` (a crash of the machine loses a test run, nothing else).

Run ``python -m tests.tools.postgres`` to start one by hand (prints the URL; Ctrl-C stops it).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
SUPERUSER = "sohoa"
START_TIMEOUT_S = 60.0
_RUN_AS = "nobody"

_live: set[PostgresServer] = set()


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has ``initdb`` and ``postgres`` (None when not installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql'): /usr/lib/postgresql/*/bin")
        self.bin_dir = found
        self.port = _free_port()
        self.datadir = Path(tempfile.mkdtemp(prefix="sohoa-pg-")) / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0

    # -- life cycle ------------------------------------------------------------------------------------------------
    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _user(self) -> dict[str, object]:
        if not self._as_root:
            return {}
        entry = pwd.getpwnam(_RUN_AS)
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def _initdb(self) -> None:
        root = self.datadir.parent
        if self._as_root:
            entry = pwd.getpwnam(_RUN_AS)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        subprocess.run([str(self.bin_dir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER, "--auth=trust",
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                       check=True, capture_output=True, cwd=root, **self._user())  # type: ignore[call-overload]

    def start(self) -> None:
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        log = open(self.datadir.parent / "server.log", "ab")  # noqa: SIM115 - the server's stdout for its lifetime
        self._proc = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.datadir), "-h", HOST, "-p", str(self.port),
             "-k", "", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.datadir.parent, start_new_session=True,
            **self._user())  # type: ignore[call-overload]
        log.close()
        _live.add(self)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start: {self.log_tail()}")
            ready = subprocess.run([str(self.bin_dir / "pg_isready"), "-h", HOST, "-p", str(self.port),
                                    "-U", SUPERUSER, "-d", "postgres"], capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not become ready in {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.datadir.parent / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server (a crash): the data directory stays, ``start()`` recovers it."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None
        _live.discard(self)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    # -- use ---------------------------------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


if __name__ == "__main__":
    with PostgresServer() as pg:
        print(pg.url(), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
