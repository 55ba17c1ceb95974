"""Tests of tiled prediction: ``ultralytics_fss.large_images.predict_tiled`` and ``python -m
ultralytics_fss.predict_tiled``.

A freshly built, untrained YOLO (obb and detect, the DOTA-v1.5 classes) predicts at a very low confidence so that it
returns boxes; the claims checked are about tiling and merging, not accuracy: the same windows and merge as
``tile_dota`` + ``merge_dota``, a full-image Ultralytics ``Results`` whose ``.plot()`` and ``.save_txt()`` work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import untrained_model

from ultralytics_fss.large_images import MergeError, merge_dota, predict_tiled, tile_dota
from ultralytics_fss.large_images.dota import DOTA_CATEGORIES, dataset_names
from ultralytics_fss.large_images.merge_back.metric import read_task_file

ROOT = Path(__file__).resolve().parents[1]
NAMES = dataset_names(DOTA_CATEGORIES["1.5"], builtin=True)
CROP, STRIDE, RATES = 256, 200, (0.5, 1.0)
# Untrained heads score about 1e-4 (Ultralytics' prior bias): predict far below it, few boxes per tile.
LOW = {"conf": 1e-6, "max_det": 20}


@pytest.fixture(scope="module")
def obb_model(tmp_path_factory) -> Path:
    return untrained_model(tmp_path_factory.mktemp("obb-model"), "yolo11n-obb.yaml", NAMES)


@pytest.mark.slow
def test_predict_tiled_equals_tile_dota_then_merge_dota(obb_model, dota_examples, tmp_path):
    """In-memory tiles with the tiler's windows at two rates, merged, give the detections of tiling with tile_dota and
    merging the model's tile predictions with merge_dota: one window rule, one merge."""
    image = dota_examples / "images" / "P1888.png"
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labelTxt").mkdir()
    (src / "images" / image.name).symlink_to(image)
    (src / "labelTxt" / "P1888.txt").symlink_to(dota_examples / "labelTxt" / "P1888.txt")
    summary = tile_dota(src, tmp_path / "tiles", crop=CROP, stride=STRIDE, rates=RATES, format="obb", workers=1)
    merged = merge_dota(tmp_path / "tiles", tmp_path / "out", model=obb_model, split="train", batch=4, **LOW)
    (r,) = predict_tiled(obb_model, image, crop=CROP, stride=STRIDE, rates=RATES, batch=4, **LOW)

    assert summary.tiles == 16  # 712 x 557: 4 x 3 windows at rate 1, 2 x 2 at rate 0.5
    assert r.orig_shape == (557, 712) and r.path == str(image) and r.boxes is None
    assert 0 < len(r.obb) == merged.detections
    _, scores, polys = zip(*(read_task_file(p, "Task1") for p in sorted((tmp_path / "out").glob("Task1_*.txt"))))
    theirs = np.concatenate(polys)[np.argsort(-np.concatenate(scores), kind="stable")]  # (N, 8)
    ours = r.obb.xyxyxyxy.reshape(-1, 8).numpy()  # (N, 8), by descending score
    # the same boxes: each centre has a twin within the 0.01 px of the Task files and float32 (corner order differs:
    # predict_tiled's boxes went through xywhr)
    a, b = (p.reshape(-1, 4, 2).mean(1) for p in (ours, theirs))  # (N, 2) centres
    dist = np.abs(a[:, None] - b[None]).max(-1)  # (N, N)
    assert dist.min(0).max() < 0.05 and dist.min(1).max() < 0.05


@pytest.mark.slow
def test_results_plot_and_save(obb_model, dota_examples, tmp_path):
    image = dota_examples / "images" / "P1888.png"
    (r,) = predict_tiled(obb_model, dota_examples / "images", crop=CROP, stride=STRIDE, **LOW)[1:]  # folder: 2 images
    assert r.path == str(image) and len(r.obb)
    picture = r.plot()
    assert picture.shape == (557, 712, 3) and picture.dtype == np.uint8
    txt = Path(r.save_txt(tmp_path / "P1888.txt", save_conf=True))
    rows = np.loadtxt(txt, ndmin=2)
    assert rows.shape == (len(r.obb), 10) and set(rows[:, 0].astype(int)) <= set(range(len(NAMES)))
    assert r.obb.conf.min() >= LOW["conf"] and r.names[1] == "ship"


def test_detect_model_boxes_stay_in_the_image(dota_examples, tmp_path):
    """Detect: axis-aligned boxes, clipped to the image (edge tiles are zero-padded past it)."""
    model = untrained_model(tmp_path, "yolo11n.yaml", NAMES)
    (r,) = predict_tiled(model, dota_examples / "images" / "P1888.png", crop=CROP, stride=STRIDE, **LOW)
    assert r.obb is None and len(r.boxes)
    xyxy = r.boxes.xyxy.numpy()
    assert (xyxy >= 0).all() and (xyxy[:, [0, 2]] <= 712).all() and (xyxy[:, [1, 3]] <= 557).all()


@pytest.mark.slow
def test_bad_source_and_options(obb_model, tmp_path):
    with pytest.raises(MergeError, match=r"--source .*nowhere\.png: no such file or folder"):
        predict_tiled(obb_model, tmp_path / "nowhere.png")
    with pytest.raises(MergeError, match=r"--source .*: no images"):
        predict_tiled(obb_model, tmp_path)
    with pytest.raises(MergeError, match=r"stride must be an integer in 1\.\.crop \(256\), got 300"):
        predict_tiled(obb_model, tmp_path, crop=256, stride=300)


@pytest.mark.slow
def test_cli_saves_pictures_and_labels(obb_model, dota_examples, tmp_path, repo_env):
    cmd = [sys.executable, "-m", "ultralytics_fss.predict_tiled", "--model", str(obb_model), "--source",
           str(dota_examples / "images" / "P1888.png"), "--crop", str(CROP), "--stride", str(STRIDE), "--conf", "1e-6",
           "--max-det", "20", "--save", "--save-txt", "--project", str(tmp_path), "--name", "run"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=repo_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    closing = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()][-1]
    assert "detections with confidence >= 1e-06 (--conf)" in closing, closing  # the threshold, named
    assert (tmp_path / "run" / "P1888.jpg").is_file()
    rows = np.loadtxt(tmp_path / "run" / "labels" / "P1888.txt", ndmin=2)
    assert rows.shape[1] == 10 and len(rows) > 0
    bad_cmd = [*cmd[:5], "--source", str(tmp_path / "none.png")]
    bad = subprocess.run(bad_cmd, cwd=ROOT, env=repo_env, capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "no such file or folder" in bad.stdout + bad.stderr


def test_truncated_image_in_a_folder_fails_alone(dota_examples, tmp_path, caplog):
    """A folder with a truncated PNG between two good images: the good ones are predicted and saved, the bad one is
    named with its reason, the CLI exits 1; the same truncated file given alone is bad input (exit 2)."""
    from ultralytics_fss.predict_tiled import main

    model = untrained_model(tmp_path, "yolo11n.yaml", NAMES)
    folder = tmp_path / "images"
    folder.mkdir()
    good = cv2.imread(str(dota_examples / "images" / "P1888.png"))[:200, :200]  # one zero-padded tile each
    for name in ("a.png", "c.png"):
        assert cv2.imwrite(str(folder / name), good)
    data = (dota_examples / "images" / "P1888.png").read_bytes()
    (folder / "b.png").write_bytes(data[: len(data) // 2])  # truncated
    results = predict_tiled(model, folder, crop=CROP, stride=STRIDE, **LOW)
    assert [Path(r.path).name for r in results] == ["a.png", "c.png"] and not results.ok
    assert len(results.errors) == 1 and "b.png: not a readable image (corrupt, truncated" in results.errors[0]

    argv = ["--model", str(model), "--source", str(folder), "--crop", str(CROP), "--stride", str(STRIDE), "--conf",
            "1e-6", "--max-det", "20", "--save", "--save-txt", "--project", str(tmp_path), "--name", "run"]  # fmt: skip
    assert main(argv) == 1
    assert sorted(p.name for p in (tmp_path / "run").glob("*.jpg")) == ["a.jpg", "c.jpg"]
    assert sorted(p.name for p in (tmp_path / "run" / "labels").glob("*.txt")) == ["a.txt", "c.txt"]
    assert "b.png: not a readable image" in caplog.text and "3 image(s), 1 failed" in caplog.text
    assert main([*argv[:2], "--source", str(folder / "b.png")]) == 2
