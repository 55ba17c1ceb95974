"""The user-facing example scripts run offline as documented and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here trains or runs a training in a subprocess

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


def test_demo_main_job_every_task_in_one_project(tmp_path):
    """The README's main job on tiny settings, for two tasks one after the other in the same project (as a user tries
    the default demo, then `--task segment --images 300`): each task's data is generated into its own folder, both
    runs train, the table pairs them and counts positives for both, and every earlier result stays. (obb and pose
    train through the same demo code with their own model and data: `test_tasks.py` trains every task.)"""
    done = []
    for task, images in (("detect", 20), ("segment", 24)):
        proc = subprocess.run([sys.executable, "-m", "ultralytics_fss.demo", "--epochs", "1", "--images", str(images),
                               "--imgsz", "64", "--batch", "4", "--project", str(tmp_path), "--task", task],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        tail = [line for line in proc.stdout.splitlines() if line.strip()][-6:]  # the answer is printed last
        assert tail[-1] == "=" * 100 and "Result:" in tail[-2]
        assert "fss " in tail[-2] and " points (1 seed: no interval" in tail[-2]
        assert tail[-3].startswith("Reproducibility:") and "4.6 minutes" in tail[-4] and tail[-5].startswith("Time: ")
        assert "TAL assignment:" in out and "FSS assignment:" in out and "FSS: pos_per_gt" not in out
        suffix = {"detect": "", "obb": "-obb", "segment": "-seg", "pose": "-pose"}[task]
        assert f"task={task}, yolo11n{suffix}.yaml" in out
        shape = "obj4-10-size0.15-0.3" if task in {"segment", "pose"} else "obj8-20-size0.08-0.2"
        data = tmp_path / "data" / f"{task}-shapes-{images}img-64px-{shape}-seed1234"
        assert (data / "make_dataset.json").is_file()
        text = (tmp_path / "summary.md").read_text()
        lines = text[text.index("| variant | seed | mAP50 |"):].splitlines()[2:]  # the table of runs, last
        runs = {cells[0]: cells for cells in (line.strip("| ").split(" | ") for line in lines)}
        assert set(runs) == {"tal", "fss"}
        for cells in runs.values():
            m50, m5095 = float(cells[2]), float(cells[3])
            s_epoch, pos = float(cells[-3]), float(cells[-2])
            assert 0 <= m5095 <= m50 <= 1 and s_epoch > 0 and pos > 0  # pos/GT read back from the fss/* columns
            done.append(tmp_path / cells[-1])
        assert (tmp_path / "summary.csv").read_text().startswith("variant,seed,AP,")
    assert len(done) == 4 and all((d / "results.csv").is_file() and (d / "compare.json").is_file() for d in done)
    assert len(list((tmp_path / "summaries").glob("*/summary.md"))) == 2  # each task's study kept
    assert len(list((tmp_path / "data").iterdir())) == 2
