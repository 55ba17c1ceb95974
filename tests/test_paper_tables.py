"""`benchmarks/paper_tables.py`: one command per paper table trains its grid on the demo data with the fast recipe and
keeps a summary that `benchmarks/tables.py` turns into the docs' table, naming the runs still missing."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

from ultralytics_fss.demo import DATA_SEED
from ultralytics_fss.synthetic import dataset_name

ROOT = Path(__file__).resolve().parents[1]


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False, timeout=900)


def test_a_table_trains_keeps_and_renders_with_its_missing_runs(tmp_path):
    results = tmp_path / "results"
    flags = ["--seeds", "0", "--epochs", "1", "--images", "16", "--imgsz", "64", "--batch", "4"]
    done = script("paper_tables.py", "yolo26", *flags, "--project", str(tmp_path / "p"), "--keep", "--results",
                  str(results))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((results / "yolo26" / "study.json").read_text())
    assert meta["model"] == "yolo26n.yaml" and meta["runs"] == 3
    demo_data = dataset_name(images=16, imgsz=64, objects=(8, 20), size=(0.08, 0.2), seed=DATA_SEED, task="detect")
    assert (tmp_path / "p" / "data" / demo_data / "data.yaml").is_file()  # the demo's data, at this size
    assert meta["train_args"]["optimizer"] == "AdamW" and meta["train_args"]["mosaic"] == 0.0  # the fast recipe
    assert meta["planned"] == {"variants": ["tal", "fss", "fss-o2o"], "seeds": [0, 1, 2]}
    assert meta["command"].startswith("python benchmarks/paper_tables.py yolo26 --seeds 0 --epochs 1")
    assert "--keep" not in meta["command"]
    page = tmp_path / "page.md"
    page.write_text("<!-- table: yolo26 | AP, mAP50-95 | vs fss -->\n<!-- /table -->\n")
    render = script("tables.py", "readme", "--files", str(page), "--results", str(results))
    assert render.returncode == 0, render.stderr
    text = page.read_text()
    assert "recipe: Ultralytics' defaults but" in text and "optimizer AdamW" in text
    assert (
        "Not finished: tal seed 1, tal seed 2, fss seed 1, fss seed 2, fss-o2o seed 1, fss-o2o seed 2 missing" in text
    )
    variants = [line.split(" | ")[0].strip("| ") for line in text.splitlines() if line.startswith("| ")][1:]
    assert variants == ["fss", "tal", "fss-o2o"]
    again = script("paper_tables.py", "yolo26", *flags, "--project", str(tmp_path / "p"))  # resumes: nothing trains
    assert again.returncode == 0 and "done before with these arguments" in again.stdout + again.stderr


def test_keep_merges_a_later_project_and_refuses_runs_that_disagree(tmp_path):
    """`keep STUDY --also LATER`: rows of both, a run found in both stored once; a run whose numbers differ between
    the two is named, exit 2, nothing written."""
    flags = ["--seeds", "0", "--epochs", "1", "--images", "16", "--imgsz", "64", "--batch", "4"]
    assert script("paper_tables.py", "yolo26", *flags, "--project", str(tmp_path / "a")).returncode == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same runs (as a deterministic rerun gives)
    with open(tmp_path / "b" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    extra = {**rows[0], "variant": "tal-again", "folder": rows[0]["folder"]}
    with open(tmp_path / "b" / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, extra])
    done = script("tables.py", "keep", str(tmp_path / "a"), "both", "--also", str(tmp_path / "b"), "--command", "x",
                  "--results", str(tmp_path / "r"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "r" / "both" / "summary.csv", newline="") as f:
        kept = list(csv.DictReader(f))
    assert [r["variant"] for r in kept] == ["tal", "fss", "fss-o2o", "tal-again"]
    assert kept[-1]["folder"] == f"../b/{rows[0]['folder']}"
    (call,) = (tmp_path / "a" / "summaries").iterdir()  # one call's summary, its runs in the project above
    again = script("tables.py", "keep", str(call), "call", "--command", "x", "--results", str(tmp_path / "r"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "r" / "call" / "summary.csv").read_text().count("\n") == 4  # header + 3 runs
    rows[1]["AP"] = str(float(rows[1]["AP"]) + 0.01)  # fss seed 0 disagrees
    with open(tmp_path / "b" / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bad = script("tables.py", "keep", str(tmp_path / "a"), "bad", "--also", str(tmp_path / "b"), "--command", "x",
                 "--results", str(tmp_path / "r"))  # fmt: skip
    assert bad.returncode == 2 and "fss seed 0 differs from its run in" in bad.stderr, bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and not (tmp_path / "r" / "bad").exists()
