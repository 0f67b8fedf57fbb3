"""Reports of the preservation commands: fixity audit (``sohoa verify``), backup, reindex."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ProblemKind = Literal["missing", "changed", "unexpected", "unreadable", "not_indexed", "orphan_index"]


class FixityProblem(BaseModel):
    kind: ProblemKind
    key: str  # object key (or document id for index problems)
    document: str | None = None
    detail: str = ""


class FixityReport(BaseModel):
    store: str
    started_at: str
    finished_at: str = ""
    sample: int | None = None  # None: every document was checked
    documents_checked: int = 0
    objects_checked: int = 0
    bytes_checked: int = 0
    problems: list[FixityProblem] = Field(default_factory=list)
    documents: dict[str, Literal["pass", "fail"]] = Field(default_factory=dict)  # outcome per document id

    @property
    def ok(self) -> bool:
        return not self.problems


class DatabaseDump(BaseModel):
    """The ``pg_dump --format=custom`` of the shared database a backup wrote into its target store."""

    key: str  # database/<UTC time>.dump
    sha256: str
    bytes: int


class BackupReport(BaseModel):
    source: str
    target: str
    started_at: str
    finished_at: str = ""
    objects_seen: int = 0
    objects_copied: int = 0
    objects_repaired: int = 0  # damaged target objects replaced by verified copies (a restore)
    bytes_copied: int = 0
    problems: list[FixityProblem] = Field(default_factory=list)  # objects not copied, and why
    database_dump: DatabaseDump | None = None  # with SOHOA_DATABASE_URL: the database, dumped before the objects

    @property
    def ok(self) -> bool:
        return not self.problems


class ReindexReport(BaseModel):
    store: str
    documents_indexed: int = 0
    problems: list[FixityProblem] = Field(default_factory=list)  # manifests that could not be indexed
    elapsed_s: float = 0.0
