"""Secrecy marks on the hard-stamp set (issue 17): generate it, digitise it, score it per condition.

    python tests/eval/eval_secrecy.py [--out DIR] [--only ID,ID] [--workers N] [--json OUT]

The set (``tests/fixtures/generate_secrecy.py``, deterministic) is generated into a temporary folder (or
``--out``), digitised with the real CLI, then every document is scored: **missed** (classified, but neither
held nor classified), **under** (a lower level than printed; ``under!`` when no review flag names the mark),
**exact**, **over** (a higher level: held or reviewed more strictly than needed), and for decoys **held**
(quarantined or classified). Exit code 0 when nothing was missed, nothing under-classified without a flag and at
most 5 % of the decoys were held.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fixtures import generate_secrecy as gen  # noqa: E402

LEVELS = (None, "Mật", "Tối mật", "Tuyệt mật")
FLAG_CODES = ("secrecy_uncertain", "secrecy_stamp_unsure")  # schemas.reasons.ReasonCode: the secrecy review flags
DECOY_HELD_MAX = 0.05


def digitise(batch: Path, archive: Path, report: Path, workers: int | None = None) -> None:
    """The real CLI (a separate process, as an archivist runs it)."""
    cmd = [str(ROOT / ".venv" / "bin" / "sohoa"), "digitise", str(batch), "--archive", str(archive),
           "--report", str(report)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    code = subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL).returncode
    if code not in (0, 3):
        raise SystemExit(f"sohoa digitise thoát với mã {code}")


def outcomes(archive: Path, report: Path) -> dict[str, dict[str, Any]]:
    """Per source file: status, classification (stored or held), review reasons."""
    from flows.intake import quarantine_entries
    from flows.queries import show_document
    from flows.wiring import build_object_store
    from schemas.settings import Settings

    settings = Settings(archive=archive)
    held = {e["doc_id"]: e for e in quarantine_entries(build_object_store(settings))}
    out: dict[str, dict[str, Any]] = {}
    for doc in json.loads(report.read_text(encoding="utf-8"))["documents"]:
        row: dict[str, Any] = {"status": doc["status"], "reasons": doc.get("review_reasons") or [],
                               "codes": [c["code"] for c in doc.get("review_reason_codes") or []],
                               "classification": None, "stamps": []}
        if doc["status"] == "quarantined":
            row["classification"] = held.get(doc["id"], {}).get("classification") or "Tuyệt mật"
        elif doc["status"] != "failed":
            with contextlib.redirect_stdout(io.StringIO()):
                data = show_document(settings, doc["id"])
            row["classification"] = data["metadata"]["classification"]  # type: ignore[index]
            pages = data["provenance"]["preprocessing"]["pages"]  # type: ignore[index]
            row["stamps"] = [s for p in pages for s in p.get("secrecy_stamps") or []]
        out[Path(doc["source"]).name] = row
    return out


def score(expected: list[dict[str, Any]], got: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per condition and overall counts; ``failures`` lists the documents that break the acceptance rules."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: list[str] = []
    for case in expected:
        row = got.get(case["file"], {"status": "failed", "classification": None, "reasons": [], "codes": []})
        cond = case["condition"]
        t = table[cond]
        t["docs"] += 1
        level = row["classification"]
        held = row["status"] == "quarantined"
        flagged = any(c in FLAG_CODES for c in row["codes"])
        if row["status"] == "failed":
            t["failed"] += 1
        if case["decoy"]:
            if held or level:
                t["decoy_held"] += 1
                failures.append(f"{case['file']}: mồi nhử bị giữ/phân loại ({row['status']}, {level})")
            continue
        truth = LEVELS.index(case["classification"])
        got_level = LEVELS.index(level) if level in LEVELS else 3
        if not level and not held:
            t["missed"] += 1
            failures.append(f"{case['file']}: bỏ sót {case['classification']}")
        elif got_level < truth:
            t["under_flagged" if flagged else "under_unflagged"] += 1
            if not flagged:
                failures.append(f"{case['file']}: {level} < {case['classification']} không có cờ")
        elif got_level == truth:
            t["exact"] += 1
        else:
            t["over"] += 1
        t["held"] += held
        t["flagged"] += flagged
    total: dict[str, int] = defaultdict(int)
    for t in table.values():
        for k, v in t.items():
            total[k] += v
    decoys = sum(1 for c in expected if c["decoy"])
    return {"conditions": {k: dict(v) for k, v in table.items()}, "total": dict(total), "failures": failures,
            "decoys": decoys, "decoy_held_share": total["decoy_held"] / decoys if decoys else 0.0}


COLUMNS = ("docs", "missed", "under_unflagged", "under_flagged", "exact", "over", "held", "flagged", "decoy_held",
           "failed")


def print_table(result: dict[str, Any]) -> None:
    head = f"{'condition':22s}" + "".join(f"{c:>16s}" for c in COLUMNS)
    print(head)
    for cond, t in result["conditions"].items():
        print(f"{cond:22s}" + "".join(f"{t.get(c, 0):>16d}" for c in COLUMNS))
    print(f"{'TOTAL':22s}" + "".join(f"{result['total'].get(c, 0):>16d}" for c in COLUMNS))
    print(f"mồi nhử bị giữ: {result['total'].get('decoy_held', 0)}/{result['decoys']} "
          f"({result['decoy_held_share']:.1%})")
    for f in result["failures"]:
        print("  ✗", f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, help="folder for the set and the archive (default: a temporary one)")
    ap.add_argument("--only", help="comma-separated case ids")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sohoa-secrecy-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        only = set(args.only.split(",")) if args.only else None
        cases = gen.write(out, only)
        print(f"{len(cases)} tài liệu sinh vào {out / 'batch'}; đang số hóa…", file=sys.stderr, flush=True)
        digitise(out / "batch", out / "archive", out / "report.json", args.workers)
        got = outcomes(out / "archive", out / "report.json")
        expected = json.loads((out / "expected.json").read_text(encoding="utf-8"))
        result = score(expected, got)
        print_table(result)
        if args.json:
            args.json.write_text(json.dumps({"result": result, "documents": got}, ensure_ascii=False, indent=1),
                                 encoding="utf-8")
    ok = not result["failures"] or (result["total"].get("missed", 0) == 0
                                     and result["total"].get("under_unflagged", 0) == 0
                                     and result["decoy_held_share"] <= DECOY_HELD_MAX)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
