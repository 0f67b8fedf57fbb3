"""S3 backend of the object store (MinIO, SeaweedFS, Ceph RGW, AWS S3) through the ``minio`` SDK.

Keys live in one bucket, under an optional prefix (``<prefix>/documents/<id>/...``). The guarantees are those of
``storage.objects.ObjectStore``:

* atomic: an S3 PUT (or a completed multipart upload) becomes visible only whole;
* verified: the source is hashed while it streams to the server and the upload is abandoned, storing nothing, if it
  does not hash to the caller's SHA-256. A single-part upload is checked by its ETag (the MD5 of what the server
  stored); a multipart upload (objects larger than ``part_size``) is read back and its SHA-256 recomputed. An upload
  that fails the check is deleted and ``ChecksumMismatch`` raised. The SHA-256 is recorded in the object's
  metadata (``x-amz-meta-sha256``), which ``recorded_sha256`` returns without reading the object;
* idempotent: a put whose SHA-256 equals the recorded one writes nothing; originals are write-once
  (``storage.layout.is_immutable``).

Faults: requests go through a urllib3 pool with explicit timeouts and no urllib3-level retries. Each operation is
retried by ``_call`` on connection errors, timeouts, HTTP 5xx/429 and "slow down"-type replies, ``retries`` times
with exponential backoff from ``backoff_s``; then ``StoreUnavailable`` is raised naming the endpoint. Refused
credentials (wrong access or secret key, missing permission) are not retried: they raise ``StoreAccessDenied``, a
``PermissionError`` (not a ``StoreUnavailable``: waiting will not fix a wrong key).

The store is thread-safe: the minio client and the urllib3 pool are, and the store keeps no mutable state.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, TypeVar

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import SSLError

from storage.layout import is_immutable
from storage.objects import (
    ChecksumMismatch,
    ImmutableObjectError,
    ObjectMissing,
    ObjectTooLarge,
    StoreAccessDenied,
    StoreUnavailable,
    safe_key,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK = 1 << 20
MIN_PART_SIZE = 5 << 20  # S3's minimum multipart part
DEFAULT_PART_SIZE = 16 << 20  # objects up to this size go in one PUT (verified by ETag), larger ones in parts
SHA256_META = "x-amz-meta-sha256"
CONNECT_TIMEOUT_S = 5.0

KeySizes = list[tuple[str, int]]  # (key, size in bytes)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_AUTH_CODES = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken", "ExpiredToken", "InvalidSecurity"}
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "SlowDownRead",
        "SlowDownWrite",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "OperationAborted",
        "XMinioServerNotInitialized",
        "XMinioReadQuorum",
        "XMinioWriteQuorum",
        "BadDigest",  # bytes damaged in transit: sending them again is the cure
        "XAmzContentSHA256Mismatch",
        "IncompleteBody",
    }
)


class _HashingReader:
    """Reads ``size`` bytes of ``stream`` for the minio SDK, hashing them on the way.

    When the last byte has been read the SHA-256 is compared with ``expected``; a mismatch raises
    ``ChecksumMismatch`` from inside the upload, before the final PUT (single part) or the completion of the
    multipart upload, so nothing becomes visible (the SDK aborts the multipart upload).
    """

    def __init__(self, stream: BinaryIO, size: int, key: str, expected: str) -> None:
        self._stream = stream
        self._left = size
        self._key = key
        self._expected = expected
        self._sha = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        if size == 0:
            self._check()

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(want)
        if not data:
            raise ChecksumMismatch(f"{self._key}: source ended {self._left} bytes early (changed while uploading?)")
        self._sha.update(data)
        self._md5.update(data)
        self._left -= len(data)
        if self._left == 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._sha.hexdigest() != self._expected:
            raise ChecksumMismatch(
                f"checksum mismatch writing {self._key}: source hashes to {self._sha.hexdigest()}, "
                f"expected {self._expected}"
            )

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


class S3ObjectStore:
    """Object store in an S3 bucket (``endpoint`` is ``host:port``, no scheme).

    With ``create_bucket`` (the default) the constructor talks to the server at once, creating the bucket if it is
    missing: a wrong key or an unreachable server shows at start-up (``StoreAccessDenied``/``StoreUnavailable``),
    not in the middle of a batch. ``part_size`` is the largest object sent in one PUT (and the part size above it);
    each put holds at most one part in memory.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        prefix: str = "",
        secure: bool = False,
        ca_file: Path | str | None = None,
        region: str | None = None,
        retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 60.0,
        create_bucket: bool = True,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("retries and backoff_s must be >= 0, timeout_s > 0")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = f"{safe_key(prefix)}/" if prefix else ""
        self.secure = secure
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.part_size = part_size
        self._region = region
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, timeout_s), read=timeout_s),
            retries=False,  # our own retry loop (_call) decides, with backoff and a clear final error
            maxsize=32,  # the pipeline puts from several threads at once
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(ca_file) if ca_file else certifi.where(),
        )
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        if create_bucket:
            self._call("tạo bucket", None, self._ensure_bucket)

    # --- plumbing -------------------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def _url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket, location=self._region)
        except S3Error as exc:
            # another process created it between our check and our create: that is what we wanted
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _call(self, what: str, key: str | None, op: Callable[[], T]) -> T:
        """Run ``op``, retrying transient faults; map S3 errors to the store's exceptions."""
        delay = self.backoff_s
        attempts = self.retries + 1
        last: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                return op()
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject") and key is not None:
                    raise ObjectMissing(key) from exc
                if exc.code == "NoSuchBucket":
                    raise StoreUnavailable(
                        f"Kho đối tượng S3 {self._url()}: bucket {self.bucket} không tồn tại "
                        "(tạo bucket hoặc bật tạo tự động)"
                    ) from exc
                if exc.code in _AUTH_CODES:
                    raise StoreAccessDenied(
                        f"Kho đối tượng S3 {self._url()} từ chối truy cập bucket {self.bucket} ({exc.code}): "
                        "kiểm tra access key và secret key (s3_access_key, s3_secret_key) và quyền của tài khoản"
                    ) from exc
                if not _transient(exc):
                    raise OSError(
                        f"Kho đối tượng S3 {self._url()}: {what} {key or ''} thất bại: {exc.code}: {exc.message}"
                    ) from exc
                last = exc
            except SSLError as exc:
                raise StoreUnavailable(
                    f"Kho đối tượng S3 {self._url()}: lỗi TLS ({exc}); kiểm tra s3_secure và s3_ca_file"
                ) from exc
            except (ServerError, InvalidResponseError) as exc:
                if not _transient(exc):
                    raise OSError(f"Kho đối tượng S3 {self._url()}: {what} {key or ''} thất bại: {exc}") from exc
                last = exc
            except (Urllib3HTTPError, ConnectionError, TimeoutError) as exc:
                last = exc
            if attempt < attempts:
                log.warning(
                    "S3 %s: %s %s thất bại (lần %d/%d): %s; thử lại sau %.1f s",
                    self._url(), what, key or "", attempt, attempts, _reason(last), delay,
                )
                time.sleep(delay + random.uniform(0, delay / 4))
                delay *= 2
        raise StoreUnavailable(
            f"Kho đối tượng S3 {self._url()} không truy cập được sau {attempts} lần thử: {_reason(last)}"
        ) from last

    def _stat(self, key: str) -> tuple[bool, str | None]:
        """(exists, recorded SHA-256)."""
        try:
            st = self._call("đọc thông tin", key, lambda: self._client.stat_object(self.bucket, self._name(key)))
        except ObjectMissing:
            return False, None
        value = st.metadata.get(SHA256_META) if st.metadata is not None else None  # case-insensitive headers
        value = value.strip().lower() if isinstance(value, str) else None
        return True, value if value and _HEX64.fullmatch(value) else None

    def _stream(self, name: str, sink: Callable[[bytes], object]) -> None:
        resp = self._client.get_object(self.bucket, name)
        try:
            for chunk in resp.stream(CHUNK, decode_content=False):  # the stored bytes, never decompressed
                sink(chunk)
        finally:
            resp.close()
            resp.release_conn()

    def _stream_sha256(self, name: str) -> str:
        h = hashlib.sha256()
        self._stream(name, h.update)
        return h.hexdigest()

    def _already(self, key: str, sha256: str) -> bool:
        """True when ``key`` already holds these bytes; refuses to change an existing original."""
        exists, recorded = self._stat(key)
        if not exists:
            return False
        if recorded is None:  # written by another tool, without our metadata: look at the bytes
            recorded = self.sha256(key)
        if recorded == sha256:
            return True
        if is_immutable(key):
            raise ImmutableObjectError(f"refusing to overwrite original {key} with different content")
        return False

    def _upload(self, key: str, opener: Callable[[], AbstractContextManager[BinaryIO]], sha256: str) -> None:
        name = self._name(key)
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"

        def attempt() -> None:
            with opener() as stream:
                size = stream.seek(0, io.SEEK_END)
                stream.seek(0)
                reader = _HashingReader(stream, size, key, sha256)
                result = self._client.put_object(
                    self.bucket,
                    name,
                    reader,  # type: ignore[arg-type]  # has read(), which is all the SDK uses
                    size,
                    content_type=content_type,
                    metadata={"sha256": sha256},
                    part_size=self.part_size,
                    num_parallel_uploads=1,  # memory stays at one part per put; callers parallelise across puts
                )
            etag = (result.etag or "").strip('"').lower()
            if etag == reader.md5:  # single part: the server stored exactly what we hashed
                return
            # multipart (ETag is not an MD5) or a server whose ETag is not the MD5: read back and compare
            if self._stream_sha256(name) != sha256:
                self._client.remove_object(self.bucket, name)
                raise ChecksumMismatch(f"checksum mismatch writing {key}: stored object differs, removed")

        self._call("ghi", key, attempt)

    # --- ObjectStore ----------------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path, sha256: str) -> None:
        self._name(key)  # validate before any request
        if self._already(key, sha256):
            return
        self._upload(key, lambda: source.open("rb"), sha256)

    def put_bytes(self, key: str, data: bytes) -> str:
        self._name(key)
        sha256 = hashlib.sha256(data).hexdigest()
        if self._already(key, sha256):
            return sha256
        self._upload(key, lambda: io.BytesIO(data), sha256)
        return sha256

    def get_bytes(self, key: str) -> bytes:
        name = self._name(key)

        def op() -> bytes:
            buf = bytearray()
            self._stream(name, buf.extend)
            return bytes(buf)

        return self._call("đọc", key, op)

    def get_file(self, key: str, dest: Path, *, max_bytes: int | None = None) -> None:
        """``ObjectStore.get_file``; with ``max_bytes``, the download stops with ``ObjectTooLarge`` (nothing left at
        ``dest``) as soon as more bytes arrive (an inbox object replaced by a larger one after it was listed)."""
        name = self._name(key)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")

        def op() -> None:
            written = 0
            with part.open("wb") as f:
                def sink(chunk: bytes) -> None:
                    nonlocal written
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
                    f.write(chunk)

                self._stream(name, sink)

        try:
            self._call("tải về", key, op)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)

    def sha256(self, key: str) -> str:
        name = self._name(key)
        return self._call("kiểm tra", key, lambda: self._stream_sha256(name))

    def recorded_sha256(self, key: str) -> str | None:
        return self._stat(key)[1]

    def exists(self, key: str) -> bool:
        return self._stat(key)[0]

    def list(self, prefix: str) -> Iterator[str]:
        folder = prefix.strip("/")
        folder = f"{safe_key(folder)}/" if folder else ""

        def op() -> list[str]:
            names = self._client.list_objects(self.bucket, prefix=self.prefix + folder, recursive=True)
            return [o.object_name for o in names if o.object_name and not o.is_dir and not o.object_name.endswith("/")]

        names = self._call("liệt kê", prefix or None, op)
        keys = [name[len(self.prefix):] for name in names]
        # same order as DirectoryObjectStore (path components), whatever order the server lists in
        return iter(sorted(keys, key=lambda k: k.split("/")))

    def list_sizes(self, prefix: str) -> KeySizes:
        """Keys under ``prefix`` with their sizes in bytes, from the listing alone (nothing is read), in ``list``
        order (an S3 inbox checks its size limits before downloading a byte)."""
        folder = prefix.strip("/")
        folder = f"{safe_key(folder)}/" if folder else ""

        def op() -> KeySizes:
            names = self._client.list_objects(self.bucket, prefix=self.prefix + folder, recursive=True)
            return [(o.object_name, int(o.size or 0)) for o in names
                    if o.object_name and not o.is_dir and not o.object_name.endswith("/")]

        found = [(name[len(self.prefix):], size) for name, size in self._call("liệt kê", prefix or None, op)]
        return sorted(found, key=lambda item: item[0].split("/"))

    def bucket_exists(self) -> bool:
        """Whether the bucket is there (a store built with ``create_bucket=False`` does not create it)."""
        return bool(self._call("đọc thông tin", None, lambda: self._client.bucket_exists(self.bucket)))

    def delete(self, key: str) -> None:
        name = self._name(key)
        self._call("xoá", key, lambda: self._client.remove_object(self.bucket, name))

    def locate(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def describe(self) -> str:
        where = f"{self._url()}/{self.bucket}"
        return f"S3 {where}/{self.prefix.rstrip('/')}" if self.prefix else f"S3 {where}"


def _transient(exc: Exception) -> bool:
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        return exc.code in _TRANSIENT_CODES or status >= 500 or status in (408, 429)
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code in (408, 429)
    if isinstance(exc, InvalidResponseError):  # e.g. an HTML 502 page from a proxy
        status = getattr(exc, "_code", 0) or 0
        return isinstance(status, int) and (status >= 500 or status in (408, 429))
    return False


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "?"
    text = str(exc) or type(exc).__name__
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}"
