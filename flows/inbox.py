"""Where a batch is read from: a folder (local, or a mounted read-only share) or an S3 "inbox" prefix (issue 23).

A batch source is named by a string: a folder path, or ``s3://bucket/prefix/`` on the inbox S3 server (the
``inbox_s3_*`` settings, else the ``s3_*`` ones; ``flows.wiring.inbox_store``). Both have the folder's batch
semantics (``pipeline.load.discover_documents``): each object directly under the prefix is a document file, each
"sub-folder" a document of page images (natural name order); hidden names (``.x``) and ``NOT_DOCUMENTS`` are
skipped; ``batch.toml`` is read from the prefix. Keys that cannot be names in a folder (empty, ``.``/``..``
components) are not documents, and objects deeper than a document's sub-folder are not pages (as a folder's
sub-sub-folders are not).

An inbox document is listed with its objects and their sizes only; it is downloaded into the worker's local scratch
(``storage.scratch``) just before it is digitised (``fetched``), after its size limits are checked from the listing,
and removed after. Nothing is ever written into a batch source.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.wiring import inbox_store, settings_key
from pipeline.load import NOT_DOCUMENTS, Limits, discover_documents, number_documents, parse_batch_info, read_batch_info
from schemas.document import BatchInfo, DocumentSource, RemoteFile
from schemas.errors import ConfigError, LimitExceededError, UnsupportedFileError
from schemas.settings import Settings
from schemas.text import natural_key
from storage.objects import ObjectMissing, ObjectTooLarge
from storage.scratch import new_work_dir

if TYPE_CHECKING:
    from storage.objects_s3 import S3ObjectStore

S3_SCHEME = "s3://"
BATCH_FILE = "batch.toml"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket names (no user:password@, no host)
MAX_BATCH_FILE_BYTES = 1 << 20  # a batch.toml is a few lines: a larger object is refused, never downloaded


@dataclass(frozen=True)
class InboxPrefix:
    bucket: str
    prefix: str  # "" or "a/b", no "/" at either end

    @property
    def url(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}/" if self.prefix else f"{S3_SCHEME}{self.bucket}/"

    @property
    def name(self) -> str:
        """The batch's name (as a folder's name): the prefix's last component, else the bucket."""
        return self.prefix.rsplit("/", 1)[-1] if self.prefix else self.bucket


def is_inbox(spec: str | Path) -> bool:
    """Whether a batch source names an S3 inbox prefix (``s3://…``) rather than a folder."""
    return isinstance(spec, str) and spec.startswith(S3_SCHEME)


def parse_inbox(spec: str) -> InboxPrefix:
    bucket, _, prefix = spec[len(S3_SCHEME):].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or any(part in ("", ".", "..") for part in (prefix.split("/") if prefix else [])):
        raise ConfigError(f"Địa chỉ lô không hợp lệ: {spec}", fix="dùng s3://BUCKET/THƯ_MỤC/ (vd. s3://inbox/lo-01/)")
    return InboxPrefix(bucket, prefix)


_stores: dict[tuple[str, str, str], S3ObjectStore] = {}
_stores_lock = threading.Lock()


def _store(inbox: InboxPrefix, settings: Settings) -> S3ObjectStore:
    """The inbox prefix's store (one per process, settings and prefix); ``ConfigError`` when the bucket is missing."""
    key = (settings_key(settings), inbox.bucket, inbox.prefix)
    with _stores_lock:
        store = _stores.get(key)
    if store is None:
        store = inbox_store(settings, bucket=inbox.bucket, prefix=inbox.prefix)
        if not store.bucket_exists():
            raise ConfigError(f"Không tìm thấy bucket «{inbox.bucket}» của lô {inbox.url} ({store.describe()})",
                              fix="kiểm tra tên bucket, hoặc SOHOA_INBOX_S3_ENDPOINT / SOHOA_S3_ENDPOINT")
        with _stores_lock:
            store = _stores.setdefault(key, store)
    return store


def _listing(inbox: InboxPrefix, settings: Settings) -> list[tuple[str, int]]:
    listing = _store(inbox, settings).list_sizes("")
    if not listing:
        raise ConfigError(f"Không có tệp nào dưới {inbox.url}: thư mục lô không tồn tại hoặc rỗng",
                          fix="kiểm tra lại địa chỉ lô (s3://BUCKET/THƯ_MỤC/) và rằng các tệp quét đã được tải lên")
    return listing


def _documents(inbox: InboxPrefix, listing: list[tuple[str, int]]) -> list[DocumentSource]:
    """The documents of a listing, by the folder rules (module docstring), in natural name order, not numbered."""
    found: dict[str, tuple[str, list[RemoteFile]]] = {}
    for key, size in listing:
        parts = key.split("/")
        name = parts[0]
        if any(p in ("", ".", "..") or "\x00" in p for p in parts) or name.startswith(".") \
                or name.lower() in NOT_DOCUMENTS:
            continue
        if len(parts) == 1:
            found.setdefault(name, ("file", [RemoteFile(key=key, bytes=size)]))
            continue
        kind, pages = found.setdefault(name, ("folder", []))
        if kind == "folder" and len(parts) == 2 and not parts[1].startswith("."):
            pages.append(RemoteFile(key=key, bytes=size))
    return [DocumentSource(source=name, kind=kind, files=[], inbox=inbox.url,  # type: ignore[arg-type]
                           remote=sorted(pages, key=lambda f: natural_key(f.key.split("/")[1])) if kind == "folder"
                           else pages)
            for name, (kind, pages) in sorted(found.items(), key=lambda item: natural_key(item[0]))]


def _batch_toml(inbox: InboxPrefix, listing: list[tuple[str, int]], settings: Settings) -> bytes | None:
    size = dict(listing).get(BATCH_FILE)
    if size is None:
        return None
    if size > MAX_BATCH_FILE_BYTES:
        raise ConfigError(f"{inbox.url}{BATCH_FILE}: {size} byte, quá lớn cho một tệp thông tin hồ sơ",
                          fix="sửa batch.toml (vài dòng TOML: file_code, title, order)")
    return _store(inbox, settings).get_bytes(BATCH_FILE)


def batch_toml(spec: str | Path, settings: Settings) -> bytes | None:
    """The batch's ``batch.toml`` bytes, None when it has none."""
    if is_inbox(spec):
        inbox = parse_inbox(str(spec))
        return _batch_toml(inbox, _listing(inbox, settings), settings)
    path = Path(spec) / BATCH_FILE
    return path.read_bytes() if path.is_file() else None


def batch_info(spec: str | Path, settings: Settings) -> BatchInfo:
    """The batch's ``batch.toml`` (``pipeline.load.read_batch_info``), from a folder or an inbox prefix."""
    if not is_inbox(spec):
        return read_batch_info(Path(spec))
    inbox = parse_inbox(str(spec))
    data = _batch_toml(inbox, _listing(inbox, settings), settings)
    return BatchInfo() if data is None else parse_batch_info(data, where=f"{inbox.url}{BATCH_FILE}")


def batch_documents(spec: str | Path, settings: Settings) -> list[DocumentSource]:
    """The documents of a batch (``discover_documents`` for a folder), numbered by its ``batch.toml``."""
    if not is_inbox(spec):
        return discover_documents(Path(spec).resolve())
    inbox = parse_inbox(str(spec))
    listing = _listing(inbox, settings)
    data = _batch_toml(inbox, listing, settings)
    info = BatchInfo() if data is None else parse_batch_info(data, where=f"{inbox.url}{BATCH_FILE}")
    return number_documents(_documents(inbox, listing), info.order)


def batch_label(spec: str | Path) -> str:
    """The batch as reports show it: the folder's absolute path, or ``s3://bucket/prefix/``."""
    return parse_inbox(str(spec)).url if is_inbox(spec) else str(Path(spec).resolve())


def batch_name(spec: str | Path) -> str:
    """The batch's name (recorded with its documents): the folder's name, or the prefix's last component."""
    return parse_inbox(str(spec)).name if is_inbox(spec) else Path(spec).resolve().name


def check_remote(doc: DocumentSource, limits: Limits) -> None:
    """The limits an inbox document's listing tells (object sizes, pages of a folder document), before any byte
    is downloaded; raises ``DocumentError`` naming the object."""
    if doc.kind == "folder" and len(doc.remote) > limits.max_pages:
        raise LimitExceededError(f"{doc.source}/: {len(doc.remote)} trang vượt giới hạn {limits.max_pages} trang "
                                 "một văn bản (chưa tải về)", fix="tách tài liệu hoặc tăng SOHOA_MAX_DOCUMENT_PAGES")
    for item in doc.remote:
        if item.bytes > limits.max_file_bytes:
            raise LimitExceededError(f"{item.key}: tệp {item.bytes / 2**20:.1f} MB vượt giới hạn "
                                     f"{limits.max_file_bytes / 2**20:.1f} MB (không tải về)",
                                     fix="tách tài liệu hoặc tăng SOHOA_MAX_FILE_MB")


@contextlib.contextmanager
def fetched(doc: DocumentSource, settings: Settings, limits: Limits) -> Iterator[DocumentSource]:
    """The document with local ``files``: as it is for a folder batch; for an inbox document, its objects (and the
    batch's ``batch.toml``, read for its approvals) downloaded into a private scratch folder — laid out as a batch
    folder — removed when the block ends."""
    if doc.inbox is None or doc.files:
        yield doc
        return
    check_remote(doc, limits)
    inbox = parse_inbox(doc.inbox)
    store = _store(inbox, settings)
    work = new_work_dir(settings.scratch_path(), "inbox")
    try:
        batch = work / "batch"
        batch.mkdir()
        with contextlib.suppress(ObjectMissing):  # its size was checked when the batch was listed
            (batch / BATCH_FILE).write_bytes(store.get_bytes(BATCH_FILE))
        files = []
        for item in doc.remote:
            dest = batch.joinpath(*item.key.split("/"))
            if batch not in dest.parents:  # names were checked when listed; never write outside the folder
                raise UnsupportedFileError(f"{item.key}: tên đối tượng không hợp lệ", fix="đổi tên đối tượng")
            dest.parent.mkdir(exist_ok=True)
            try:
                store.get_file(item.key, dest, max_bytes=limits.max_file_bytes)
            except ObjectTooLarge as exc:  # replaced by a larger object since it was listed
                raise LimitExceededError(f"{item.key}: tệp vượt giới hạn {limits.max_file_bytes / 2**20:.1f} MB "
                                         "(đã dừng tải về)", fix="tách tài liệu hoặc tăng SOHOA_MAX_FILE_MB") from exc
            files.append(dest)
        if doc.kind == "folder" and not files:
            (batch / doc.source).mkdir()
        yield doc.model_copy(update={"files": files, "remote": []})
    finally:
        shutil.rmtree(work, ignore_errors=True)
