"""Archival metadata extraction from a document's OCR pages.

Reads the Party (Hướng dẫn 36-HD/VPTW) and state (Nghị định 30/2020/NĐ-CP) layouts: number and symbol, place and
date, issuing organ, type title and trích yếu, secrecy and urgency marks, recipients and the signature block.
Pure: no I/O, no environment reads.
"""

from .extract import extract_metadata

__all__ = ["extract_metadata"]
