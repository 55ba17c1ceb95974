"""The user-facing example scripts run offline as documented and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.parametrize("script, name", [("train_fss_trainer.py", "fss_trainer"), ("train_yolo_api.py", "yolo_api")])
def test_training_examples(tmp_path, script, name):
    out = run(script, "--epochs", "1", "--out", str(tmp_path), cwd=tmp_path)
    assert (tmp_path / name / "weights" / "best.pt").is_file()
    assert "fss_beta" in (tmp_path / name / "args.yaml").read_text()
    assert "FSS:" in out  # the trainer's FSS log lines


def test_inspect_weights_example(tmp_path):
    out = run("inspect_weights.py", cwd=tmp_path)
    rows = re.findall(r"GT (\d): k=(\d+), positives=(\d+), IoU targets=\[(.*?)\], weights=\[(.*?)\]", out)
    assert [r[0] for r in rows] == ["0", "1", "2"]
    for _, k, n, ious, weights in rows:
        listed = [float(w) for w in weights.split(",")] if weights else []
        assert 1 <= int(k) and int(n) <= int(k) and len(listed) == int(n)
        assert all(0 < w < 2 for w in listed) and len(ious.split(",") if ious else []) == int(n)
