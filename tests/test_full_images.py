"""Runs on tiles scored on the full images, as the FSS paper scores DOTA: `compare`'s path (`tiled_root`,
`check_full_images`, `score_full_images`) against `merge_dota` and DOTA's metric, its refusals, and one real tiny
study on tiles of the shipped DOTA samples."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_merge_dota import labels_as_predictions
from ultralytics_fss.evidence.identity import dataset_fingerprint
from ultralytics_fss.large_images import MergeError, tile_dota
from ultralytics_fss.large_images.merge_back.full_images import check_full_images, score_full_images, tiled_root

CROP, STRIDE = 256, 200


def official_source(dota_examples: Path, root: Path) -> Path:
    """The shipped samples in DOTA's official layout: P0706 in train, P1888 in val, each with its label file."""
    for split, stem in (("train", "P0706"), ("val", "P1888")):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labelTxt").mkdir()
        shutil.copy(dota_examples / "images" / f"{stem}.png", root / split / "images")
        shutil.copy(dota_examples / "labelTxt" / f"{stem}.txt", root / split / "labelTxt")
    return root


@pytest.fixture(scope="module")
def tiled(dota_examples, tmp_path_factory) -> dict[str, Path]:
    """The samples tiled at crop 256, stride 200, as oriented boxes and as horizontal boxes; `data.yaml` of each."""
    root = tmp_path_factory.mktemp("full")
    src = official_source(dota_examples, root / "src")
    out = {}
    for fmt in ("obb", "detect"):
        assert tile_dota(src, root / f"tiles-{fmt}", crop=CROP, stride=STRIDE, format=fmt, workers=1).ok
        out[fmt] = root / f"tiles-{fmt}" / "data.yaml"
    return out


def test_a_tiled_dataset_is_recognised_and_its_tiling_identifies_runs(tiled, tmp_path):
    """`tiled_root` finds the tiler's output from its data.yaml (nothing else is one); the runs' data record holds the
    manifest's hash, so a run trained on other tiles is never reused."""
    dst = tiled["obb"].parent
    assert tiled_root(tiled["obb"]) == dst and tiled_root(tmp_path / "data.yaml") is None
    other = tmp_path / "data.yaml"
    other.write_text("names: [a]\n")
    assert tiled_root(other) is None
    before = dataset_fingerprint(tiled["obb"])
    assert len(before["tiles"]) == 64
    copy = tmp_path / "copy"
    shutil.copytree(dst, copy)
    manifest = copy / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("P1888__1__0___0", "P1888__1__0___1", 1))
    assert dataset_fingerprint(copy / "data.yaml")["tiles"] != before["tiles"]


@pytest.mark.parametrize("fmt, task", [("obb", "Task1"), ("detect", "Task2")])
def test_round_trip_scores_one_and_equals_merge_dota(tiled, tmp_path, fmt, task):
    """The val tiles' own labels as predictions (confidence 1): compare's path scores DOTA mAP50 1.0 on the full
    images, the same number `python -m ultralytics_fss.merge_dota` writes for the same predictions, and mAP50-95 is
    the mean of DOTA's metric over COCO's ten IoU thresholds of the same Task files."""
    from ultralytics_fss.large_images.merge_back.merge_dota import split_ground_truth
    from ultralytics_fss.large_images.merge_back.metric import AP50_95_THRESHOLDS, evaluate_task_files
    from ultralytics_fss.large_images.merge_back.tile_predictions import TileIndex

    dst = tiled[fmt].parent
    pred = tmp_path / "pred"
    assert labels_as_predictions(dst / "labels" / "val", pred) > 0
    assert check_full_images(dst, "val", fmt) == "dota"
    got = score_full_images(dst, tmp_path / "full", pred_dir=pred)
    assert set(got) == {"full mAP50", "full mAP50-95"} and got["full mAP50"] == pytest.approx(1.0, abs=1e-3)
    cmd = [sys.executable, "-m", "ultralytics_fss.merge_dota", str(dst), "--pred-dir", str(pred), "--out",
           str(tmp_path / "cli")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "cli" / "dota_eval.json").read_text())["mAP"] == got["full mAP50"]
    index = TileIndex.load(dst, "val")
    gt = split_ground_truth(index, None)
    per_threshold = [evaluate_task_files(tmp_path / "cli", task, index.names, gt, t)["mAP"] for t in AP50_95_THRESHOLDS]
    assert got["full mAP50-95"] == pytest.approx(sum(per_threshold) / 10) and per_threshold[0] == got["full mAP50"]
    assert 0 < min(per_threshold) <= got["full mAP50-95"] <= 1


def compare_refuses(tmp_path, capsys, data: Path, model: str, words: str) -> None:
    """`python -m ultralytics_fss.compare` on `data` stops before training: one line with `words`, exit 2, nothing
    written."""
    from ultralytics_fss.compare import main

    with pytest.raises(SystemExit) as e:
        main(["--data", str(data), "--model", model, "--project", str(tmp_path / "p"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_compare_refuses_what_it_cannot_score_on_full_images(tiled, tmp_path, capsys):
    """Before any training: a manifest that is gone, source images that are gone, a source split without labels, a
    task the tiles cannot score."""
    dst = tiled["obb"].parent
    compare_refuses(tmp_path, capsys, tiled["detect"], "yolo11n-obb.yaml", "detect tiles have no oriented boxes")
    source = json.loads((dst / ".tile_dota" / "source.json").read_text())["splits"]["val"]
    cases = {"manifest": dst / "manifest.csv", "images": Path(source["images"]), "labels": Path(source["labels"])}
    for what, path in cases.items():
        aside = path.with_name(path.name + ".aside")
        path.rename(aside)
        try:
            words = {
                "manifest": "manifest.csv not found",
                "images": "the source images ['P1888'] of split 'val' are gone",
                "labels": "split 'val' of the DOTA source has no labels",
            }[what]
            compare_refuses(tmp_path / what, capsys, tiled["obb"], "yolo11n-obb.yaml", words)
        finally:
            aside.rename(path)
    with pytest.raises(MergeError, match="cannot be merged back"):
        check_full_images(dst, "val", "pose")


@pytest.mark.slow
def test_compare_on_tiles_scores_every_run_on_the_full_images(tiled, tmp_path):
    """A real tiny study on the obb tiles (`tal` and `fss`, one epoch): each run's DOTA mAP50 and mAP50-95 on the full
    images are columns of summary.csv, the first table of summary.md and the headline of the result line; the merged
    Task files stay in each run's folder."""
    project = tmp_path / "p"
    cmd = [sys.executable, "-m", "ultralytics_fss.compare", "--data", str(tiled["obb"]), "--model", "yolo11n-obb.yaml",
           "--variants", "tal", "fss", "--seeds", "0", "--epochs", "1", "--imgsz", "64", "--batch", "4", "--project",
           str(project), "workers=0"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with open(project / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["tal", "fss"]
    for r in rows:
        assert 0 <= float(r["full mAP50-95"]) <= float(r["full mAP50"]) <= 1
        assert (project / r["folder"] / "full_images" / "Task1.zip").is_file()
    text = (project / "summary.md").read_text()
    assert text.startswith("### DOTA's mAP50 (VOC07, the devkit's rules) on the full images merged back from the val")
    assert "Result: DOTA mAP50 on the full images" in proc.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
