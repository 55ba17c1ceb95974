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


@pytest.mark.parametrize("task", ["detect", "obb", "segment", "pose"])
def test_demo_main_job(tmp_path, task):
    """The README's main job on tiny settings, for every task: both runs train, the table pairs them and counts
    positives for both."""
    proc = subprocess.run([sys.executable, "-m", "ultralytics_fss.demo", "--epochs", "1", "--images", "20", "--imgsz",
                           "64", "--batch", "4", "--project", str(tmp_path), "--task", task], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    suffix = {"detect": "", "obb": "-obb", "segment": "-seg", "pose": "-pose"}[task]
    assert f"task={task}, yolo11n{suffix}.yaml" in out
    rows = {(r[0], r[1]): r[2:] for r in (line.strip("| ").split(" | ") for line in
                                          (tmp_path / "results.md").read_text().splitlines()[2:])}  # fmt: skip
    assert set(rows) == {("0", "stock"), ("0", "fss"), ("0", "fss - stock")}
    for run in ("stock", "fss"):
        m50, m5095, s_epoch, pos = (float(v) for v in rows[("0", run)])
        assert 0 <= m5095 <= m50 <= 1 and s_epoch > 0 and pos > 0  # pos/GT read back from results.csv fss/* columns
    assert (tmp_path / "results.csv").read_text().startswith("run,seed,mAP50,mAP50-95,s/epoch,pos/GT")
    assert (tmp_path / "stock-seed0" / "results.csv").is_file() and (tmp_path / "fss-seed0" / "results.csv").is_file()
