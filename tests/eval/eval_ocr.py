"""OCR accuracy and speed on a corpus with ground truth, per configuration (``make eval-ocr``).

    python tests/eval/eval_ocr.py [CORPUS] [--configs default,no-reread,no-vocabulary,raw] [--workers N]
                                  [--keep DIR] [--json OUT]

Each configuration digitises ``CORPUS/batch`` (default ``../shared/corpus/dev``) into a fresh archive with the
real CLI (``raw``: plain ``tesseract -l vie --oem 1 --psm 3`` on the same page images, the baseline), then
``score.py ocr`` scores it. Printed per degradation class and overall: page CER (reading order as in the ground
truth), body CER, the share of errors that are diacritics only ((CER − CER without marks) / CER), and seconds
per page (wall clock of one page while ``--workers`` pages run at once; ``raw``: the same for tesseract alone).
For sohoa configurations it also prints how well the page review flag separates pages whose true CER exceeds
1.5 % from the others, and the whole command's seconds per page (process start to exit).

Configurations: ``default`` (what ships), ``no-reread`` (``SOHOA_OCR_REREAD=false``: no second reading of doubtful
lines), ``no-vocabulary`` (``SOHOA_OCR_VOCABULARY=false``: no user words and patterns), ``no-language``
(``SOHOA_OCR_LANGUAGE_CORRECTION=false``: no Vietnamese lexicon correction, the "before" of the language step),
``raw``. With ``raw`` and a sohoa configuration, every page where sohoa's page CER is above raw tesseract's is
listed. Classified documents of the corpus are digitised without a copy approval for the evaluation
(``SOHOA_SECRET_WITHOUT_APPROVAL=review``) so that every page is scored.
``--keep DIR`` keeps each configuration's archive and report in ``DIR/<config>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.load import discover_documents, iter_pages  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
ACCEPTED_EXIT = (0, 3)  # 3: the batch finished but some documents failed (scored as missing pages)
CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "no-reread": {"SOHOA_OCR_REREAD": "false"},
    "no-vocabulary": {"SOHOA_OCR_VOCABULARY": "false"},
    "no-language": {"SOHOA_OCR_LANGUAGE_CORRECTION": "false"},
    "raw": {},
}
REVIEW_CER = 0.015  # pages above this true CER should be flagged for review (pipeline.quality)
BIN = Path(sys.executable).parent


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "OMP_THREAD_LIMIT": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SOHOA_SECRET_WITHOUT_APPROVAL": "review", **(extra or {})}


def digitise(corpus: Path, out: Path, workers: int | None, env: dict[str, str]) -> tuple[Path, Path, float, int]:
    """Run the CLI on ``corpus/batch``; returns archive, report, elapsed seconds and pages processed."""
    archive, report = out / "archive", out / "report.json"
    cmd = [str(BIN / "sohoa"), "digitise", str(corpus / "batch"), "--archive", str(archive), "--report", str(report)]
    if workers:
        cmd += ["--workers", str(workers)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(env))
    elapsed = time.monotonic() - start
    if proc.returncode not in ACCEPTED_EXIT:
        raise SystemExit(f"sohoa digitise thất bại (mã {proc.returncode})")
    pages = int(json.loads(report.read_text(encoding="utf-8")).get("pages_processed") or 0)
    return archive, report, elapsed, pages


def _page_ids(corpus: Path) -> dict[tuple[str, int], str]:
    ids = {}
    for line in (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        m = json.loads(line)
        ids[(m["doc_source"], int(m["page"]))] = m["page_id"]
    return ids


def raw_tesseract(corpus: Path, out: Path, workers: int) -> tuple[Path, dict[str, float]]:
    """Plain tesseract on the decoded page images: texts named ``<page_id>.txt`` and seconds per page."""
    import cv2

    ids = _page_ids(corpus)
    pred = out / "pred"
    pred.mkdir(parents=True, exist_ok=True)
    jobs = []
    for doc in discover_documents(corpus / "batch"):
        for page in iter_pages(doc):
            page_id = ids.get((doc.source, page.number))
            if page_id:
                image = out / f"{page_id}.png"
                cv2.imwrite(str(image), page.image)
                jobs.append((page_id, image, page.dpi))

    def run(job: tuple[str, Path, int]) -> tuple[str, float]:
        page_id, image, dpi = job
        start = time.monotonic()
        subprocess.run(["tesseract", str(image), str(pred / page_id), "-l", "vie", "--oem", "1", "--psm", "3",
                        "--dpi", str(dpi)], capture_output=True, check=True, env=_env())
        image.unlink()
        return page_id, time.monotonic() - start

    with ThreadPoolExecutor(max_workers=workers) as pool:
        seconds = dict(pool.map(run, jobs))
    return pred, seconds


def score(corpus: Path, out: Path, *, archive: Path | None = None, report: Path | None = None,
          pred: Path | None = None) -> dict[str, object]:
    """``score.py ocr``'s numbers (total, groups, pages) as JSON."""
    result = out / "score.json"
    cmd = [sys.executable, str(corpus.parent / "score.py"), "ocr", str(corpus), "--json", str(result)]
    cmd += ["--pred", str(pred)] if pred else ["--archive", str(archive), "--report", str(report),
                                              "--sohoa", str(BIN / "sohoa")]
    subprocess.run(cmd, env=_env(), check=True, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text(encoding="utf-8"))


def sohoa_pages(corpus: Path, archive: Path, report: Path) -> tuple[dict[str, float], set[str]]:
    """Seconds per page (from each page's provenance) and the pages flagged for review, by page id."""
    ids = _page_ids(corpus)
    seconds: dict[str, float] = {}
    flagged: set[str] = set()
    for doc in json.loads(report.read_text(encoding="utf-8"))["documents"]:
        if not doc.get("id"):
            continue
        shown = subprocess.run([str(BIN / "sohoa"), "show", doc["id"], "--archive", str(archive), "--json"],
                               capture_output=True, text=True, env=_env(), check=True)
        data = json.loads(shown.stdout)
        for number, steps in enumerate(data["provenance"]["preprocessing"]["pages"], 1):
            page_id = ids.get((doc["source"], number))
            if page_id and "seconds" in steps:
                seconds[page_id] = float(steps["seconds"])
        for reason in data.get("review_reason_codes") or []:  # schemas.reasons: a page's reason names its page
            page = reason.get("params", {}).get("page")
            if isinstance(page, int) and (doc["source"], page) in ids:
                flagged.add(ids[(doc["source"], page)])
    return seconds, flagged


def _pct(x: float | None) -> str:
    return "      -" if x is None else f"{100 * x:7.2f}"


def print_table(name: str, scored: dict[str, object], seconds: dict[str, float]) -> None:
    groups = dict(scored["groups"])  # type: ignore[call-overload]
    pages = dict(scored["pages"])  # type: ignore[call-overload]
    per_group: dict[str, list[float]] = defaultdict(list)
    for page_id, info in pages.items():
        if page_id in seconds:
            per_group[info["group"]].append(seconds[page_id])
    print(f"\n== {name}")
    print(f"{'profile':<14}{'pages':>6}{'CER%':>8}{'bodyCER%':>9}{'dấu%':>8}{'s/trang':>9}")
    rows = [*sorted(groups.items()), ("TOTAL", scored["total"])]
    for group, g in rows:
        cer, noacc = g["CER"], g["CER_noacc"]
        share = (cer - noacc) / cer if cer else None
        times = [t for ts in per_group.values() for t in ts] if group == "TOTAL" else per_group.get(group, [])
        spp = f"{sum(times) / len(times):9.2f}" if times else "        -"
        print(f"{group:<14}{g['pages']:>6}{_pct(cer)}{_pct(g['body_CER']):>9}{_pct(share)}{spp}")


def flag_quality(scored: dict[str, object], flagged: set[str]) -> str:
    pages = dict(scored["pages"])  # type: ignore[call-overload]
    bad = [p for p, info in pages.items() if info["CER"] > REVIEW_CER]
    good = [p for p in pages if p not in bad]
    caught = sum(p in flagged for p in bad)
    false = sum(p in flagged for p in good)
    precision = caught / (caught + false) if caught + false else 1.0
    recall = caught / len(bad) if bad else 1.0
    return (f"cờ cần xem lại: bắt {caught}/{len(bad)} trang CER > {REVIEW_CER:.1%} (recall {recall:.2f}),"
            f" gắn nhầm {false}/{len(good)} trang tốt, precision {precision:.2f}")


def worse_than_raw(results: dict[str, object]) -> list[str]:
    """One line per page where a sohoa configuration's page CER is above raw tesseract's on the same page."""
    raw = results.get("raw")
    if not isinstance(raw, dict):
        return []
    raw_pages = raw["score"]["pages"]
    lines = []
    for name, result in results.items():
        if name == "raw" or not isinstance(result, dict):
            continue
        for page_id, info in sorted(result["score"]["pages"].items()):
            theirs = raw_pages.get(page_id, {}).get("CER")
            if theirs is not None and info["CER"] > theirs:
                lines.append(f"{name}: {page_id} CER {100 * info['CER']:.2f} % > raw {100 * theirs:.2f} %")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--configs", default="default", help=f"comma-separated, from {', '.join(CONFIGS)}, or all")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", type=Path, help="keep each configuration's output in this folder")
    ap.add_argument("--json", type=Path, help="write every number as JSON")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    if not (corpus / "batch").is_dir() or not (corpus.parent / "score.py").is_file():
        raise SystemExit(f"không tìm thấy kho ngữ liệu: {corpus} (cần batch/ và ../score.py)")
    names = list(CONFIGS) if args.configs == "all" else [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"cấu hình không có: {', '.join(unknown)} (chọn trong {', '.join(CONFIGS)})")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="sohoa-eval-ocr-") as tmp:
        for name in names:
            out = (args.keep or Path(tmp)) / name
            out.mkdir(parents=True, exist_ok=True)
            if name == "raw":
                start = time.monotonic()
                pred, seconds = raw_tesseract(corpus, out, args.workers)
                elapsed = time.monotonic() - start
                scored = score(corpus, out, pred=pred)
                print_table(name, scored, seconds)
                results[name] = {"score": scored, "elapsed_s": elapsed}
                continue
            archive, report, elapsed, pages = digitise(corpus, out, args.workers, CONFIGS[name])
            scored = score(corpus, out, archive=archive, report=report)
            seconds, flagged = sohoa_pages(corpus, archive, report)
            print_table(name, scored, seconds)
            print(flag_quality(scored, flagged))
            per_page = elapsed / pages if pages else float("nan")
            print(f"cả lệnh: {pages} trang trong {elapsed:.1f} s: {per_page:.2f} s/trang (cả thời gian khởi động)")
            results[name] = {"score": scored, "elapsed_s": elapsed, "flagged": sorted(flagged)}
    worse = worse_than_raw(results)
    if "raw" in results and len(results) > 1:
        print(f"\ntrang kém hơn tesseract thô: {len(worse)}")
        print("\n".join(worse))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
