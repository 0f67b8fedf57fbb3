"""Typed settings in one place. Environment variables use the prefix ``SOHOA_``.

The composition root (``flows.wiring``) builds everything from one ``Settings``; no other module reads the
environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOHOA_", extra="ignore")

    archive: Path = Field(default=Path("archive"), description="Archive root (object store, catalog, index).")
    workers: int = Field(default_factory=_default_workers, ge=1, description="Parallel OCR processes.")

    # OCR
    ocr_lang: str = "vie"
    tesseract_cmd: str = "tesseract"
    tessdata_dir: Path | None = None  # None: tesseract's own default
    psm: int = 3
    oem: int = 1
    page_timeout_s: float = 300.0
    pdf_dpi: int = 300  # rasterisation resolution of PDF pages

    # derivatives
    image_layer_quality: int = Field(default=80, ge=30, le=100)  # JPEG quality of the PDF/A image layer

    # review thresholds
    review_page_confidence: float = Field(default=0.70, ge=0.0, le=1.0)
    review_doubtful_share: float = Field(
        default=0.025, ge=0.0, le=1.0, description="Flag a page when this share of its characters is doubtful."
    )

    # orchestration: Prefect's local run database (embedded mode); one per user so only a machine's first run
    # pays for creating it. Ignored when PREFECT_API_URL points at a Prefect server.
    prefect_home: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "sohoa" / "prefect")
    prefetch_pages_per_worker: int = Field(
        default=20, ge=0, description="At most this many pages per worker are OCR'd while Prefect starts."
    )

    # backends (embedded defaults; server backends arrive with the storage/search issues)
    object_store: Literal["directory"] = "directory"
    search_index: Literal["sqlite"] = "sqlite"

    def archive_path(self) -> Path:
        return self.archive.expanduser().resolve()
