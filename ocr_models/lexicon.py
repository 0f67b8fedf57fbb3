"""The Vietnamese word list the language correction reads with (``pipeline.language``), and its provenance.

Source: ``models/words.txt`` of the ``pyvi`` package (Python Vietnamese Toolkit, Viet-Trung Tran, MIT licence:
use, copy and distribution allowed with the copyright notice, which ships in the installed package), about 31,000
Vietnamese words of one to several syllables. The file is read from the installed package with
``importlib.resources`` (nothing of it is copied here); its SHA-256 goes into each page's provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata, resources

PACKAGE = "pyvi"
WORDS_FILE = "models/words.txt"
LICENCE = "MIT"


@dataclass(frozen=True)
class LexiconSource:
    """The entries of the word list (one word a line, NFC) and where they come from."""

    entries: tuple[str, ...]
    name: str
    version: str
    licence: str
    sha256: str

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "licence": self.licence, "sha256": self.sha256}


def load_lexicon() -> LexiconSource:
    """Read pyvi's word list from the installed package."""
    import unicodedata

    data = resources.files(PACKAGE).joinpath(WORDS_FILE).read_bytes()
    text = unicodedata.normalize("NFC", data.decode("utf-8"))
    entries = tuple(line.strip() for line in text.splitlines() if line.strip())
    return LexiconSource(entries=entries, name=f"{PACKAGE} {WORDS_FILE}", version=metadata.version(PACKAGE),
                         licence=LICENCE, sha256=hashlib.sha256(data).hexdigest())
