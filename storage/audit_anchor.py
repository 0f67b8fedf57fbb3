"""The audit chain's head recorded outside its database (``Anchor``): the anchor file's lines, the copy in the
object store, and checking an anchor's MAC under the archive's audit key. The design: ``storage.audit``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

ANCHOR_SUFFIX = ".anchor"


@dataclass(frozen=True)
class Anchor:
    """The chain's head recorded outside the database: ``seq`` entries, the last one's ``hash``, the head MAC."""

    seq: int
    last: str
    mac: str
    at: str = ""  # the last entry's time (information only; not under the MAC)
    source: str = ""  # where it was read, for messages: "audit.anchor", "kho đối tượng ... audit/anchor.json"
    line: int | None = None  # its line in an anchor file

    @property
    def where(self) -> str:
        return f"{self.source} dòng {self.line}" if self.line is not None else self.source

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "last": self.last, "at": self.at, "mac": self.mac},
                          separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | bytes, source: str = "", line: int | None = None) -> Anchor:
        """An anchor from its JSON; ``ValueError`` if it is not one."""
        try:
            data = json.loads(text)
            seq, last, mac, at = data["seq"], data["last"], data["mac"], data.get("at", "")
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"không phải bản ghi neo: {exc}") from exc
        if not (isinstance(seq, int) and seq >= 1 and isinstance(last, str) and isinstance(mac, str)
                and isinstance(at, str)):
            raise ValueError("bản ghi neo sai kiểu dữ liệu")
        return cls(seq=seq, last=last, mac=mac, at=at, source=source, line=line)


def same_mac(stored: object, expected: str) -> bool:
    """Constant-time comparison of a stored MAC (which tampering may have made anything) with the expected one."""
    return isinstance(stored, str) and stored.isascii() and hmac.compare_digest(stored, expected)


def head_payload(count: int, last: str, anchored: bool) -> bytes:
    # "anchored" heads were written by a log that also appends to the anchor file (older logs did not)
    return f"head:{count}:{last}{':anchored' if anchored else ''}".encode("utf-8", "replace")


def anchor_verifies(key: bytes, anchor: Anchor) -> bool:
    """Whether ``anchor`` carries a genuine head MAC under ``key`` (either head form)."""
    return any(same_mac(anchor.mac, hmac.new(key, head_payload(anchor.seq, anchor.last, anchored),
                                            hashlib.sha256).hexdigest()) for anchored in (True, False))


@dataclass
class AnchorCheck:
    """What the anchors read from one place said about the chain."""

    seen: int = 0
    forged: int = 0
    first_forged: Anchor | None = None
    beyond: Anchor | None = None  # the furthest anchor beyond the chain's end
    rewritten: int = 0
    first_rewritten: Anchor | None = None
