"""Metadata accuracy on the development corpus: digitise it with the real CLI, then run ``score.py metadata -v``.

    python tests/eval/eval_metadata.py [--corpus ../shared/corpus/dev] [--archive A --report R] [--json OUT]

Without ``--archive``/``--report`` the corpus batch is digitised into a temporary archive (removed afterwards);
with both given and the report present, that archive is scored as is (no OCR). ``score.py`` calls ``sohoa show``,
so ``.venv/bin`` is put first on PATH. Exit code: the scorer's (or the digitiser's when it fails to run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_THREAD_LIMIT", "1")
    return env


def _digitise(batch: Path, archive: Path, report: Path) -> int:
    print(f"Số hóa {batch} → {archive}", file=sys.stderr, flush=True)
    cmd = [str(BIN / "sohoa"), "digitise", str(batch), "--archive", str(archive), "--report", str(report)]
    code = subprocess.run(cmd, env=_env(), check=False).returncode
    return 0 if code == 3 else code  # 3: some documents failed; they are scored as misses


def _score(corpus: Path, archive: Path, report: Path, json_out: str | None) -> int:
    cmd = [str(BIN / "python"), str(corpus.parent / "score.py"), "metadata", str(corpus), "--archive", str(archive),
           "--report", str(report), "-v"]
    if json_out:
        cmd += ["--json", json_out]
    return subprocess.run(cmd, env=_env(), check=False).returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--archive", type=Path, help="an archive already holding the corpus batch")
    ap.add_argument("--report", type=Path, help="the digitise report of that archive")
    ap.add_argument("--json", help="also write every number as JSON to this file")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    if not (corpus / "batch").is_dir() or not (corpus.parent / "score.py").is_file():
        print(f"Không tìm thấy bộ dữ liệu đánh giá {corpus} (cần batch/ và ../score.py)", file=sys.stderr)
        return 4
    if args.archive and args.report and args.report.is_file():
        return _score(corpus, args.archive.resolve(), args.report.resolve(), args.json)
    if args.archive or args.report:
        archive = (args.archive or Path(tempfile.mkdtemp(prefix="sohoa-eval-")) / "archive").resolve()
        report = (args.report or archive / "report.json").resolve()
        code = _digitise(corpus / "batch", archive, report)
        return code or _score(corpus, archive, report, args.json)
    with tempfile.TemporaryDirectory(prefix="sohoa-eval-") as tmp:
        archive, report = Path(tmp) / "archive", Path(tmp) / "report.json"
        code = _digitise(corpus / "batch", archive, report)
        return code or _score(corpus, archive, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
