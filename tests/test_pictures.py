"""Assignment pictures (`python -m ultralytics_fss.visualize`, the `fss_plot_assign` training option): what they
show agrees with the assigners, and they are drawn from a real tiny training run."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import read_csv

from ultralytics_fss import FSSTrainer
from ultralytics_fss.evidence.assignment_view import assignment_view, choose_gts, letterbox
from ultralytics_fss.evidence.pictures import visualize_assignment


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """Two FSS epochs on the tiny data with the picture option on; returns the trainer."""
    project = tmp_path_factory.mktemp("pictures")
    trainer = FSSTrainer(overrides=dict(model="yolo11n.yaml", data=str(tiny_data), epochs=2, imgsz=64, batch=4,
                                        workers=0, device="cpu", project=str(project), name="run", exist_ok=True,
                                        plots=True, pretrained=False, seed=0, fss_plot_assign=1))  # fmt: skip
    trainer.train()
    return trainer


@pytest.mark.slow
def test_training_option_saves_one_picture_per_epoch(trained):
    pictures = sorted(p.name for p in trained.save_dir.glob("assign_epoch*.png"))
    assert pictures == ["assign_epoch1.png", "assign_epoch2.png"]  # the final validation adds none
    assert trained.save_dir / "assign_epoch2.png" in trained.plots  # listed with Ultralytics' plots
    img = cv2.imread(str(trained.save_dir / "assign_epoch2.png"))
    assert img.shape[1] == 1200 and img.shape[0] > 800 and img.std() > 10  # drawn, not blank
    assert len(read_csv(trained.csv)) == 2


@pytest.mark.slow
def test_view_agrees_with_the_assigners(trained, tiny_data):
    """The drawn facts: FSS positives are candidates, at most k of them, with the Eq. (8) weights of their GT
    (mean <= 1); the potentially optimal sample has the largest s; TAL positives sit inside their (floored) GT box."""
    model = trained.ema.ema
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    labels = np.loadtxt(str(image_file).replace("images", "labels").replace(".png", ".txt"), ndmin=2)
    args = model.args
    view = assignment_view(model, cv2.imread(str(image_file)), labels, imgsz=64, num_gts=len(labels))
    assert len(view.gts) == len(labels) == view.num_gts and view.image.shape == (64, 64, 3)
    assert view.fss["fss_target"] == "tal" and view.fss["fss_plot_assign"] == 1  # the values it trained with
    drawn_pos = 0
    for gt in view.gts:
        assert len(gt.anchors) == len(gt.p) == len(gt.ious) == len(gt.prior) == len(gt.s) > 0
        assert gt.s[gt.best] == gt.s.max() and gt.prior[gt.best] == 1.0  # Eq. (2); the prior is centred there
        assert len(gt.fss_pos) <= gt.k and len(set(gt.fss_pos.tolist())) == len(gt.fss_pos)
        if len(gt.fss_pos):
            assert gt.fss_weights.mean() <= 1 + 1e-5 and (gt.fss_weights > 0).all()
        x1, y1, x2, y2 = gt.box
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, np.maximum([(x2 - x1) / 2, (y2 - y1) / 2], 8)
        assert (np.abs(gt.tal_pos - [cx, cy]) < half + 1e-3).all()
        drawn_pos += len(gt.fss_pos)
    assert drawn_pos > 0
    assert model.training is False and model.args is args  # the model is handed back as it was


def test_letterbox_and_choice():
    labels = np.array([[0, 0.5, 0.5, 0.5, 0.25], [1, 0.25, 0.25, 0.1, 0.1], [2, 0.3, 0.3, 0.2, 0.2]], np.float32)
    img, boxes = letterbox(np.zeros((100, 200, 3), np.uint8), labels, 64)  # 200 x 100 -> 64 x 32, padded 16 above
    assert img.shape == (64, 64, 3)
    np.testing.assert_allclose(boxes[0], [16, 28, 48, 36], atol=1e-4)
    assert choose_gts(boxes, 2, "largest") == [0, 2]
    assert choose_gts(boxes, 1, "crowded") == [1] or choose_gts(boxes, 1, "crowded") == [2]  # 1 and 2 overlap
    with pytest.raises(ValueError, match="order='big'"):
        choose_gts(boxes, 1, "big")


@pytest.mark.slow
def test_python_function_and_command_line(trained, tiny_data, tmp_path):
    best = trained.best
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    picture = visualize_assignment(best, image_file, imgsz=64, num_gts=2, out=tmp_path / "a.png")  # labels found
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
    assert cv2.imread(str(tmp_path / "a.png")).shape[:2] == picture.shape[:2]

    bad = tmp_path / "bad.txt"
    bad.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5\n")
    cmd = [sys.executable, "-m", "ultralytics_fss.visualize", "--model", str(best), "--source", str(image_file),
           "--imgsz", "64", "--labels", str(bad), "--out", str(tmp_path / "b.png")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert proc.returncode == 2 and f"{bad}:2" in proc.stderr and not (tmp_path / "b.png").exists()
    found = cmd[:-6] + ["--imgsz", "64", "--out", str(tmp_path / "c.png")]  # labels found the Ultralytics way
    proc = subprocess.run(found, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / "c.png")) is not None


@pytest.mark.slow
@pytest.mark.parametrize("assigner", ["atss", "simota", "maxiou"])
def test_baseline_assigners_are_drawn_too(trained, tiny_data, tmp_path, assigner):
    """Any `fss_assigner` but tal is drawn beside TAL: its positives are among its candidates, weight 1, no prior."""
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    labels = np.loadtxt(str(image_file).replace("images", "labels").replace(".png", ".txt"), ndmin=2)
    view = assignment_view(trained.ema.ema, cv2.imread(str(image_file)), labels, imgsz=64, num_gts=len(labels),
                           fss_assigner=assigner)  # fmt: skip
    assert view.assigner == assigner and sum(len(g.fss_pos) for g in view.gts) > 0
    for gt in view.gts:
        assert (gt.fss_weights == 1).all() and gt.best == -1 and (gt.prior == 0).all()
        if assigner != "simota":  # no k: the count drawn is the positives'
            assert len(gt.fss_pos) == gt.k
    if assigner == "simota":  # every positive was taken by some GT's dynamic k (a contested anchor may go to a GT
        # that did not take it: the cheapest of all, as in YOLOX), so positives never outnumber the k's together
        assert sum(len(gt.fss_pos) for gt in view.gts) <= sum(gt.k for gt in view.gts)
    with pytest.raises(ValueError, match="fss_assigner=tal"):
        assignment_view(trained.ema.ema, cv2.imread(str(image_file)), labels, imgsz=64, fss_assigner="tal")
