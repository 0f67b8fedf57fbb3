"""Composition root: builds every service from one ``Settings``. The only place that picks and constructs backends.

The catalog (``open_catalog`` and its variants), object stores (``build_object_store``, ``store_from_spec``), search
indexes (``build_search_index``), the OCR engine (``build_engine``), the audit trail (``open_audit_log``;
``flows.audit.open_audit`` checks its key and chain first), the accounts database (``open_accounts_db``) and the
batch registry (``open_batch_registry``) are built here and nowhere else (``tests/test_composition_root.py``).
``services_for`` caches a process's services by the whole settings (``settings_key``): other settings, even for
the same archive, get their own.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from flows.progress import Progress
from ocr_models.engine import OcrEngine
from ocr_models.lexicon import LexiconSource, load_lexicon
from ocr_models.tesseract import USER_PATTERNS, USER_WORDS, TesseractEngine
from pipeline.language import Lexicon, build_lexicon
from pipeline.load import content_identity
from schemas.document import DocumentSource
from schemas.errors import ConfigError, NotFoundError
from schemas.settings import Settings
from storage.accounts_db import WebDb, web_db_path
from storage.audit import AuditLog
from storage.batches import BatchRegistry
from storage.catalog import Catalog, IndexWriter, catalog_exists
from storage.db import is_database_url, open_database
from storage.files import DatabaseFileRecords
from storage.objects import DirectoryObjectStore, ObjectStore, remove_leftovers
from storage.scratch import private_root, remove_expired
from storage.search_index import SearchIndex

if TYPE_CHECKING:
    from storage.objects_s3 import S3ObjectStore

OBJECTS_DIR = "objects"
CATALOG_FILE = "catalog.sqlite"
NAME_FONT_FILE = "LiberationSerif-Bold.ttf"  # metric-compatible with Times New Roman Bold (fonts-liberation2)
T = TypeVar("T")
FONT_DIRS = (Path("/usr/share/fonts/truetype/liberation2"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass
class Services:
    settings: Settings
    root: Path
    store: ObjectStore
    catalog: Catalog
    engine: OcrEngine
    page_pool: ThreadPoolExecutor
    page_slots: threading.BoundedSemaphore  # pages decoded in memory at once, across all documents (= workers)
    external_index: SearchIndex | None = None  # Elasticsearch; None when the catalog's own FTS5 index is used
    name_font: Path | None = None  # names under seals are matched in this font (``pipeline.name_match``)
    # OCR words' diacritics corrected with ``lexicon`` (``pipeline.language``), built from this word list; None: off
    lexicon_source: LexiconSource | None = None
    prefetched: dict[str, tuple[Path, Future[list[Any]]]] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    _identities: dict[tuple[tuple[str, int, int], ...], str] = field(default_factory=dict)

    @property
    def lexicon(self) -> Lexicon | None:
        """The lexicon of the language correction, None when it is off; built on first use (0.2 CPU-s of pure
        Python, once per process: after the run's first page has entered OCR, not before)."""
        return language_lexicon(self.lexicon_source) if self.lexicon_source is not None else None

    def identity_of(self, doc: DocumentSource) -> str:
        """The document's content identity, hashed once per run (keyed by path, size and mtime)."""
        key = tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in doc.files)
        if key not in self._identities:
            self._identities[key] = content_identity(doc)
        return self._identities[key]

    @property
    def work_dir(self) -> Path:
        """Local scratch of per-document work folders (``storage.scratch``), never the archive folder."""
        return self.settings.scratch_path()

    def close(self) -> None:
        self.page_pool.shutdown(wait=True)
        self.catalog.close()
        if self.external_index is not None:
            self.external_index.close()


_registry: dict[str, Services] = {}  # settings_key(settings) -> the services built from those settings
_registry_lock = threading.Lock()


def software_version() -> str:
    """sohoa's installed version (recorded in provenance and archival packages)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sohoa")
    except PackageNotFoundError:
        return "0+unknown"


def _has_vietnamese(font: Path) -> bool:
    """False for fonts that draw .notdef for Vietnamese letters (Liberation 1.x has the same file names)."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        face = ImageFont.truetype(str(font), 32, layout_engine=ImageFont.Layout.BASIC)
    except OSError:
        return False

    def pixels(ch: str) -> bytes:
        canvas = Image.new("L", (48, 48))
        ImageDraw.Draw(canvas).text((8, 0), ch, font=face, fill=255)
        return canvas.tobytes()

    return all(pixels(ch) != pixels("\uffff") for ch in "ẫỡữỹỵẶỆ")


def find_name_font(configured: Path | None) -> Path | None:
    """The bold serif font names are matched in: the configured file, else Liberation Serif Bold (2.x)."""
    if configured is not None:
        if not configured.is_file():
            raise ConfigError(f"Không tìm thấy phông chữ {configured}", fix="sửa SOHOA_NAME_FONT hoặc bỏ trống")
        return configured
    for folder in FONT_DIRS:
        for font in sorted(folder.rglob(NAME_FONT_FILE)) if folder.is_dir() else []:
            if _has_vietnamese(font):
                return font
    return None


def build_services(settings: Settings) -> Services:
    root = settings.archive_path()
    try:
        root.mkdir(parents=True, exist_ok=True)
        remove_leftovers(root / "work")  # an earlier version's scratch folder in the archive: its crash leftovers
    except OSError as exc:
        raise ConfigError(f"Không tạo được thư mục kho lưu trữ {root}: {exc}", fix="chọn --archive khác") from exc
    remove_expired(private_root(settings.scratch_path()), lease_s=settings.scratch_lease_s)  # crashed runs' folders
    from flows.audit_anchor import trail_database  # (deferred: flows.audit_anchor builds on this module)

    trail_database(settings)  # corrections read with the store are checked against the trail where it lives
    engine = build_engine(settings)
    return Services(
        settings=settings,
        root=root,
        store=build_object_store(settings),
        catalog=_reaching_database(lambda: Catalog(catalog_target(settings), indexer=catalog_indexer(settings))),
        engine=engine,
        page_pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="page"),
        page_slots=threading.BoundedSemaphore(settings.workers),  # one decoded page per worker (issue 21.3)
        external_index=build_search_index(settings) if settings.search_index == "elasticsearch" else None,
        name_font=find_name_font(settings.name_font) if settings.ocr_seal_lines else None,
        # the word list is read now (a missing one stops the run before any work), the lexicon built on first use
        lexicon_source=load_lexicon() if settings.ocr_language_correction else None,
    )


_lexicon: list[Lexicon] = []  # built once per process (0.2 CPU-s), shared by every Services
_lexicon_lock = threading.Lock()


def language_lexicon(source: LexiconSource | None = None) -> Lexicon:
    """The Vietnamese lexicon of the language correction (``ocr_models.lexicon``: pyvi's word list; ``source``: that
    list read already), built once."""
    with _lexicon_lock:
        if not _lexicon:
            source = source or load_lexicon()
            _lexicon.append(build_lexicon(source.entries, source.provenance()))
        return _lexicon[0]


def build_engine(settings: Settings) -> OcrEngine:
    """The OCR engine ``Settings.ocr_engine`` names: the tesseract command, or tesseract in-process (tesserocr)."""
    words = USER_WORDS if settings.ocr_vocabulary else None
    patterns = USER_PATTERNS if settings.ocr_vocabulary else None
    if settings.ocr_engine == "tesserocr":
        from ocr_models.tesserocr_engine import TesserocrEngine

        return TesserocrEngine(lang=settings.ocr_lang, psm=settings.psm, oem=settings.oem, cmd=settings.tesseract_cmd,
                               tessdata_dir=settings.tessdata_dir, timeout_s=settings.page_timeout_s,
                               user_words=words, user_patterns=patterns)
    return TesseractEngine(lang=settings.ocr_lang, psm=settings.psm, oem=settings.oem, cmd=settings.tesseract_cmd,
                           tessdata_dir=settings.tessdata_dir, timeout_s=settings.page_timeout_s,
                           user_words=words, user_patterns=patterns)


def _s3_store(settings: Settings, *, bucket: str, prefix: str, backup: bool = False, inbox: bool = False
              ) -> S3ObjectStore:
    from storage.objects_s3 import S3ObjectStore

    group = "backup_" if backup else "inbox_" if inbox else None

    def pick(name: str) -> object:
        value = getattr(settings, f"{group}s3_{name}", None) if group else None
        return getattr(settings, f"s3_{name}") if value is None else value

    secret = pick("secret_key")
    return S3ObjectStore(
        str(pick("endpoint")),
        str(pick("access_key")),
        secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret),
        bucket,
        prefix=prefix,
        secure=bool(pick("secure")),
        ca_file=str(settings.s3_ca_file) if settings.s3_ca_file else None,
        region=settings.s3_region,
        retries=settings.s3_retries,
        backoff_s=settings.s3_backoff_s,
        timeout_s=settings.s3_timeout_s,
        create_bucket=not inbox,  # an inbox is read, never created
    )


def build_object_store(settings: Settings) -> ObjectStore:
    """The archive's object store: ``<archive>/objects`` (embedded) or the S3/MinIO bucket from settings."""
    if settings.object_store == "s3":
        if not settings.s3_access_key:
            raise ConfigError("Chưa cấu hình khóa truy cập S3",
                              fix="đặt SOHOA_S3_ENDPOINT, SOHOA_S3_ACCESS_KEY, SOHOA_S3_SECRET_KEY, SOHOA_S3_BUCKET")
        return _s3_store(settings, bucket=settings.s3_bucket, prefix=settings.s3_prefix)
    return DirectoryObjectStore(settings.archive_path() / OBJECTS_DIR)


def store_from_spec(spec: str, settings: Settings) -> ObjectStore:
    """A store named on the command line: ``s3://bucket[/prefix]`` (endpoint and keys from the backup_s3_*
    settings, else the s3_* ones) or a directory holding an archive (its ``objects`` folder)."""
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"Địa chỉ kho không hợp lệ: {spec}", fix="dùng s3://BUCKET hoặc s3://BUCKET/THƯ_MỤC")
        return _s3_store(settings, bucket=bucket, prefix=prefix.strip("/"), backup=True)
    if "://" in spec:
        raise ConfigError(f"Không hỗ trợ kho {spec}", fix="dùng một thư mục hoặc s3://BUCKET/THƯ_MỤC")
    return DirectoryObjectStore(Path(spec).expanduser().resolve() / OBJECTS_DIR)


def inbox_store(settings: Settings, *, bucket: str, prefix: str) -> S3ObjectStore:
    """The S3 inbox a batch ``s3://bucket/prefix/`` is read from (``flows.inbox``): endpoint and keys from the
    inbox_s3_* settings, else the s3_* ones; the bucket is never created."""
    return _s3_store(settings, bucket=bucket, prefix=prefix, inbox=True)


def build_search_index(settings: Settings) -> SearchIndex:
    """The archive's search index: SQLite FTS5 in the catalog database (embedded) or Elasticsearch. Searches go
    through it; the embedded index is written by the catalog (``catalog_indexer``), Elasticsearch by its callers."""
    if settings.search_index == "elasticsearch":
        from storage.search_es import ElasticsearchIndex

        return ElasticsearchIndex(
            settings.es_url,
            username=settings.es_username,
            password=settings.es_password.get_secret_value(),
            index=settings.es_index,
            ca_file=str(settings.es_ca_file) if settings.es_ca_file else None,
            timeout_s=settings.es_timeout_s,
        )
    from storage.search_sqlite import SqliteSearchIndex

    _embedded_index_needs_sqlite(settings)
    return SqliteSearchIndex(settings.archive_path() / CATALOG_FILE, index_processes=settings.index_processes)


def catalog_indexer(settings: Settings) -> IndexWriter | None:
    """What the catalog writes with a document's row, in the same transaction: the embedded FTS5 index's rows,
    or nothing when the search index is Elasticsearch (no FTS rows: it is written apart, by ``upsert``). Every
    catalog is built with it (``Catalog(catalog_target(settings), indexer=catalog_indexer(settings))``)."""
    if settings.search_index == "elasticsearch":
        return None
    from storage.search_sqlite import SqliteIndexWriter

    return SqliteIndexWriter(settings.index_processes)


def _archive_root(settings: Settings) -> Path:
    """The archive folder, created when missing."""
    root = settings.archive_path()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Không tạo được thư mục kho lưu trữ {root}: {exc}", fix="chọn --archive khác") from exc
    return root


def catalog_path(settings: Settings) -> Path:
    """The embedded catalog's file (``catalog_target`` says where the catalog really is)."""
    return settings.archive_path() / CATALOG_FILE


_DATABASE_FIX = "đặt SOHOA_SEARCH_INDEX=elasticsearch (cùng SOHOA_ES_URL), hoặc bỏ SOHOA_DATABASE_URL để dùng SQLite"


def _embedded_index_needs_sqlite(settings: Settings) -> None:
    """The embedded search index (FTS5) lives in ``catalog.sqlite`` and is written in the catalog's transactions:
    a catalog in PostgreSQL cannot carry it, and searching the archive folder's file would find nothing."""
    if settings.database_url is not None and settings.search_index == "sqlite":
        raise ConfigError("SOHOA_DATABASE_URL đưa danh mục vào PostgreSQL, nhưng chỉ mục tìm kiếm nhúng (SQLite) "
                          "chỉ nằm được trong catalog.sqlite của kho", fix=_DATABASE_FIX)


def catalog_target(settings: Settings) -> Path | str:
    """Where the catalog (and the hồ sơ records) live: the PostgreSQL URL of ``SOHOA_DATABASE_URL``, else the
    file ``ARCHIVE/catalog.sqlite``. ``ConfigError`` for a URL that is not PostgreSQL's, or one set together with
    the embedded search index."""
    url = shared_database_url(settings)
    if url is None:
        return catalog_path(settings)
    _embedded_index_needs_sqlite(settings)
    return url


def shared_database_url(settings: Settings) -> str | None:
    """The PostgreSQL URL of ``SOHOA_DATABASE_URL`` (None: the SQLite files); ``ConfigError`` for another scheme."""
    if settings.database_url is None:
        return None
    url = settings.database_url.get_secret_value()
    if not is_database_url(url):
        raise ConfigError("SOHOA_DATABASE_URL không phải địa chỉ PostgreSQL",
                          fix="dùng dạng postgresql://NGƯỜI_DÙNG@MÁY:5432/CSDL, hoặc bỏ trống để dùng SQLite")
    return url


def _reaching_database(action: Callable[[], T]) -> T:
    """``action`` (opening a store in the shared database), a PostgreSQL that cannot be reached being a
    ``ConfigError`` (the driver's message names host and port, never the password)."""
    try:
        return action()
    except Exception as exc:
        import psycopg  # a PostgreSQL error can only come with a database URL, where psycopg is in use

        if not isinstance(exc, psycopg.OperationalError):
            raise
        raise ConfigError(f"Không kết nối được cơ sở dữ liệu PostgreSQL dùng chung: {exc}",
                          fix="kiểm tra SOHOA_DATABASE_URL (máy, cổng, tên CSDL, người dùng) và máy chủ PostgreSQL") \
            from exc


def archive_has_catalog(settings: Settings) -> bool:
    """Whether the archive has a catalog yet (the file, or the tables in PostgreSQL); creates nothing."""
    target = catalog_target(settings)
    return _reaching_database(lambda: catalog_exists(target))


def open_catalog(settings: Settings) -> Catalog:
    """The archive's catalog (created with the archive folder when missing)."""
    target = catalog_target(settings)
    if isinstance(target, Path):
        _archive_root(settings)
    return _reaching_database(lambda: Catalog(target, indexer=catalog_indexer(settings)))


def open_existing_catalog(settings: Settings) -> Catalog | None:
    """The archive's catalog, or None when the archive has none yet (nothing is created)."""
    if not archive_has_catalog(settings):
        return None
    return _reaching_database(lambda: Catalog(catalog_target(settings), indexer=catalog_indexer(settings)))


def open_archive_catalog(settings: Settings) -> Catalog:
    """The catalog of an archive that must exist already (read paths): ``NotFoundError`` otherwise."""
    catalog = open_existing_catalog(settings)
    if catalog is None:
        raise NotFoundError(f"Chưa có kho lưu trữ tại {settings.archive_path()}",
                            fix="chạy sohoa digitise trước, hoặc chọn --archive")
    return catalog


def open_batch_registry(settings: Settings) -> BatchRegistry:
    """The archive's batch registry and work queue (their tables live in the catalog database: the archive's
    ``catalog.sqlite``, or the shared PostgreSQL of ``SOHOA_DATABASE_URL``)."""
    path = _archive_root(settings) / CATALOG_FILE
    url = shared_database_url(settings)
    if url is None:
        return BatchRegistry(path)
    return _reaching_database(lambda: BatchRegistry(open_database(url), path=path))


def open_file_records(settings: Settings) -> DatabaseFileRecords:
    """The archive's hồ sơ records (their table lives in the catalog database)."""
    target = catalog_target(settings)
    if isinstance(target, Path):
        _archive_root(settings)
    return _reaching_database(lambda: DatabaseFileRecords(target))


def open_accounts_db(settings: Settings) -> WebDb:
    """The archive's accounts database (users, roles, sessions of the web app and the CLI, corrections' legacy
    table, approval and access requests): in PostgreSQL with ``SOHOA_DATABASE_URL``, else ``ARCHIVE/web.sqlite3``."""
    url = shared_database_url(settings)
    if url is not None:
        return _reaching_database(lambda: WebDb(url))
    return WebDb(web_db_path(settings.archive_path()))


def open_accounts_db_at(path: Path) -> WebDb:
    """An accounts database file by its path (e.g. an earlier version's, to migrate from)."""
    return WebDb(path)


def open_audit_log(path: Path, key: bytes | None, *, create: bool = True, anchor: Path | None = None,
                   database: str | None = None, **anchoring: Any) -> AuditLog:
    """The audit trail database at ``path``, or in the PostgreSQL ``database`` (``SOHOA_DATABASE_URL``; the
    anchor file stays at ``anchor``). ``flows.audit`` decides the key, the anchors, the database and when to
    create."""
    return AuditLog(path, key, create=create, anchor=anchor, database=database, **anchoring)


def settings_key(settings: Settings) -> str:
    """A key naming the whole ``settings`` (the archive as an absolute path; secrets by their digest): two settings
    with the same key build the same services."""
    data = settings.model_dump(mode="json")
    data["archive"] = str(settings.archive_path())
    secrets = {name: value.get_secret_value() for name, value in settings if isinstance(value, SecretStr)}
    data["secrets"] = hashlib.sha256(json.dumps(secrets, sort_keys=True).encode("utf-8")).hexdigest()
    return json.dumps(data, sort_keys=True, default=str)


def services_for(settings: Settings) -> Services:
    """The process-wide services of one set of settings (built once, shared by every task of a run); different
    settings, even for the same archive, get their own."""
    key = settings_key(settings)
    with _registry_lock:
        if key not in _registry:
            _registry[key] = build_services(settings)
        return _registry[key]


def close_all() -> None:
    with _registry_lock:
        for services in _registry.values():
            services.close()
        _registry.clear()
