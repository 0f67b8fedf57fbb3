"""Metadata accuracy on the development corpus: digitise it with the real CLI, then run ``score.py metadata -v``.

    python tests/eval/eval_metadata.py [--corpus ../shared/corpus/dev] [--archive A --report R] [--json OUT]

Without ``--archive``/``--report`` the corpus batch is digitised into a temporary archive (removed afterwards);
with both given and the report present, that archive is scored as is (no OCR). ``score.py`` calls ``sohoa show``,
so ``.venv/bin`` is put first on PATH. Exit code: the scorer's (or the digitiser's when it fails to run).

After the scorer, the wrong handwritten values are counted: for each field a corpus ``meta/*.json`` lists in
``handwritten``, a value sohoa shows that is not empty, differs from the truth (by the scorer's own field rule) and
has no field-level review reason naming that field (``field_handwritten`` / ``field_low_confidence``, ``field``).
The count is printed (and written as ``handwritten_wrong_unflagged`` into ``--json``); it does not change the exit
code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def _scorer(corpus: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("corpus_score", corpus.parent / "score.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {corpus.parent / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flagged_fields(shown: dict) -> set[str]:  # type: ignore[type-arg]
    """Fields a document's review reasons name (``params.field``)."""
    return {str(r.get("params", {}).get("field")) for r in shown.get("review_reason_codes") or []
            if r.get("params", {}).get("field")}


def count_handwritten_wrong(corpus: Path, archive: Path, report: Path) -> tuple[int, list[str]]:
    """(count, details) of handwritten fields shown non-empty, wrong and without a field-level review reason."""
    score = _scorer(corpus)
    arch = score.Archive(str(BIN / "sohoa"), str(archive), str(report))
    wrong: list[str] = []
    seen: set[str] = set()
    for m in score.load_manifest(str(corpus)):
        if m["doc_id"] in seen:
            continue
        seen.add(m["doc_id"])
        gt = json.loads((corpus / m["meta"]).read_text(encoding="utf-8"))
        fields = gt.get("handwritten") or []
        shown = arch.show(m["doc_source"]) if fields else None
        if not shown:
            continue
        md = shown.get("metadata") or {}
        flagged = _flagged_fields(shown)
        for field in fields:
            value = md.get(field)
            if value in (None, "", []) or field in flagged:
                continue
            if not score.FIELD_RULES[field](value, gt.get(field), gt):
                wrong.append(f"{m['doc_id']}: {field} = {value!r}, want {gt.get(field)!r}")
    return len(wrong), wrong


def _report_handwritten(corpus: Path, archive: Path, report: Path, json_out: str | None) -> None:
    os.environ["PATH"] = _env()["PATH"]
    count, details = count_handwritten_wrong(corpus, archive, report)
    print(f"wrong handwritten values without a field-level review reason: {count}")
    for line in details:
        print(f"  {line}")
    if json_out and Path(json_out).is_file():
        data = json.loads(Path(json_out).read_text(encoding="utf-8"))
        data["handwritten_wrong_unflagged"] = count
        Path(json_out).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _score_all(corpus: Path, archive: Path, report: Path, json_out: str | None) -> int:
    code = _score(corpus, archive, report, json_out)
    _report_handwritten(corpus, archive, report, json_out)
    return code


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
        return _score_all(corpus, args.archive.resolve(), args.report.resolve(), args.json)
    if args.archive or args.report:
        archive = (args.archive or Path(tempfile.mkdtemp(prefix="sohoa-eval-")) / "archive").resolve()
        report = (args.report or archive / "report.json").resolve()
        code = _digitise(corpus / "batch", archive, report)
        return code or _score_all(corpus, archive, report, args.json)
    with tempfile.TemporaryDirectory(prefix="sohoa-eval-") as tmp:
        archive, report = Path(tmp) / "archive", Path(tmp) / "report.json"
        code = _digitise(corpus / "batch", archive, report)
        return code or _score_all(corpus, archive, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
