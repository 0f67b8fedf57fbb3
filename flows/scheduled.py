"""Prefect flows that run on a schedule (``sohoa serve``): the periodic fixity audit and the nightly digitisation.

The audit's summary is published as a Prefect artifact, and a run that finds problems ends Failed, so the
Prefect UI shows it in red. The nightly digitisation (``flows.batches.nightly_digitisation``) runs every 15 minutes
inside the night window (``SOHOA_NIGHT_WINDOW``; the cron is derived from it by ``flows.batches.nightly_cron``):
a run outside the window, or one that finds another nightly run working on the same host, ends at once without
doing anything, so batches queued during the night start within 15 minutes and a run that crashed is taken over by
the next one once its lease has run out (runs on other hosts share the batches' documents: ``flows.batches``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.audit_anchor import trail_database
from flows.batches import nightly_cron, nightly_digitisation
from flows.fixity import verify_store
from flows.wiring import build_object_store, build_search_index, open_existing_catalog
from schemas.errors import ExitCode, SohoaError
from schemas.fixity import FixityReport
from schemas.settings import Settings


class FixityProblemsFound(SohoaError):
    exit_code = ExitCode.PRESERVATION_PROBLEMS


def _summary(report: FixityReport) -> str:
    lines = [f"# Kiểm tra toàn vẹn kho: {'đạt' if report.ok else f'{len(report.problems)} vấn đề'}", "",
             f"- Kho: {report.store}", f"- Văn bản: {report.documents_checked}, đối tượng: {report.objects_checked}, "
             f"{report.bytes_checked / 1e6:.1f} MB", f"- Bắt đầu {report.started_at}, xong {report.finished_at}"]
    if report.problems:
        lines += ["", "| Loại | Đối tượng | Chi tiết |", "|---|---|---|"]
        lines += [f"| {p.kind} | `{p.key}` | {p.detail} |" for p in report.problems[:100]]
    return "\n".join(lines)


@flow(name="fixity_audit", log_prints=False, validate_parameters=False)
def fixity_audit(archive: str | None = None, sample: int | None = None) -> FixityReport:
    """Recompute the checksum of every stored object (or of a random ``sample`` of documents) of ``archive``
    (default: from the environment, ``SOHOA_ARCHIVE``)."""
    settings = Settings(archive=Path(archive)) if archive else Settings()
    trail_database(settings)  # the corrections and the head are checked against the trail where it lives
    store = build_object_store(settings)
    catalog = open_existing_catalog(settings)
    try:
        external = build_search_index(settings) if settings.search_index == "elasticsearch" else None
        report = verify_store(store, catalog=catalog, sample=sample or settings.fixity_sample, external=external,
                              audit_archive=settings.archive_path())
    finally:
        if catalog is not None:
            catalog.close()
    create_markdown_artifact(key="fixity-audit", markdown=_summary(report), description="sohoa verify")
    if not report.ok:
        raise FixityProblemsFound(f"{len(report.problems)} vấn đề toàn vẹn trong {report.store}",
                                  fix="xem báo cáo trong audit/fixity/ và khôi phục từ bản sao lưu")
    return report


def deployments(settings: Settings, *, by_module: bool = False) -> list[Any]:
    """The scheduled deployments ``sohoa serve`` runs. ``by_module``: entrypoints by module
    (``flows.scheduled.fixity_audit``) instead of a file path relative to the current directory, so a work-pool
    worker on any machine with sohoa installed imports the flows from the installed package."""
    entrypoint_type = EntrypointType.MODULE_PATH if by_module else EntrypointType.FILE_PATH
    # in a work pool on a shared database every host's worker has its own archive folder (SOHOA_ARCHIVE: its trail's
    # anchor, its scratch); a path of the registering host would send them all to a folder they may not have
    archive = None if by_module and settings.database_url is not None else str(settings.archive_path())
    return [
        fixity_audit.to_deployment(
            name="fixity-audit",
            entrypoint_type=entrypoint_type,
            schedules=[Cron(settings.fixity_cron, timezone=settings.timezone)],
            parameters={"archive": archive, "sample": settings.fixity_sample},
            description="Kiểm tra toàn vẹn định kỳ (SHA-256) mọi đối tượng trong kho",
        ),
        nightly_digitisation.to_deployment(
            name="nightly-digitisation",
            entrypoint_type=entrypoint_type,
            schedules=[Cron(nightly_cron(settings.night_window), timezone=settings.timezone)],
            parameters={"archive": archive},
            description=f"Số hóa các lô chờ (sohoa batch add --when tonight|CRON) trong khung giờ "
                        f"{settings.night_window}",
        ),
    ]
