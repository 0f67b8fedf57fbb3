"""Bulk writes of the embedded index (``storage/search_sqlite/bulk.py``): rows prepared in other processes are
exactly the rows prepared here, written in the same order (same docids); a batch that fails in another process
fails the rebuild and leaves the index as it was; ``sohoa reindex`` prepares in other processes and gives the
same search results."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from schemas.search import IndexEntry, SearchRequest
from schemas.text import fold_fast
from storage.search_sqlite import SqliteSearchIndex, bulk, write
from tests.conftest import DigitisedArchive
from tests.test_facets import make_entry
from tests.test_preservation import copy_archive, run_json, search_all
from tests.test_search_contract import entry
from tests.test_search_sqlite_pairs import _by_words, _doc, _found, _phrases

PHRASES = ("Ban Thường vụ Thành ủy", "công tác xây dựng Đảng", "chuyển đổi số", "HĐND thành phố", "hòa giải cơ sở")


class CountingPool(ProcessPoolExecutor):
    """The pool ``bulk`` starts, counting what it was given (the test knows the other processes did the work)."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        CountingPool.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[CountingPool]:
    monkeypatch.setattr(bulk, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(bulk, "HERE_FIRST", 1)  # the second batch on goes to the other processes
    CountingPool.submitted = 0
    return CountingPool


def entries(count: int, seed: int = 5) -> Iterator[IndexEntry]:
    rng = random.Random(seed)
    for n in range(count):
        doc_id = f"d{rng.randrange(count):05d}" if n % 97 == 0 else f"d{n:05d}"  # some ids given twice
        e = make_entry(rng, doc_id)
        text = " ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 6)))
        yield e.model_copy(update={"text": f"{e.text}\n\n{text}"})


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the index's own tables, and every token instance of its FTS5 indexes."""
    conn = sqlite3.connect(path)
    try:
        tables = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                  for t in ("search_docs", "search_text", "search_pairs_pending")}
        for fts in ("search_fts", "search_head", "search_pairs"):
            conn.execute(f"CREATE VIRTUAL TABLE temp.v_{fts} USING fts5vocab(main, {fts}, 'instance')")
            tables[fts] = conn.execute(f"SELECT * FROM temp.v_{fts} ORDER BY 1, 2, 3, 4").fetchall()
        tables["serial"] = conn.execute("SELECT value FROM meta WHERE key = 'search_serial'").fetchall()
        return tables
    finally:
        conn.close()


def build(path: Path, processes: int, count: int) -> SqliteSearchIndex:
    index = SqliteSearchIndex(path, index_processes=processes)
    index.replace_all(entries(count))
    return index


def test_rows_prepared_in_other_processes_are_the_rows_prepared_here(
        tmp_path: Path, counted: type[CountingPool]) -> None:
    here, apart = build(tmp_path / "here.sqlite", 1, 1500), build(tmp_path / "apart.sqlite", 2, 1500)
    assert counted.submitted == 5  # 1500 documents: 6 batches of 256, the first here
    assert dump(tmp_path / "here.sqlite") == dump(tmp_path / "apart.sqlite")
    for q in ("zabor", '"cong tac xay dung"', "hoà giải", "thuong vu quilto"):
        request = SearchRequest(query=q, clearance=3, limit=50, facets=True)
        assert here.search(request) == apart.search(request)
    here.close()
    apart.close()
    assert not multiprocessing.active_children()


def test_a_small_rebuild_starts_no_process(tmp_path: Path, counted: type[CountingPool]) -> None:
    build(tmp_path / "small.sqlite", 2, 200).close()
    assert counted.submitted == 0


def test_a_batch_failing_in_another_process_fails_the_rebuild_and_keeps_the_index(
        tmp_path: Path, counted: type[CountingPool]) -> None:
    index = build(tmp_path / "index.sqlite", 2, 600)
    before = dump(tmp_path / "index.sqlite")
    bad = next(entries(1, seed=9)).model_copy(update={"id": "bad", "metadata": {"subject": {1, 2}}})  # no JSON

    def stream() -> Iterator[IndexEntry]:
        for n, e in enumerate(entries(900, seed=11)):
            yield bad if n == 700 else e  # in the third batch: prepared in another process

    with pytest.raises(TypeError, match="set"):
        index.replace_all(stream())
    assert counted.submitted > 0
    assert dump(tmp_path / "index.sqlite") == before
    index.close()
    assert not multiprocessing.active_children()


def test_reindex_prepares_in_other_processes_and_finds_the_same(
        digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, counted: type[CountingPool]) -> None:
    monkeypatch.setattr(bulk, "HERE_FIRST", 0)
    monkeypatch.setattr("storage.search_sqlite.write._BATCH", 2)  # 5 documents: 3 batches, all in other processes
    monkeypatch.setenv("SOHOA_INDEX_PROCESSES", "2")
    archive = copy_archive(digitised, tmp_path / "archive")
    before = search_all(capsys, archive)
    code, report = run_json(capsys, "reindex", "--archive", str(archive), "--json")
    assert code == 0 and report["documents_indexed"] == 5 and report["problems"] == []
    assert counted.submitted == 3
    assert search_all(capsys, archive) == before


def test_a_rebuilt_index_holds_every_pair_and_finds_every_phrase_the_words_find(
        tmp_path: Path, counted: type[CountingPool], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write, "PAIRS_BATCH", 7)  # later single writes: some written, some pending
    rng = random.Random(8)
    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path, index_processes=2)
    index.replace_all(entry(f"d{n}", _doc(rng, n), classification=rng.choice([None, "Mật"])) for n in range(700))
    assert counted.submitted == 2  # 700 documents: 3 batches, the first here
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0] == 0
    conn.close()
    for n in (1, 2, 650, 699, 701, 702, 703, 704, 705, 706, 707, 708, 709, 710):  # replaced, then new
        index.upsert([entry(f"d{n}", _doc(rng, n))])
    index.delete(["d3", "d700", "d705"])
    for phrase in _phrases(rng, 150):
        words = " ".join(fold_fast(phrase.strip('"')).split())
        for clearance in (0, 3):
            want = _by_words(path, f'"{words}"', clearance)
            assert _found(index, phrase, clearance=clearance) == (len(want), want), phrase
    index.close()
