"""Outside review of the kept match sets (``storage/search_sqlite/termsets.py``): attacks that held are listed in
the review report; what broke is pinned here."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from schemas.search import IndexEntry, SearchRequest
from tests.test_facets import LEVELS, make_entry


def _entry(doc_id: str, text: str, classification: str | None = None) -> IndexEntry:
    e = make_entry(random.Random(doc_id), doc_id)
    return e.model_copy(update={"text": f"VĂN BẢN {text} kết thúc.", "secrecy_level": LEVELS[classification],
                                "metadata": {**e.metadata, "classification": classification}})


def test_a_catalog_restored_in_place_does_not_count_a_hidden_document_through_kept_sets(tmp_path: Path) -> None:
    """A catalog file copied back in place (same inode: the process keeps its ``FacetColumns``, same
    generation) and written on gives its serials to other documents than the process read. A Tuyệt mật document
    now holding a serial an open one held before must not be counted for a clearance-0 caller (its match read
    from FTS5, its level taken from the kept live mask of the documents before the restore)."""
    from storage.search_sqlite import SqliteSearchIndex

    path, backup = tmp_path / "catalog.sqlite", tmp_path / "backup.sqlite"
    index = SqliteSearchIndex(path)
    index.upsert([_entry(f"d{n}", "zabor") for n in range(5)])
    index.close()
    shutil.copyfile(path, backup)
    index = SqliteSearchIndex(path)
    index.upsert([_entry(f"a{n}", "zabor") for n in range(5)])  # open documents, no "plarn"
    for clearance in (3, 2):  # the second request reads the columns and keeps the live mask
        index.search(SearchRequest(query="", clearance=clearance, facets=True, limit=0))
    index.close()
    inode = os.stat(path).st_ino
    shutil.copyfile(backup, path)  # restored in place
    assert os.stat(path).st_ino == inode and not Path(f"{path}-wal").exists()
    index = SqliteSearchIndex(path)
    try:
        index.upsert([_entry(f"b{n}", "zabor plarn" if n == 2 else "zabor", "Tuyệt mật" if n == 2 else None)
                      for n in range(5)])
        request = SearchRequest(query="plarn", clearance=0, facets=True, limit=0)
        got = index.search(request)
        assert got.total == 0, got.facets  # the only document holding "plarn" is Tuyệt mật
        assert all(not values for values in got.facets.values())
        assert index.search(request.model_copy(update={"clearance": 3})).total == 1
    finally:
        index.close()
