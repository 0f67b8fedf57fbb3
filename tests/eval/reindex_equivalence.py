"""Does ``sohoa reindex`` reproduce an archive's search results exactly?

    python tests/eval/reindex_equivalence.py ARCHIVE QUERIES.jsonl [--limit 20]

Copies ARCHIVE to a temporary folder, runs every query (``{"q": ...}`` per line, e.g. from
``make_dev_queries.py``), deletes the catalog and search index, rebuilds them from the object store alone with
``sohoa reindex``, runs the queries again and compares the whole JSON results (ids, order, scores, snippets,
totals). Prints the number of identical results; exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOHOA = Path(sys.executable).with_name("sohoa")


def search(archive: Path, query: str, limit: int) -> dict[str, object]:
    out = subprocess.run([str(SOHOA), "search", query, "--archive", str(archive), "--json", "--limit", str(limit)],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", type=Path)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args()
    queries = [json.loads(line)["q"] for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory(prefix="sohoa-reindex-") as tmp:
        archive = Path(tmp) / "archive"
        shutil.copytree(args.archive, archive, ignore=shutil.ignore_patterns("work"))
        before = [search(archive, q, args.limit) for q in queries]
        for f in archive.glob("catalog.sqlite*"):
            f.unlink()
        started = time.monotonic()
        proc = subprocess.run([str(SOHOA), "reindex", "--archive", str(archive)], capture_output=True, text=True)
        elapsed = time.monotonic() - started
        sys.stderr.write(proc.stderr)
        after = [search(archive, q, args.limit) for q in queries]
    same = sum(a == b for a, b in zip(before, after, strict=True))
    hits = sum(len(r["hits"]) for r in before)  # type: ignore[arg-type]
    print(f"reindex exit {proc.returncode} in {elapsed:.1f} s; {same}/{len(queries)} queries give identical results "
          f"({hits} hits compared)")
    for q, a, b in zip(queries, before, after, strict=True):
        if a != b:
            print(f"DIFFERENT: {q!r}")
    return 0 if same == len(queries) and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
