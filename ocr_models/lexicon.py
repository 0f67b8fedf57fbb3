"""The Vietnamese word list the language correction reads with (``pipeline.language``), and its provenance.

Source: ``models/words.txt`` of the ``pyvi`` package (Python Vietnamese Toolkit, Viet-Trung Tran, MIT licence:
use, copy and distribution allowed with the copyright notice, which ships in the installed package), about 31,000
Vietnamese words of one to several syllables. The file is read from the installed package with
``importlib.resources`` (nothing of it is copied here); its SHA-256 goes into each page's provenance.

The general word list lacks much of the vocabulary of Party and state administration (``cổng thông tin``,
``ban thường vụ``, ``phó chủ tịch``, ``căn cước công dân``, ``giãn cách``). ``vocabulary/vie.admin-phrases`` (written
for sohoa, one term of two to four syllables a line, lower case) adds those terms; its SHA-256 goes into the
provenance beside pyvi's.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

PACKAGE = "pyvi"
WORDS_FILE = "models/words.txt"
LICENCE = "MIT"
ADMIN_PHRASES = Path(__file__).parent / "vocabulary" / "vie.admin-phrases"


@dataclass(frozen=True)
class LexiconSource:
    """The entries of the word list (one word a line, NFC) and where they come from."""

    entries: tuple[str, ...]
    name: str
    version: str
    licence: str
    sha256: str
    admin_phrases_sha256: str = ""

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "licence": self.licence, "sha256": self.sha256,
                "admin_phrases": ADMIN_PHRASES.name, "admin_phrases_sha256": self.admin_phrases_sha256}


def _lines(data: bytes) -> tuple[str, ...]:
    text = unicodedata.normalize("NFC", data.decode("utf-8"))
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def load_lexicon() -> LexiconSource:
    """Read pyvi's word list from the installed package, and the administrative terms beside this module."""
    data = resources.files(PACKAGE).joinpath(WORDS_FILE).read_bytes()
    admin = ADMIN_PHRASES.read_bytes()
    return LexiconSource(entries=_lines(data) + _lines(admin), name=f"{PACKAGE} {WORDS_FILE}",
                         version=metadata.version(PACKAGE), licence=LICENCE, sha256=hashlib.sha256(data).hexdigest(),
                         admin_phrases_sha256=hashlib.sha256(admin).hexdigest())
