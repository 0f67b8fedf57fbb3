"""The one access policy: what a principal may see of the archive's documents.

Every path that yields document data (web page, REST route, CLI command, export, package, report, count,
snippet, review reason, register entry, batch entry, audit row) asks here. Two halves:

* **Decisions.** ``Principal`` is who asks (a web user, an API token's user, a CLI ``--as USER``, or the local
  operator of a CLI run without ``--as``). ``may_see`` decides one document from its secrecy level;
  ``visible_*`` filter the lists every path shows (review reasons naming other documents, catalog entries,
  register and quarantine entries, batch documents, audit rows). A document the principal may not see is
  treated as one that does not exist: it is left out, never marked "hidden" (a marker would tell it exists).
* **Declared rules.** Every web route and CLI command carries the rule it follows (``@access_rule``). The test
  suite walks FastAPI's route table and the CLI's sub-commands and fails on any without one, so a new path
  cannot be added without saying how it keeps to the policy.

Fail closed: an unknown secrecy mark is the highest level (``schemas.search.secrecy_level``); a document whose
level cannot be found counts as hidden wherever another document's data would name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, TypeVar

from schemas.reasons import DUPLICATE_TEXT, Reason, ReasonCode
from schemas.search import secrecy_level

Role = Literal["staff", "archivist", "admin"]
ROLES: tuple[Role, ...] = ("staff", "archivist", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOP_LEVEL = 3


class Rule(StrEnum):
    """How a route or command keeps to the policy (declared on it with ``@access_rule``)."""

    NO_DOCUMENT_DATA = "no-document-data"  # login, logout, health, static assets, account administration
    SEARCH = "search"  # clearance applied inside the index: hits, totals, estimates, facets, snippets
    DOCUMENT = "document"  # one document, loaded through the policy: above clearance == missing
    LISTING = "listing"  # lists naming documents (review queue, batches, register, exports): filtered per item
    AUDIT = "audit"  # audit rows: an entry about a document above clearance is left out
    OPERATOR = "operator"  # whole-archive maintenance by the local operator (digitise, verify, backup, ...)


_F = TypeVar("_F", bound=Callable[..., object])
_ATTRIBUTE = "__sohoa_access_rule__"


def access_rule(rule: Rule) -> Callable[[_F], _F]:
    """Declare the rule a route handler or CLI command follows."""

    def mark(func: _F) -> _F:
        setattr(func, _ATTRIBUTE, rule)
        return func

    return mark


def rule_of(func: object) -> Rule | None:
    rule = getattr(func, _ATTRIBUTE, None)
    return rule if isinstance(rule, Rule) else None


@dataclass(frozen=True)
class Principal:
    """Who asks: a name (for the audit trail), a role and a clearance (0–3, the highest secrecy level)."""

    name: str
    role: Role
    clearance: int
    operator: bool = False  # the local operator of a CLI run without --as (sees every level)
    # Documents granted read-only above the clearance by an approved access request (``flows.access_requests``),
    # as active at the moment this principal was built. Only ``may_read`` (one document's page, page images,
    # PDF) honours them: searches, facets, counts, listings and edits keep to ``clearance`` alone.
    grants: frozenset[str] = frozenset()

    def has_role(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def may_see(self, classification: object) -> bool:
        return level_of(classification) <= self.clearance

    def may_read(self, doc_id: str, classification: object) -> bool:
        """May the principal read this one document: within the clearance, or granted (an active access grant)."""
        return self.may_see(classification) or doc_id in self.grants

    def granted(self, doc_id: str, classification: object) -> bool:
        """Readable only through a grant (each such read is audited as a use of the grant)."""
        return not self.may_see(classification) and doc_id in self.grants


def local_operator(name: str) -> Principal:
    """The person running the CLI on the archive's machine without ``--as``: trusted with every level."""
    return Principal(name=name, role="admin", clearance=TOP_LEVEL, operator=True)


def level_of(classification: object) -> int:
    """The secrecy level of a classification value (``None``/empty: 0; unknown: the top level)."""
    if classification is None or classification == "":
        return 0
    return secrecy_level(classification) if isinstance(classification, str) else TOP_LEVEL


def level_of_metadata(metadata: Mapping[str, object]) -> int:
    return level_of(metadata.get("classification"))


# A function giving a document id's secrecy level, or None when the archive has no such document.
Levels = Callable[[str], int | None]


class _Catalog(Protocol):
    def get(self, doc_id: str) -> _Entry | None: ...


class _Entry(Protocol):
    @property
    def metadata(self) -> Mapping[str, object]: ...


def catalog_levels(catalog: _Catalog) -> Levels:
    """``Levels`` read from the catalog (its rows carry the corrected metadata)."""

    def level(doc_id: str) -> int | None:
        entry = catalog.get(doc_id)
        return None if entry is None else level_of_metadata(entry.metadata)

    return level


def visible_reasons(principal: Principal, reasons: Iterable[Reason], levels: Levels) -> list[Reason]:
    """Review reasons the principal may read: a reason naming another document (a possible duplicate: its
    ``document_id`` parameter) is kept only when the principal may see that document (its id, source and
    existence are otherwise withheld)."""
    out = []
    for reason in reasons:
        if _undecoded_duplicate(reason) and not principal.operator:
            continue  # an old sentence naming another document that could not be decoded: fail closed
        other = reason.document_id
        if other is not None:
            level = levels(other)
            if level is None or level > principal.clearance:
                continue
        out.append(reason)
    return out


def _undecoded_duplicate(reason: Reason) -> bool:
    return reason.code is ReasonCode.LEGACY_TEXT and str(reason.params.get("text") or "").startswith(DUPLICATE_TEXT)


def visible_status(status: str, reasons: Sequence[Reason], shown: Sequence[Reason]) -> str:
    """A document's status as a reader sees it: ``needs_review`` only for reasons they may not read (a possible
    duplicate of a hidden document) reads as ``done``, or the bare flag would tell that such a document exists."""
    return "done" if status == "needs_review" and reasons and not shown else status


_T = TypeVar("_T")


def visible_items(principal: Principal, items: Iterable[_T], level: Callable[[_T], int]) -> list[_T]:
    """The items (catalog entries, register rows, batch documents, audit rows...) whose document the principal
    may see; ``level`` gives an item's secrecy level."""
    return [item for item in items if level(item) <= principal.clearance]


def record_level(record: Mapping[str, object]) -> int:
    """The secrecy level of a register, quarantine or batch record carrying a ``classification``."""
    return level_of(record.get("classification"))
