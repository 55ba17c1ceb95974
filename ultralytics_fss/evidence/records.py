"""The run records of a comparison: each run folder's `compare.json` (what determines the run's result, and the
result once trained) and the atomic writes of a study's files. Read and written by `evidence.compare` (the engine)
and `evidence.schedule` (its processes and Ray tasks), which import them from here, not from each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORD = "compare.json"  # in each run folder: {"record": what determines the result, "result": its row or None}


def read_run(run_dir: Path) -> dict | None:
    """The stored {record, result} of a run folder; None when it has none (not a comparison run, or unreadable)."""
    try:
        return json.loads((run_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None


def write_text(path: Path, text: str) -> None:
    """Write `text` atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as JSON atomically."""
    write_text(path, json.dumps(obj, indent=1))
