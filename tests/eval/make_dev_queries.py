"""Write search queries for a corpus with ground-truth metadata (``meta/<doc_id>.json``), for ``score.py search``.

    python tests/eval/make_dev_queries.py ../shared/corpus/dev > /tmp/dev-queries.jsonl

Per document: its subject typed without diacritics (``subject``), a 4-word slice of it (``subject4``), its
number/symbol (``number``) and the number without the body part (``number_partial``). Documents that share
the same subject are all expected for the subject queries (a subject alone cannot tell them apart).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from schemas.text import fold


def strip_prefix(subject: str) -> str:
    words = subject.split()
    if words and fold(words[0]) in ("ve", "v/v"):
        words = words[1:]
    if len(words) > 1 and fold(words[0]) == "viec" and fold(subject.split()[0]) == "ve":
        words = words[1:]
    return " ".join(words)


def main() -> None:
    corpus = Path(sys.argv[1])
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((corpus / "meta").glob("*.json"))]
    same_subject: dict[str, list[str]] = {}
    for gt in metas:
        same_subject.setdefault(fold(strip_prefix(gt.get("subject") or "")), []).append(gt["doc_id"])
    for gt in metas:
        doc = gt["doc_id"]
        subject = strip_prefix(gt.get("subject") or "")
        group = same_subject[fold(subject)]
        words = fold(subject).replace(",", " ").split()
        if words:
            print(json.dumps({"q": " ".join(words), "expect": group, "kind": "subject"}))
            mid = max(0, len(words) // 2 - 2)
            print(json.dumps({"q": " ".join(words[mid: mid + 4]), "expect": group, "kind": "subject4"}))
        if gt.get("code_number") and gt.get("code_notation"):
            number = f"{gt['code_number']}-{gt['code_notation']}"
            print(json.dumps({"q": number, "expect": [doc], "kind": "number"}, ensure_ascii=False))
            partial = f"{gt['code_number']}-{gt['code_notation'].split('/')[0]}"
            print(json.dumps({"q": partial, "expect": [doc], "kind": "number_partial"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
