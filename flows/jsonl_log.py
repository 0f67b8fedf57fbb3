"""Append-only JSON-lines logs of the archive folder (``run-log.jsonl``, ``backup-log.jsonl``): one pydantic model
a line. A line that does not parse as the model (a torn write, a hand edit) is skipped when read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def append_entry(path: Path, entry: BaseModel) -> None:
    """Append ``entry`` as one line to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(entry.model_dump_json() + "\n")


def read_entries(path: Path, model: type[M]) -> list[M]:
    """The lines of ``path`` that parse as ``model``, in the order written (none when there is no log)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entries.append(model.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue
    return entries
