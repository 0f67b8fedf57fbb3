"""The archive's audit key: a separate 0600 file of 32 random bytes (hex), created only for a brand-new
trail (``load_or_create_key``) and otherwise only loaded (``load_key``). The design: ``storage.audit``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MIN_KEY_BYTES = 16


class AuditKeyError(Exception):
    """The audit key cannot be used: its file is missing, unreadable or does not hold a key."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class AuditKeyMissing(AuditKeyError):
    """No key file at all."""


def load_key(path: Path) -> bytes:
    """The archive's audit key; never creates one (``AuditKeyMissing`` / ``AuditKeyError``)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise AuditKeyMissing(path, "không có tệp khóa") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(path, f"không đọc được tệp khóa ({exc})") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise AuditKeyError(path, "tệp khóa không chứa khóa hợp lệ (chuỗi hex)") from exc
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(path, f"khóa quá ngắn ({len(key)} byte, cần ít nhất {MIN_KEY_BYTES})")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The archive's audit key (32 random bytes, hex in a 0600 file), created when there is none. Only for a
    brand-new trail: ``flows.audit.open_audit`` refuses to mint a key for a trail that already has entries."""
    try:
        return load_key(path)
    except AuditKeyMissing:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it a moment ago: use theirs
        return load_key(path)
    try:
        os.write(fd, key.hex().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
