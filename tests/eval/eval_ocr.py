"""OCR accuracy and speed of ``sohoa digitise`` on a corpus with ground truth (``make eval-ocr``).

    python tests/eval/eval_ocr.py [CORPUS] [--workers N] [--keep DIR]

Digitises ``CORPUS/batch`` (default ``../shared/corpus/dev``) into a fresh temporary archive with the real CLI,
then prints ``score.py ocr``'s table (page CER/WER, CER without accents, body CER, per degradation profile) and
the seconds per page of the whole command (process start to exit, orchestrator start-up included).
``--keep DIR`` keeps the archive and report in DIR, which should be empty (for ``score.py metadata`` or
``search`` afterwards; documents already in an archive are skipped, not re-read).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
ACCEPTED_EXIT = (0, 3)  # 3: the batch finished but some documents failed (scored as missing pages)


def digitise(corpus: Path, out: Path, workers: int | None) -> tuple[Path, Path, float, int]:
    """Run the CLI on ``corpus/batch``; returns archive, report, elapsed seconds and pages processed."""
    sohoa = Path(sys.executable).parent / "sohoa"
    archive, report = out / "archive", out / "report.json"
    cmd = [str(sohoa), "digitise", str(corpus / "batch"), "--archive", str(archive), "--report", str(report)]
    if workers:
        cmd += ["--workers", str(workers)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    elapsed = time.monotonic() - start
    if proc.returncode not in ACCEPTED_EXIT:
        raise SystemExit(f"sohoa digitise thất bại (mã {proc.returncode})")
    pages = int(json.loads(report.read_text(encoding="utf-8")).get("pages_processed") or 0)
    return archive, report, elapsed, pages


def score(corpus: Path, archive: Path, report: Path) -> int:
    """Print ``score.py ocr``'s table; returns its exit code."""
    script = corpus.parent / "score.py"
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [sys.executable, str(script), "ocr", str(corpus), "--archive", str(archive), "--report", str(report),
           "--sohoa", str(Path(bindir) / "sohoa")]
    return subprocess.run(cmd, env=env).returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--keep", type=Path, help="keep the archive and report in this folder")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    if not (corpus / "batch").is_dir() or not (corpus.parent / "score.py").is_file():
        raise SystemExit(f"không tìm thấy kho ngữ liệu: {corpus} (cần batch/ và ../score.py)")
    with tempfile.TemporaryDirectory(prefix="sohoa-eval-ocr-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        archive, report, elapsed, pages = digitise(corpus, out, args.workers)
        code = score(corpus, archive, report)
    per_page = elapsed / pages if pages else float("nan")
    print(f"\n{pages} trang trong {elapsed:.1f} s: {per_page:.2f} s/trang (cả thời gian khởi động)")
    sys.exit(code)


if __name__ == "__main__":
    main()
