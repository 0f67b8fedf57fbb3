"""Composition root: builds every service from one ``Settings``. The only place that picks backends."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.progress import Progress
from ocr_models.tesseract import TesseractEngine
from pipeline.load import content_identity
from schemas.document import DocumentSource
from schemas.errors import ConfigError
from schemas.settings import Settings
from storage.catalog import SqliteCatalog
from storage.objects import DirectoryObjectStore


@dataclass
class Services:
    settings: Settings
    root: Path
    store: DirectoryObjectStore
    catalog: SqliteCatalog
    engine: TesseractEngine
    page_pool: ThreadPoolExecutor
    page_slots: threading.BoundedSemaphore  # pages decoded in memory at once, across all documents
    prefetched: dict[str, tuple[Path, Future[list[Any]]]] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    _identities: dict[tuple[tuple[str, int, int], ...], str] = field(default_factory=dict)

    def identity_of(self, doc: DocumentSource) -> str:
        """The document's content identity, hashed once per run (keyed by path, size and mtime)."""
        key = tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in doc.files)
        if key not in self._identities:
            self._identities[key] = content_identity(doc)
        return self._identities[key]

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def close(self) -> None:
        self.page_pool.shutdown(wait=True)
        self.catalog.close()


_registry: dict[Path, Services] = {}
_registry_lock = threading.Lock()


def build_services(settings: Settings) -> Services:
    root = settings.archive_path()
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "work").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Không tạo được thư mục kho lưu trữ {root}: {exc}", fix="chọn --archive khác") from exc
    engine = TesseractEngine(
        lang=settings.ocr_lang,
        psm=settings.psm,
        oem=settings.oem,
        cmd=settings.tesseract_cmd,
        tessdata_dir=settings.tessdata_dir,
        timeout_s=settings.page_timeout_s,
    )
    return Services(
        settings=settings,
        root=root,
        store=DirectoryObjectStore(root / "objects"),
        catalog=SqliteCatalog(root / "catalog.sqlite"),
        engine=engine,
        page_pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="page"),
        page_slots=threading.BoundedSemaphore(settings.workers * 2),
    )


def services_for(settings: Settings) -> Services:
    """The process-wide services of one archive (built once, shared by every task of a run)."""
    key = settings.archive_path()
    with _registry_lock:
        if key not in _registry:
            _registry[key] = build_services(settings)
        return _registry[key]


def close_all() -> None:
    with _registry_lock:
        for services in _registry.values():
            services.close()
        _registry.clear()
