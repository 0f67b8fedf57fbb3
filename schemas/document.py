"""Documents as they move through sohoa: source in a batch, per-document result, batch report, manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from schemas.metadata import DocumentMetadata
from schemas.reasons import StoredReason, describe, describe_all, from_legacy_text, stored_reasons
from schemas.search import FacetCount

Status = Literal["done", "needs_review", "failed", "quarantined"]  # quarantined: stopped at intake, not stored

PAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
DOCUMENT_SUFFIXES = (".pdf", *PAGE_SUFFIXES)


class RemoteFile(BaseModel):
    """An object of an S3 inbox batch (``flows.inbox``), as listed: its key under the batch prefix and its size."""

    key: str  # "name.pdf", or "folder/page.png" for a page of a folder document
    bytes: int


class DocumentSource(BaseModel):
    """One document of a batch: a single file, or a folder of page images in natural name order.

    A document of an S3 inbox batch (``inbox`` set) is listed with its ``remote`` objects and no ``files``; it is
    downloaded into local scratch just before it is digitised (``flows.inbox.fetched``), which gives it ``files``."""

    source: str  # path relative to the batch folder, "/" separated
    kind: Literal["file", "folder"]
    files: list[Path]  # absolute paths; one for a file document, the pages in order for a folder
    sequence: int | None = None  # số thứ tự in the hồ sơ (1-based), from batch order
    inbox: str | None = None  # the S3 batch it is read from, "s3://bucket/prefix/"; None: a local batch folder
    remote: list[RemoteFile] = Field(default_factory=list)  # objects still to download, in page order

    @property
    def origin(self) -> str:
        """Where the document was read from, for registers and reports: ``s3://bucket/prefix/name`` or its name."""
        return f"{self.inbox}{self.source}" if self.inbox else self.source


class BatchInfo(BaseModel):
    """Hồ sơ-level facts a batch folder may carry in ``batch.toml`` (all optional)."""

    file_code: str | None = None  # mã hồ sơ (TT 05 fileCode), names the PDF/As <file_code>.<số thứ tự>.pdf
    title: str | None = None
    order: list[str] = Field(default_factory=list)  # document names in số thứ tự order (others follow)
    # approval to photograph (chụp) the batch's Mật/Tối mật documents: decision number and approver
    approval_ref: str | None = None
    approved_by: str | None = None
    top_secret_approval_ref: str | None = None  # an admin's approval to digitise Tuyệt mật documents anyway


class DocumentResult(BaseModel):
    """One line of the ``sohoa digitise`` report (the JSON contract).

    Causes are codes (``schemas.reasons``): ``failure_code`` why it failed, ``review_reason_codes`` why it needs
    review or was held. The report also carries their Vietnamese wording under the keys it always had, ``error``
    and ``review_reasons`` (computed from the codes when the report is read or written)."""

    source: str
    id: str | None
    status: Status
    pages: int
    failure_code: StoredReason | None = None
    review_reason_codes: list[StoredReason] = Field(default_factory=list)
    skipped: bool = False  # already in the archive: nothing was redone

    @model_validator(mode="before")
    @classmethod
    def _from_wording(cls, data: object) -> object:
        """A report written before codes (``error``, ``review_reasons`` as sentences) reads into codes."""
        if isinstance(data, dict):
            data = dict(data)
            if data.get("failure_code") is None and data.get("error"):
                data["failure_code"] = from_legacy_text(str(data["error"]))
            if "review_reason_codes" not in data and data.get("review_reasons"):
                data["review_reason_codes"] = stored_reasons(data["review_reasons"])
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error(self) -> str | None:
        """Why it failed, in Vietnamese."""
        return describe(self.failure_code) if self.failure_code is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_reasons(self) -> list[str]:
        """Why it needs review (or was held), in Vietnamese."""
        return describe_all(self.review_reason_codes)


class BatchReport(BaseModel):
    batch: str
    documents: list[DocumentResult]
    pages_per_minute: float
    elapsed_s: float
    pages_processed: int


class StoredFile(BaseModel):
    """One object of a document in the store, with its checksum."""

    key: str  # relative to the document's prefix
    sha256: str
    bytes: int
    role: Literal["original", "pdfa", "hocr", "text", "manifest"]
    media_type: str


class PageRecord(BaseModel):
    number: int
    text: str
    confidence: float
    width: int
    height: int
    dpi: int
    words: int
    preprocessing: dict[str, object] = Field(default_factory=dict)


class DocumentManifest(BaseModel):
    """``document.json``: the durable record of a document. The catalog and index are rebuilt from it."""

    schema_version: int = 1
    id: str
    sha256: str  # content identity: the file's SHA-256, or of the ordered page files' SHA-256s
    source: str
    batch: str
    status: Literal["done", "needs_review"]
    review_reasons: list[StoredReason] = Field(default_factory=list)  # codes (older archives: sentences, decoded)
    created_at: str
    pages: list[PageRecord]
    metadata: DocumentMetadata
    files: list[StoredFile]
    provenance: dict[str, object]
    file_code: str | None = None  # mã hồ sơ, when the batch gave one
    sequence: int | None = None  # số thứ tự of the document in its hồ sơ


class SearchHit(BaseModel):
    id: str
    source: str
    score: float
    snippet: str
    highlights: list[tuple[int, int]] = Field(default_factory=list)  # [start, end) offsets into snippet
    metadata: dict[str, object]


class SearchResult(BaseModel):
    total: int
    hits: list[SearchHit]
    facets: dict[str, list[FacetCount]] = Field(default_factory=dict)  # field -> value counts, when requested
    total_exact: bool = True  # False: ``total`` is an estimate (two significant digits) of a very large count
