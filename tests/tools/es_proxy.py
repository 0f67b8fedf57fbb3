"""A header-rewriting HTTP proxy in front of the Elasticsearch stand-in (osmem), for tests whose ES clients run in
other processes (Prefect workers, ``sohoa`` subprocesses).

The official client sends ``application/vnd.elasticsearch+json; compatible-with=N`` as Accept/Content-Type; osmem
answers those with 406 and takes plain ``application/json``. In-process tests pass ``node_class`` to the client
(``tests/conftest.py``, ``Osmem.node_class``); a process started by a worker cannot be patched, so it is pointed at
this proxy instead (``SOHOA_ES_URL=proxy.url``), which rewrites exactly those two headers and forwards everything
else (method, path, body, the answer's status, headers and body) untouched. Test-only: production talks to a real
Elasticsearch.

    with EsHeaderProxy(osmem.url) as proxy:
        env["SOHOA_ES_URL"] = proxy.url
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_VENDOR = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)(;\s*compatible-with=\d+)?")
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "host"}


def plain_media_type(value: str) -> str:
    """``application/vnd.elasticsearch+json; compatible-with=9`` → ``application/json`` (others unchanged)."""
    return _VENDOR.sub(r"application/\1", value)


class EsHeaderProxy:
    """Listens on 127.0.0.1:<free port> and forwards every request to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        target = urllib.parse.urlsplit(upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        self.requests = 0  # forwarded so far (a test can see its clients really went through here)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: (plain_media_type(v) if k.lower() in ("accept", "content-type") else v)
                           for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(host, port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for key, value in resp.getheaders():
                        if key.lower() not in _HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()
                proxy.requests += 1

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="es-header-proxy", daemon=True)

    def __enter__(self) -> EsHeaderProxy:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
