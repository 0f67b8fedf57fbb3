"""Offline guarantee: a digitisation run (with Prefect's local API) and the web app make no connection that leaves
the machine and look up no outside name.

Every Python process of the run (the CLI, the Prefect API subprocess it starts, the web server) imports a socket
guard through ``sitecustomize``: a connect to a non-loopback address, a DNS lookup of a non-local name or a UDP
send outside the machine is recorded and refused. Tesseract, qpdf and Ghostscript do no networking. The offline
environment variables the test suite sets for itself are removed, so sohoa's own settings are what is tested.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from flows.local_api import free_port
from tests.conftest import SAMPLE_BATCH

pytestmark = pytest.mark.slow

GUARD = r'''
import ipaddress, os, socket

_LOG = os.environ["SOHOA_NET_GUARD_LOG"]
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "", None}


def _local(host):
    if host in _LOCAL_NAMES or host == socket.gethostname():
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _record(what):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {what}\n")


def _guard(sock, address, what):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _record(f"{what} {address!r}")
        raise OSError(101, "network is off (sohoa offline test guard)")


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    _guard(self, address, "connect")
    return _connect(self, address)


def connect_ex(self, address):
    _guard(self, address, "connect")
    return _connect_ex(self, address)


def sendto(self, data, *args):
    _guard(self, args[-1], "sendto")
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host if not isinstance(host, bytes) else host.decode()):
        _record(f"dns {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "name lookups are off (sohoa offline test guard)")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.getaddrinfo = getaddrinfo
'''

OFFLINE_VARIABLES = ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY",
                     "PREFECT_API_URL", "HF_HUB_OFFLINE")


def _guarded_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    log = tmp_path / "connections.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES and not k.startswith("PREFECT_")}
    env |= {"PYTHONPATH": os.pathsep.join([str(guard), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "SOHOA_NET_GUARD_LOG": str(log), "SOHOA_PREFECT_HOME": str(tmp_path / "prefect"),
            "OMP_THREAD_LIMIT": "1"}
    return env, log


def test_the_guard_catches_a_connection(tmp_path: Path) -> None:
    env, log = _guarded_env(tmp_path)
    code = ("import socket\ntry:\n    socket.create_connection(('93.184.216.34', 80), timeout=1)\n"
            "except OSError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "offline test guard" in out and "93.184.216.34" in log.read_text()


def _http(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with opener.open(url, data=body, timeout=30) as resp:
        return resp.status, resp.read()


def test_digitisation_and_web_app_never_leave_the_machine(tmp_path: Path) -> None:
    env, log = _guarded_env(tmp_path)
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    archive = tmp_path / "archive"
    sohoa = str(Path(sys.executable).parent / "sohoa")
    run = subprocess.run([sohoa, "digitise", str(batch), "--archive", str(archive),
                          "--report", str(tmp_path / "r.json"), "--quiet"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    doc_id = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["documents"][0]["id"]

    subprocess.run([sohoa, "user", "add", "lan", "--role", "archivist", "--password-stdin", "--archive", str(archive)],
                   env=env, input="mat-khau-ngoai-tuyen\n", text=True, check=True, capture_output=True)
    port = free_port()
    web = subprocess.Popen([sohoa, "web", "--archive", str(archive), "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        deadline = time.monotonic() + 60
        while True:
            try:
                _http(opener, base + "/healthz")
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, "sohoa web did not start"
                time.sleep(0.3)
        _, page = _http(opener, base + "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert token
        _http(opener, base + "/login", {"username": "lan", "password": "mat-khau-ngoai-tuyen",
                                        "csrf_token": token.group(1).decode(), "next": "/search"})
        status, results = _http(opener, base + "/search?q=kinh+te+bien")
        assert status == 200 and doc_id.encode() in results
        for path in (f"/documents/{doc_id}", f"/documents/{doc_id}/pages/1/image", f"/documents/{doc_id}/pdf",
                     "/static/style.css", "/docs", "/review"):
            assert _http(opener, base + path)[0] == 200, path
        for asset in re.findall(rb'(?:src|href)="(/[^"]+)"', _http(opener, base + "/docs")[1]):
            assert _http(opener, base + asset.decode())[0] == 200  # the API docs' own assets, served locally
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert log.read_text(encoding="utf-8") == "", "connections that would leave the machine:\n" + log.read_text()
