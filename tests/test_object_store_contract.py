"""The ObjectStore contract, run against every backend: the embedded directory store and S3 (a real SeaweedFS).

Each test gets an empty store: a fresh directory, or a fresh prefix in a bucket of one SeaweedFS server shared by
the session (fresh buckets would each cost SeaweedFS new volumes); the server is the ``seaweed`` fixture of
``conftest.py``.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from minio.error import S3Error, ServerError
from urllib3.exceptions import ProtocolError

from storage.objects import (
    ChecksumMismatch,
    DirectoryObjectStore,
    ImmutableObjectError,
    ObjectMissing,
    ObjectStore,
    StoreUnavailable,
)
from storage.objects_s3 import MIN_PART_SIZE, S3ObjectStore, StoreAccessDenied
from tests.conftest import require_weed
from tests.tools.seaweed import SeaweedServer

BUCKET = "contract"
ORIGINAL = "documents/x/original/Nghị quyết 15.pdf"  # NFC, as written in source
DERIVATIVE = "documents/x/document.pdf"
UNSAFE_KEYS = ["../escape", "/abs", "a//b", "a/./b", ""]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Backend:
    name: str
    store: ObjectStore
    tamper: Callable[[str, bytes], None]  # replace an object's bytes behind the store's back
    stamp: Callable[[str], object]  # changes whenever the object is (re)written
    leftovers: Callable[[], list[str]]  # half-written uploads / temp files
    settle: Callable[[], None] = field(default=lambda: None)  # let the stamp's clock tick


def directory_backend(root: Path) -> Backend:
    store = DirectoryObjectStore(root)

    def tamper(key: str, data: bytes) -> None:
        Path(store.locate(key)).write_bytes(data)

    def stamp(key: str) -> object:
        st = Path(store.locate(key)).stat()
        return st.st_mtime_ns, st.st_ino

    return Backend("directory", store, tamper, stamp, lambda: sorted(p.name for p in (root / ".incoming").iterdir()))


def s3_backend(server: SeaweedServer) -> Backend:
    prefix = f"t/{uuid.uuid4().hex[:12]}"
    store = server.store(bucket=BUCKET, prefix=prefix, retries=1, backoff_s=0.1)
    raw = server.minio()

    def tamper(key: str, data: bytes) -> None:
        name = f"{prefix}/{key}"
        recorded = raw.stat_object(BUCKET, name).metadata.get("x-amz-meta-sha256")
        raw.put_object(BUCKET, name, io.BytesIO(data), len(data), metadata={"sha256": recorded})

    def stamp(key: str) -> object:
        st = raw.stat_object(BUCKET, f"{prefix}/{key}")
        return st.etag, st.last_modified

    def leftovers() -> list[str]:
        return [u.object_name for u in raw._list_multipart_uploads(BUCKET, prefix=prefix + "/").uploads]

    return Backend("s3", store, tamper, stamp, leftovers, settle=lambda: time.sleep(1.1))  # Last-Modified: 1 s


@pytest.fixture(params=["directory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "directory":
        return directory_backend(tmp_path / "objects")
    return s3_backend(request.getfixturevalue("seaweed"))


# --- the contract, for every backend --------------------------------------------------------------------------


def test_round_trip_bytes_and_files(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    binary = bytes(range(256)) * 17 + b"\x00\r\n\x1a"
    assert store.put_bytes("documents/x/pages/0001.hocr", binary) == sha(binary)
    assert store.get_bytes("documents/x/pages/0001.hocr") == binary
    assert store.put_bytes("documents/x/empty.txt", b"") == sha(b"")
    assert store.get_bytes("documents/x/empty.txt") == b""

    src = tmp_path / "scan.pdf"
    src.write_bytes(b"%PDF-1.7 scan \x00\xff" * 1000)
    store.put_file(ORIGINAL, src, sha(src.read_bytes()))
    assert store.exists(ORIGINAL)
    assert store.get_bytes(ORIGINAL) == src.read_bytes()
    assert store.sha256(ORIGINAL) == store.recorded_sha256(ORIGINAL) == sha(src.read_bytes())
    dest = tmp_path / "out" / "copy.pdf"
    dest.parent.mkdir()
    store.get_file(ORIGINAL, dest)
    assert dest.read_bytes() == src.read_bytes()
    assert os.listdir(dest.parent) == ["copy.pdf"]  # no temp file left beside it
    assert ORIGINAL in store.locate(ORIGINAL)
    assert backend.leftovers() == []


def test_large_file_round_trip(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "big.tif"
    src.write_bytes(os.urandom((9 << 20) + 12345))  # > 8 MiB
    digest = sha(src.read_bytes())
    backend.store.put_file("documents/big/original/big.tif", src, digest)
    dest = tmp_path / "big-copy.tif"
    backend.store.get_file("documents/big/original/big.tif", dest)
    assert sha(dest.read_bytes()) == digest
    assert backend.store.sha256("documents/big/original/big.tif") == digest
    assert backend.store.recorded_sha256("documents/big/original/big.tif") == digest


def test_vietnamese_keys_round_trip_unchanged(backend: Backend) -> None:
    key = unicodedata.normalize("NFC", "documents/Tỉnh ủy Hà Tĩnh/original/Nghị quyết số 15-NQ ĐHĐB.pdf")
    backend.store.put_bytes(key, "Độc lập – Tự do – Hạnh phúc".encode())
    (listed,) = backend.store.list("documents/")
    assert listed == key and unicodedata.is_normalized("NFC", listed)
    assert backend.store.get_bytes(key).decode() == "Độc lập – Tự do – Hạnh phúc"


def test_reput_of_same_bytes_writes_nothing(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    src = tmp_path / "scan.tif"
    src.write_bytes(b"original bytes \x00\x01")
    store.put_file(ORIGINAL, src, sha(src.read_bytes()))
    store.put_bytes(DERIVATIVE, b"pdf v1")
    before = backend.stamp(ORIGINAL), backend.stamp(DERIVATIVE)
    backend.settle()
    store.put_file(ORIGINAL, src, sha(src.read_bytes()))
    store.put_bytes(ORIGINAL, src.read_bytes())
    store.put_bytes(DERIVATIVE, b"pdf v1")
    assert (backend.stamp(ORIGINAL), backend.stamp(DERIVATIVE)) == before
    assert store.get_bytes(ORIGINAL) == src.read_bytes()
    assert backend.leftovers() == []


def test_wrong_checksum_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    with pytest.raises(ChecksumMismatch):
        store.put_file("documents/x/a.bin", src, "0" * 64)
    assert not store.exists("documents/x/a.bin")
    assert list(store.list("")) == []
    # a bad replacement leaves the previous object as it was
    store.put_bytes(DERIVATIVE, b"good")
    with pytest.raises(ChecksumMismatch):
        store.put_file(DERIVATIVE, src, sha(b"something else"))
    assert store.get_bytes(DERIVATIVE) == b"good"
    assert backend.leftovers() == []


def test_originals_are_immutable_derivatives_are_not(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    store.put_bytes(ORIGINAL, b"scan v1")
    with pytest.raises(ImmutableObjectError):
        store.put_bytes(ORIGINAL, b"scan v2")
    other = tmp_path / "other.pdf"
    other.write_bytes(b"scan v2")
    with pytest.raises(ImmutableObjectError):
        store.put_file(ORIGINAL, other, sha(b"scan v2"))
    assert store.get_bytes(ORIGINAL) == b"scan v1"
    assert store.recorded_sha256(ORIGINAL) == sha(b"scan v1")

    store.put_bytes(DERIVATIVE, b"pdf v1")
    store.put_file(DERIVATIVE, other, sha(b"scan v2"))
    assert store.get_bytes(DERIVATIVE) == b"scan v2"
    assert store.recorded_sha256(DERIVATIVE) == sha(b"scan v2")


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(backend: Backend, tmp_path: Path, key: str) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    store = backend.store
    for call in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, src, sha(b"x")),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert list(store.list("")) == []


def test_list_is_sorted_recursive_and_filtered_by_folder(backend: Backend) -> None:
    keys = [
        "documents/abcd/x.txt",
        "audit/fixity/2025-01-01T00-00-00Z.json",
        "documents/abc/pages/0001.txt",
        "documents/abc-2/x.txt",
        "documents/abc/original/scan.tif",
        "documents/abc/document.json",
        "documents/ab-c/x.txt",
    ]
    for k in keys:
        backend.store.put_bytes(k, k.encode())
    # path order (component by component), as DirectoryObjectStore sorts: abc/ before abc-2/
    assert list(backend.store.list("")) == [
        "audit/fixity/2025-01-01T00-00-00Z.json",
        "documents/ab-c/x.txt",
        "documents/abc/document.json",
        "documents/abc/original/scan.tif",
        "documents/abc/pages/0001.txt",
        "documents/abc-2/x.txt",
        "documents/abcd/x.txt",
    ]
    in_abc = ["documents/abc/document.json", "documents/abc/original/scan.tif", "documents/abc/pages/0001.txt"]
    assert list(backend.store.list("documents/abc")) == in_abc  # a folder: not abcd/ nor abc-2/
    assert list(backend.store.list("documents/abc/")) == in_abc
    assert list(backend.store.list("audit/")) == ["audit/fixity/2025-01-01T00-00-00Z.json"]
    assert list(backend.store.list("nothing/")) == []


def test_sha256_detects_a_byte_flipped_behind_the_store(backend: Backend) -> None:
    data = b"Bien ban hop \x00" * 500
    backend.store.put_bytes(ORIGINAL, data)
    assert backend.store.sha256(ORIGINAL) == sha(data)
    flipped = bytearray(data)
    flipped[1234] ^= 0x01
    backend.tamper(ORIGINAL, bytes(flipped))
    assert backend.store.sha256(ORIGINAL) == sha(bytes(flipped)) != sha(data)
    if backend.name == "s3":  # the checksum recorded at write time is kept apart from the bytes
        assert backend.store.recorded_sha256(ORIGINAL) == sha(data)


def test_missing_objects(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    with pytest.raises(ObjectMissing):
        store.get_bytes("documents/none/document.json")
    with pytest.raises(ObjectMissing):
        store.sha256("documents/none/document.json")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ObjectMissing):
        store.get_file("documents/none/document.json", out / "dest.json")
    assert os.listdir(out) == []  # neither the destination nor a temp file
    assert store.recorded_sha256("documents/none/document.json") is None
    assert not store.exists("documents/none/document.json")
    store.delete("documents/none/document.json")  # no error
    store.put_bytes("documents/x/pages/0001.txt", b"trang 1")
    assert not store.exists("documents/x") and not store.exists("documents/x/pages")  # folders are not objects
    with pytest.raises(ObjectMissing):
        store.get_bytes("documents/x/pages")
    assert store.recorded_sha256("documents/x/pages") is None


def test_delete(backend: Backend) -> None:
    backend.store.put_bytes("documents/x/pages/0001.txt", b"trang 1")
    backend.store.put_bytes("documents/x/pages/0002.txt", b"trang 2")
    backend.store.delete("documents/x/pages/0001.txt")
    assert not backend.store.exists("documents/x/pages/0001.txt")
    with pytest.raises(ObjectMissing):
        backend.store.get_bytes("documents/x/pages/0001.txt")
    assert list(backend.store.list("documents/")) == ["documents/x/pages/0002.txt"]
    backend.store.delete("documents/x/pages/0001.txt")


def test_concurrent_puts_from_8_threads(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    shared = tmp_path / "shared.tif"
    shared.write_bytes(os.urandom(300_000))
    shared_sha = sha(shared.read_bytes())
    start = threading.Barrier(8)

    def work(i: int) -> None:
        start.wait()
        store.put_file("documents/shared/original/shared.tif", shared, shared_sha)  # everyone, same bytes
        for j in range(5):
            store.put_bytes(f"documents/d{i}/pages/{j:04d}.txt", f"luồng {i} trang {j}".encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    keys = list(store.list("documents/"))
    assert len(keys) == 8 * 5 + 1
    assert store.sha256("documents/shared/original/shared.tif") == shared_sha
    for i in range(8):
        for j in range(5):
            assert store.get_bytes(f"documents/d{i}/pages/{j:04d}.txt") == f"luồng {i} trang {j}".encode()
    assert backend.leftovers() == []


def test_describe(backend: Backend) -> None:
    text = backend.store.describe()
    assert text
    if isinstance(backend.store, S3ObjectStore):
        assert text.startswith("S3 http://127.0.0.1:") and f"/{BUCKET}/t/" in text
        assert backend.store.locate("documents/x/a.pdf").startswith(f"s3://{BUCKET}/t/")
        assert backend.store.locate("documents/x/a.pdf").endswith("/documents/x/a.pdf")


# --- S3 only -----------------------------------------------------------------------------------------------------


def test_s3_multipart_upload_is_read_back_and_verified(seaweed: SeaweedServer, tmp_path: Path) -> None:
    backend = s3_backend(seaweed)
    prefix = backend.store.prefix  # type: ignore[attr-defined]
    store = seaweed.store(bucket=BUCKET, prefix=prefix, part_size=MIN_PART_SIZE)
    src = tmp_path / "big.tif"
    src.write_bytes(os.urandom(MIN_PART_SIZE * 2 + 777))  # three parts
    digest = sha(src.read_bytes())
    store.put_file("documents/big/original/big.tif", src, digest)
    assert "-" in str(backend.stamp("documents/big/original/big.tif"))  # multipart ETag: "<md5>-3"
    assert store.recorded_sha256("documents/big/original/big.tif") == digest
    assert store.sha256("documents/big/original/big.tif") == digest
    with pytest.raises(ChecksumMismatch):
        store.put_file("documents/big/original/other.tif", src, "f" * 64)
    assert not store.exists("documents/big/original/other.tif")
    assert backend.leftovers() == []  # the multipart upload was aborted


def test_s3_upload_damaged_on_the_way_is_removed(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_backend(seaweed).store
    assert isinstance(store, S3ObjectStore)
    store.put_bytes(DERIVATIVE, b"pdf v1")
    real_put = store._client.put_object

    def damaging_put(bucket: str, name: str, data: Any, length: int, **kw: Any) -> Any:
        body = bytearray(data.read(length))  # the store's reader: hashes what it hands over
        body[0] ^= 0x01  # ...and the server receives something else
        return real_put(bucket, name, io.BytesIO(bytes(body)), length, **kw)

    monkeypatch.setattr(store._client, "put_object", damaging_put)
    with pytest.raises(ChecksumMismatch):
        store.put_bytes(DERIVATIVE, b"pdf v2")
    monkeypatch.undo()
    assert not store.exists(DERIVATIVE)  # the damaged upload is removed, not left to be trusted


def _s3_error(code: str, status: int) -> S3Error:
    return S3Error(SimpleNamespace(status=status), code, code, "/b/k", None, None)  # type: ignore[arg-type]


def test_s3_transient_faults_are_retried_permanent_ones_are_not(
    seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seaweed.store(bucket=BUCKET, prefix=f"t/{uuid.uuid4().hex[:12]}", retries=2, backoff_s=0.01)
    store.put_bytes(DERIVATIVE, b"pdf")
    real_stat = store._client.stat_object
    faults: list[Exception] = []
    calls = []

    def flaky(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if faults:
            raise faults.pop(0)
        return real_stat(*args, **kw)

    monkeypatch.setattr(store._client, "stat_object", flaky)
    faults[:] = [ProtocolError("Connection aborted."), _s3_error("SlowDown", 503)]
    assert store.recorded_sha256(DERIVATIVE) == sha(b"pdf")  # third attempt
    assert len(calls) == 3

    faults[:] = [ServerError("server failed with HTTP status code 500", 500)] * 3
    with pytest.raises(StoreUnavailable, match="không truy cập được sau 3 lần thử: ServerError"):
        store.exists(DERIVATIVE)

    for permanent, expected in ((_s3_error("AccessDenied", 403), StoreAccessDenied), (_s3_error("X", 400), OSError)):
        calls.clear()
        faults[:] = [permanent]
        with pytest.raises(expected):
            store.exists(DERIVATIVE)
        assert len(calls) == 1  # not retried


def test_s3_without_prefix_and_bucket_creation_race(seaweed: SeaweedServer) -> None:
    bucket = f"race-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: seaweed.store(bucket=bucket), range(4)))
    stores[0].put_bytes("documents/a/document.json", b"{}")
    assert list(stores[3].list("")) == ["documents/a/document.json"]
    assert stores[1].locate("documents/a/document.json") == f"s3://{bucket}/documents/a/document.json"
    assert stores[2].describe() == f"S3 http://{seaweed.endpoint}/{bucket}"

    lost = seaweed.store(bucket=f"missing-{uuid.uuid4().hex[:8]}", create_bucket=False, retries=0)
    with pytest.raises(StoreUnavailable, match="missing-"):
        lost.get_bytes("documents/a/document.json")


@pytest.mark.parametrize("who", ["secret", "access"])
def test_s3_wrong_credentials_fail_fast_with_a_clear_error(seaweed: SeaweedServer, who: str) -> None:
    wrong: dict[str, Any] = {"secret_key": "sai-mat-khau"} if who == "secret" else {"access_key": "khong-co"}
    t0 = time.monotonic()
    with pytest.raises(StoreAccessDenied, match="secret key"):
        seaweed.store(bucket=BUCKET, retries=4, backoff_s=1.0, **wrong)  # would take 15 s if it retried
    lazy = seaweed.store(bucket=BUCKET, create_bucket=False, retries=4, backoff_s=1.0, **wrong)
    with pytest.raises(StoreAccessDenied) as info:
        lazy.put_bytes("documents/x/document.json", b"{}")
    assert time.monotonic() - t0 < 3
    assert isinstance(info.value, PermissionError) and not isinstance(info.value, StoreUnavailable)
    assert seaweed.secret_key not in str(info.value) and "sai-mat-khau" not in str(info.value)


def test_s3_hung_or_killed_server_then_restart(tmp_path: Path) -> None:
    require_weed()
    with SeaweedServer(tmp_path / "sw") as server:
        store = server.store(retries=1, backoff_s=0.1)
        store.put_bytes(ORIGINAL, b"scan")  # the first write to a new bucket can take a second (volume growth)
        store.put_bytes(DERIVATIVE, b"pdf")
        impatient = server.store(retries=1, backoff_s=0.1, timeout_s=0.5, create_bucket=False)
        assert impatient.get_bytes(ORIGINAL) == b"scan"

        server.freeze()  # accepts connections, never answers: read timeouts
        t0 = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable, match=f"{server.endpoint} không truy cập được sau 2 lần thử"):
                impatient.get_bytes(ORIGINAL)
        finally:
            server.thaw()
        assert time.monotonic() - t0 < 5
        assert impatient.get_bytes(ORIGINAL) == b"scan"

        server.kill()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match=f"{server.endpoint} không truy cập được sau 2 lần thử"):
            store.put_bytes("documents/x/pages/0001.txt", b"trang 1")
        with pytest.raises(StoreUnavailable):
            store.exists(ORIGINAL)
        assert time.monotonic() - t0 < 3

        server.restart()
        assert store.get_bytes(ORIGINAL) == b"scan"
        assert store.sha256(DERIVATIVE) == store.recorded_sha256(DERIVATIVE) == sha(b"pdf")
        store.put_bytes("documents/x/pages/0001.txt", b"trang 1")
        assert list(store.list("documents/x/")) == [
            "documents/x/document.pdf",
            ORIGINAL,
            "documents/x/pages/0001.txt",
        ]
