"""Intake rules for classified documents (Luật Bảo vệ bí mật nhà nước 2018; Hướng dẫn 40-HD/VPTW as amended).

Scanning a secret document is a "chụp" (photographing): it needs an approval by the competent authority and an
entry in the copy/photo register (sổ quản lý sao, chụp); Tuyệt mật documents are not digitised. Decided from the
extracted secrecy mark (an uncertain mark counts: it is kept as classified) and the batch's approvals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.document import BatchInfo
from schemas.metadata import DocumentMetadata
from schemas.reasons import Reason, ReasonCode, reason

TOP_SECRET = "Tuyệt mật"
SECRET_LEVELS = ("Mật", "Tối mật")

Outcome = Literal["open", "register", "register_pending", "quarantine"]


@dataclass(frozen=True)
class IntakeDecision:
    outcome: Outcome
    reason: Reason | None = None  # why it is held or pending, for the report and the review queue


def decide_intake(metadata: DocumentMetadata, approvals: BatchInfo, *, without_approval: str = "quarantine"
                  ) -> IntakeDecision:
    """What to do with a document whose metadata was just extracted.

    * Tuyệt mật: quarantined (nothing stored) unless the batch carries an admin's ``top_secret_approval_ref``;
    * Mật, Tối mật: digitised with a register entry when the batch records the approval (``approval_ref`` and
      ``approved_by``); without it, ``without_approval="quarantine"`` (the lawful default: digitising is itself a
      copy needing approval) stops it like Tuyệt mật, and ``"review"`` (lenient, an explicit setting) digitises it
      with a pending register entry and a review reason;
    * anything else (including an unrecognised mark, treated as the highest level) follows the same rules by
      level: an unknown mark is Tuyệt mật for intake.
    """
    mark = metadata.classification
    approved_by = (approvals.approved_by or "").strip()  # an approval names who approved it
    if not mark:
        return IntakeDecision("open")
    if mark not in SECRET_LEVELS:  # Tuyệt mật, or a mark we cannot place: the strictest rule
        if (approvals.top_secret_approval_ref or "").strip() and approved_by:
            return IntakeDecision("register")
        return IntakeDecision("quarantine", reason(ReasonCode.TOP_SECRET_HELD, mark=mark))
    if (approvals.approval_ref or "").strip() and approved_by:  # an approval names its decision and who approved
        return IntakeDecision("register")
    if without_approval == "quarantine":
        return IntakeDecision("quarantine", reason(ReasonCode.SECRET_HELD_WITHOUT_APPROVAL, mark=mark))
    return IntakeDecision("register_pending", reason(ReasonCode.SECRET_APPROVAL_PENDING, mark=mark))
