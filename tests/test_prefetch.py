"""Pages started before the flow runs are used by the document task, never OCR'd twice (real tesseract)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.document import digitise_document, prefetch_pages
from flows.wiring import build_services
from pipeline.load import content_identity, discover_documents
from schemas.settings import Settings
from tests.conftest import SAMPLE_BATCH


class CountingEngine:
    """The real tesseract engine, counting the pages it reads."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name  # type: ignore[attr-defined, no-any-return]

    def recognize(self, image_path: Path, *, dpi: int, number: int) -> object:
        self.calls.append(str(image_path))
        return self.inner.recognize(image_path, dpi=dpi, number=number)  # type: ignore[attr-defined]

    def read_lines(self, images: list[Path], *, dpi: int) -> object:
        return self.inner.read_lines(images, dpi=dpi)  # type: ignore[attr-defined]

    def detect_orientation(self, image_path: Path, *, dpi: int) -> int:
        return self.inner.detect_orientation(image_path, dpi=dpi)  # type: ignore[attr-defined, no-any-return]

    def provenance(self) -> dict[str, object]:
        return self.inner.provenance()  # type: ignore[attr-defined, no-any-return]


@pytest.mark.slow
def test_prefetched_pages_are_used_once(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("nq_01.png", "qd_05.jpg"):
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    services = build_services(Settings(archive=tmp_path / "archive", workers=2))
    engine = CountingEngine(services.engine)
    services.engine = engine  # type: ignore[assignment]
    docs = discover_documents(batch)
    prefetch_pages(docs, services, max_pages=1)  # budget: the first document only
    assert set(services.prefetched) == {content_identity(docs[0])}
    results = [digitise_document(doc, "batch", services) for doc in docs]
    assert all(r.status in ("done", "needs_review") and not r.skipped for r in results)
    assert len(engine.calls) == 2 and not services.prefetched
    # a second prefetch of the same batch starts nothing: both documents are in the archive
    prefetch_pages(docs, services, max_pages=10)
    assert not services.prefetched
    assert not any(services.work_dir.iterdir())
    services.close()
