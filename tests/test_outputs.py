"""Every command that writes refuses an output folder it cannot write into before any work: one line naming the
folder, exit status 2, and nothing written or changed (a file in the way is left as it was)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ultralytics_fss.large_images.files import unwritable

# command: (arguments with OUT for the output folder, the flag named in the message); the inputs need not exist:
# the output is checked first.
COMMANDS = {
    "tile": (["data.yaml", "OUT"], "DST"),
    "tile_dota": (["dota-src", "OUT"], "DST"),
    "merge_dota": (["tiles", "--pred-dir", "preds", "--out", "OUT"], "--out"),
    "merge_tiles": (["tiles", "--pred-dir", "preds", "--out", "OUT"], "--out"),
    "predict_tiled": (["--model", "best.pt", "--source", "image.png", "--save", "--project", "OUT"], "--project"),
    "evaluate": (["--predictions", "preds", "--data", "data.yaml", "--out", "OUT"], "--out"),
    "compare": (["--data", "data.yaml", "--project", "OUT"], "--project"),
    "demo": (["--project", "OUT"], "--project"),
    "visualize": (["--model", "best.pt", "--source", "image.png", "--out", "OUT/assign.png"], "--out"),
}


@pytest.fixture(params=["read-only", "file in the way"])
def blocked(request, tmp_path) -> tuple[Path, Path]:
    """(an output folder nothing can be written into, the path whose state must not change).

    Read-only: a folder without write permission, or for root, whom permissions do not stop, a folder under /sys
    (sysfs refuses new entries to everyone). File in the way: the output's parent is a regular file."""
    if request.param == "file in the way":
        blocker = tmp_path / "notes.txt"
        blocker.write_text("keep me\n")
        return blocker / "out", blocker
    if os.geteuid() == 0:
        return Path("/sys/ultralytics-fss-out/run"), Path("/sys")
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    request.addfinalizer(lambda: ro.chmod(0o755))
    return ro / "out", ro


def test_unwritable_names_the_folder_and_why(blocked, tmp_path):
    out, blocker = blocked
    why = unwritable(out)
    assert why and str(blocker) in why and ("a file, not a folder" in why or "not writable" in why)
    assert unwritable(tmp_path / "new" / "deeper") is None and not (tmp_path / "new").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_writing_command_refuses_an_unwritable_output(command, blocked, tmp_path):
    """`python -m ultralytics_fss.<command>` as users run it (a subprocess: the real logging and exit status)."""
    out, blocker = blocked
    state = lambda: (sorted(p.name for p in blocker.iterdir()) if blocker.is_dir() else blocker.read_text(),
                     sorted(p.name for p in tmp_path.iterdir()))  # fmt: skip
    before = state()
    args, flag = COMMANDS[command]
    cmd = [sys.executable, "-m", f"ultralytics_fss.{command}", *(a.replace("OUT", str(out)) for a in args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "YOLO_OFFLINE": "1"})
    lines = [x for x in (proc.stdout + proc.stderr).strip().splitlines() if x.strip()]
    assert proc.returncode == 2, lines
    assert len(lines) == 1 and flag in lines[0] and str(out) in lines[0] and "cannot write there" in lines[0], lines
    assert state() == before  # nothing written, the file in the way unchanged
