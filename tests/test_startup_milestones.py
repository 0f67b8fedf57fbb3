"""A run's start-up milestones (issue 21.2): the first page entering OCR is recorded before the engine reads it, and
``sohoa digitise`` keeps the milestones in the run log (real tesseract, real files; no timing assertions)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from flows.document import digitise_document
from flows.progress import Progress
from flows.run_log import logged_runs, record_run
from flows.wiring import build_services
from pipeline.load import discover_documents
from schemas.document import BatchReport
from schemas.settings import Settings
from tests.conftest import SAMPLE_BATCH
from tests.test_prefetch import CountingEngine


class WatchingEngine(CountingEngine):
    """The real tesseract engine, noting for each page it is asked to read which milestones were marked by then."""

    def __init__(self, inner: object, progress: Progress) -> None:
        super().__init__(inner)
        self.progress = progress
        self.seen: list[set[str]] = []

    def recognize(self, image_path: Path, *, dpi: int, number: int) -> object:
        self.seen.append(set(self.progress.milestones))
        return super().recognize(image_path, dpi=dpi, number=number)


def test_first_page_entering_ocr_is_marked_before_the_engine_reads_it(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1))
    engine = WatchingEngine(services.engine, services.progress)
    services.engine = engine  # type: ignore[assignment]
    services.progress.start(1, 1)
    (doc,) = discover_documents(batch)
    result = digitise_document(doc, "batch", services)
    assert result.status in ("done", "needs_review") and result.pages == 1
    assert engine.seen and {"page_started", "ocr_started"} <= engine.seen[0]  # marked before the first read
    assert "page_read" not in engine.seen[0]  # ... and before the first OCR result
    marks = services.progress.milestones
    assert marks["page_started"] <= marks["ocr_started"] <= marks["page_read"]
    cpu = services.progress.milestones_cpu
    assert 0 < cpu["page_started"] <= cpu["ocr_started"] <= cpu["page_read"]


def test_a_milestone_keeps_its_first_time_and_a_new_run_starts_clean() -> None:
    progress = Progress()
    progress.mark("ocr_started")
    first = progress.milestones["ocr_started"]
    progress.mark("ocr_started")
    assert progress.milestones["ocr_started"] == first
    assert progress.wait_for("ocr_started", timeout=0) and not progress.wait_for("page_read", timeout=0)
    woken = threading.Timer(0.05, progress.mark, args=("page_read",))
    woken.start()
    assert progress.wait_for("page_read", timeout=60)  # a waiter is woken by the mark, not by its timeout
    woken.join()
    progress.start(1, 1)
    assert progress.milestones == {} and progress.milestones_cpu == {}


def test_the_run_log_keeps_milestones_as_seconds_after_the_start(tmp_path: Path) -> None:
    progress = Progress()
    progress.milestones = {"page_read": 1003.5, "ocr_started": 1001.25}
    progress.milestones_cpu = {"page_read": 2.0, "ocr_started": 0.75}
    report = BatchReport(batch="lô", documents=[], pages_per_minute=0.0, elapsed_s=0.0, pages_processed=0)
    record_run(tmp_path, report, started_at=1000.0, progress=progress)
    record_run(tmp_path, report)  # a caller without milestones: as before
    timed, plain = logged_runs(tmp_path)
    assert timed.started_at == "1970-01-01T00:16:40.000+00:00"
    assert list(timed.milestones.items()) == [("ocr_started", 1.25), ("page_read", 3.5)]  # in the order they happened
    assert timed.milestones_cpu_s == {"ocr_started": 0.75, "page_read": 2.0}
    assert plain.started_at is None and plain.milestones == {}
