"""Possible duplicates: same organ, type, number, notation and date as another document → flagged, never merged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.reasons import ReasonCode, reason
from storage.catalog import SqliteCatalog, identity_key

IDENTITY: dict[str, object] = {"organ_name": "Thành ủy Đà Nẵng", "type_name": "Nghị quyết", "code_number": "15",
                               "code_notation": "NQ/TU", "issued_date": "2020-02-01"}


def _manifest(doc_id: str, **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=f"{doc_id}.tif", batch="b", status="done",
        created_at="2026-01-01T00:00:00+00:00",
        pages=[PageRecord(number=1, text="NGHỊ QUYẾT", confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
    )


@pytest.fixture()
def catalog(tmp_path: Path) -> SqliteCatalog:
    cat = SqliteCatalog(tmp_path / "catalog.sqlite")
    cat.commit_document(_manifest("aaa", **IDENTITY), "documents/aaa/document.json")
    cat.commit_document(_manifest("bbb", **(IDENTITY | {"code_number": "16"})), "documents/bbb/document.json")
    cat.commit_document(_manifest("ccc", **(IDENTITY | {"organ_name": None})), "documents/ccc/document.json")
    return cat


def test_same_identity_found_ignoring_case_and_diacritics(catalog: SqliteCatalog) -> None:
    other = DocumentMetadata(**(IDENTITY | {"organ_name": "THÀNH UỶ  ĐÀ NẴNG", "type_name": "NGHI QUYET",
                                            "code_notation": "nq/tu"}))  # type: ignore[arg-type]
    assert [e.id for e in catalog.find_same_identity(other)] == ["aaa"]
    assert catalog.find_same_identity(other)[0].source == "aaa.tif"


def test_itself_partial_and_different_identities_are_not_duplicates(catalog: SqliteCatalog) -> None:
    assert catalog.find_same_identity(DocumentMetadata(**IDENTITY), exclude_id="aaa") == []  # type: ignore[arg-type]
    partial = IDENTITY | {"organ_name": None}
    assert catalog.find_same_identity(DocumentMetadata(**partial)) == []  # type: ignore[arg-type]
    assert identity_key(partial) is None
    other_date = IDENTITY | {"issued_date": "2020-02-02"}
    assert catalog.find_same_identity(DocumentMetadata(**other_date)) == []  # type: ignore[arg-type]


def test_claims_see_documents_still_in_flight(catalog: SqliteCatalog) -> None:
    md = DocumentMetadata(**(IDENTITY | {"code_number": "99"}))  # type: ignore[arg-type]
    assert catalog.claim_identity("x1", "lo/x1.pdf", md) == []
    assert catalog.claim_identity("x2", "lo/x2.pdf", md) == [("x1", "lo/x1.pdf")]
    assert catalog.claim_identity("x1", "lo/x1.pdf", md) == [("x2", "lo/x2.pdf")]  # a retry sees the other
    full = DocumentMetadata(**IDENTITY)  # type: ignore[arg-type]
    assert catalog.claim_identity("ddd", "ddd.tif", full) == [("aaa", "aaa.tif")]


def test_listing_entries_by_batch(catalog: SqliteCatalog) -> None:
    assert [e.id for e in catalog.entries()] == ["aaa", "bbb", "ccc"]
    assert catalog.entries(batch="khac") == []
    assert catalog.batches() == ["b"]


@pytest.mark.slow
def test_second_copy_with_same_metadata_is_flagged_not_merged(tmp_path: Path) -> None:
    """End to end (one real OCR page each): a re-scan with different bytes but the same metadata."""
    from flows.document import digitise_document
    from flows.wiring import build_services
    from pipeline.load import discover_documents
    from schemas.settings import Settings
    from tests.conftest import SAMPLE_BATCH

    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "a_nq.png")
    (batch / "b_nq.png").write_bytes((SAMPLE_BATCH / "nq_01.png").read_bytes() + b"\0")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1))  # type: ignore[call-arg]
    try:
        first, second = (digitise_document(doc, "batch", services) for doc in discover_documents(batch))
        assert first.id != second.id
        assert not any(r.startswith("có thể trùng") for r in first.review_reasons)
        assert second.status == "needs_review"
        assert f"có thể trùng với văn bản {first.id} (a_nq.png)" in second.review_reasons
        assert reason(ReasonCode.DUPLICATE_OF, document_id=first.id, source="a_nq.png") in second.review_reason_codes
        assert not [r for r in first.review_reason_codes if r.code is ReasonCode.DUPLICATE_OF]
        assert services.catalog.count() == 2  # both kept
    finally:
        services.close()
