"""Smoke tests of the large-image examples on tiny settings: DOTA (tile, train one epoch, predict, merge) and a
generated YOLO-format set (tile, round trip, train, merge, score)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dota_tile_and_train_example(tmp_path, dota_examples, repo_env):
    """The example runs end to end: obb tiles Ultralytics accepts, yolo11n-obb trained with FSS, a saved prediction."""
    cmd = [sys.executable, str(ROOT / "examples" / "dota_tile_and_train.py"), str(dota_examples),
           "--out", str(tmp_path), "--crop", "256", "--imgsz", "64", "--epochs", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=repo_env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    tiles = sorted((tmp_path / "tiles" / "images" / "train").glob("*.png"))
    labels = sorted((tmp_path / "tiles" / "labels" / "train").glob("*.txt"))
    assert tiles and [p.stem for p in tiles] == [p.stem for p in labels]
    assert (tmp_path / "tiles" / "data.yaml").is_file() and (tmp_path / "tiles" / "manifest.csv").is_file()
    assert re.search(r"\b0 corrupt", out) and not re.search(r"\b[1-9]\d* corrupt", out)  # Ultralytics' checks
    assert out.count("label file without image") == 5  # the five example label files without images, reported
    assert not [p for p in tiles if p.name.split("__")[0] not in {"P0706", "P1888"}]  # ... and skipped
    assert re.search(r"(\d+) tiles, (\d+) object labels", out)
    assert (tmp_path / "train" / "weights" / "best.pt").is_file()
    assert re.search(r"predicted \d+ obb boxes on P\d+__1__\d+___\d+\.png", out)
    assert "fss_assigner=fss" in out  # FSS installed its (rotated) criterion
    assert list(tmp_path.glob("predict_P*.jpg"))  # the saved picture
    assert re.search(r"DOTA Task1 mAP on the full images: \d\.\d{4}", out)  # merged back and scored
    assert (tmp_path / "merged" / "Task1.zip").is_file() and (tmp_path / "merged" / "dota_eval.json").is_file()


def test_dota_example_default_source_is_in_the_repository(dota_examples):
    """Run without SRC, the example tiles the samples shipped in tests/data (a plain clone has them)."""
    spec = importlib.util.spec_from_file_location("dota_example", ROOT / "examples" / "dota_tile_and_train.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # defines the example's names; main() only runs as a script
    assert example.DEFAULT_SRC == dota_examples


@pytest.mark.slow
def test_large_images_example(tmp_path, repo_env):
    """examples/large_images.py on tiny settings, polygons: generated canvases tiled, the round trip at AP 1.0 on the
    full images (`--epochs 0`: the training and the model's merge are FSSTrainer's and `merge_tiles --model`'s,
    tested in test_trainer.py and test_merge_tiles.py)."""
    cmd = [sys.executable, str(ROOT / "examples" / "large_images.py"), "--task", "segment", "--out", str(tmp_path),
           "--images", "3", "--size", "640", "--crop", "320", "--stride", "256", "--epochs", "0"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=repo_env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "round trip: COCO AP 1.000, AP50 1.000 on the full images" in out
    assert (tmp_path / "round-trip" / "coco_metrics.json").is_file()
    assert (tmp_path / "tiles-segment" / "data.yaml").is_file()
