"""Assignment pictures (`python -m ultralytics_fss.visualize`, the `fss_plot_assign` training option): what they
show agrees with the assigners, for every task FSS trains (rotated boxes against the rotated assigners), and they
are drawn from real tiny training runs and real files (generated data, the shipped DOTA samples tiled)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import read_csv, untrained_model
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, yaml_model_load
from ultralytics.utils import YAML

from ultralytics_fss import FSSTrainer
from ultralytics_fss.assign.rotated import inside_rotated
from ultralytics_fss.large_images import tile_dota
from ultralytics_fss.evidence.assignment_view import assignment_view, choose_gts, letterbox
from ultralytics_fss.evidence.gt_labels import letterboxed, read_labels
from ultralytics_fss.evidence.gt_labels import from_dataset_label
from ultralytics_fss.evidence.pictures import (
    AssignmentPictures,
    load_model,
    picture_title,
    plot_assignment,
    visualize_assignment,
)
from ultralytics_fss.synthetic import make_dataset
from ultralytics_fss.train import seam
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.loss import build_fss_criterion
from ultralytics_fss.visualize import main as visualize_main


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """Two FSS epochs on the tiny data with the picture option on and a non-default beta; returns the trainer."""
    project = tmp_path_factory.mktemp("pictures")
    trainer = FSSTrainer(overrides=dict(model="yolo11n.yaml", data=str(tiny_data), epochs=2, imgsz=64, batch=4,
                                        workers=0, device="cpu", project=str(project), name="run", exist_ok=True,
                                        plots=True, pretrained=False, seed=0, fss_plot_assign=1,
                                        fss_beta=4.0))  # fmt: skip
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


@pytest.mark.slow
def test_weights_are_replayed_with_their_own_fss_values(trained, caplog):
    """A finished checkpoint keeps its `fss_*` values only in the pickled model's args (Ultralytics trims
    `train_args` and overwrites the loaded model's args): they are read back from the file, so last.pt replays the
    training-time picture of its last epoch: the same values, title and positives."""
    callback = next(f for f in trained.callbacks["on_fit_epoch_end"] if isinstance(f, AssignmentPictures))
    epoch, at_training = callback.latest
    assert epoch == 2
    dataset = trained.train_loader.dataset
    i = next(i for i, label in enumerate(dataset.labels) if len(label["cls"]))
    model = load_model(trained.last)
    assert "fss_beta" not in model.args  # what Ultralytics leaves on the loaded model
    labels = from_dataset_label(dataset.labels[i], "detect")
    view = assignment_view(model, cv2.imread(dataset.im_files[i]), labels, imgsz=64)
    assert view.fss == at_training.fss and view.fss["fss_beta"] == 4.0 and view.settings.startswith("the model's")
    assert picture_title(view, "t") == picture_title(at_training, "t").replace("training args", f"training args "
                                                                                f"({trained.last})")  # fmt: skip
    assert "beta=4.0" in picture_title(view, "t")
    # The checkpoint holds the EMA in fp16 (`save_model`): the training-time EMA at that precision, drawn with the
    # trainer's own args, is what last.pt must replay (in fp32 a near-tie between two anchors may go the other way).
    as_saved = copy.deepcopy(trained.ema.ema).half().float()
    drawn = assignment_view(as_saved, cv2.imread(dataset.im_files[i]), labels, imgsz=64)
    assert drawn.fss == at_training.fss and [g.k for g in drawn.gts] == [g.k for g in at_training.gts]
    assert [g.index for g in view.gts] == [g.index for g in drawn.gts] == [g.index for g in at_training.gts]
    for replayed, shown in zip(view.gts, drawn.gts):
        assert replayed.k == shown.k and sorted(replayed.fss_pos.tolist()) == sorted(shown.fss_pos.tolist())
        np.testing.assert_allclose(replayed.fss_weights, shown.fss_weights, rtol=1e-5)
    with caplog.at_level("INFO", logger="ultralytics"):
        visualize_assignment(trained.last, dataset.im_files[i], imgsz=64)
    assert "fss_beta=4.0" in caplog.text and "training args" in caplog.text


@pytest.mark.slow
def test_weights_of_a_baseline_run_draw_that_baseline(trained, tmp_path):
    """A checkpoint trained with `fss_assigner=atss` (as `compare`'s atss runs are) is drawn as ATSS, not FSS."""
    ckpt = torch.load(trained.best, weights_only=False)
    ckpt["model"].args = {**ckpt["model"].args, "fss_assigner": "atss"}
    torch.save(ckpt, tmp_path / "atss.pt")
    view = assignment_view(load_model(tmp_path / "atss.pt"), np.full((64, 64, 3), 90, np.uint8),
                           np.array([[0, 0.5, 0.5, 0.4, 0.4]]), imgsz=64)  # fmt: skip
    assert view.assigner == "atss" and view.fss["fss_beta"] == 4.0


def test_a_stock_model_says_which_values_are_drawn(tiny_data, tmp_path, caplog):
    """Weights trained without FSS carry no `fss_*` values: the picture and the log say that the defaults stand in."""
    weights = untrained_model(tmp_path, "yolo11n.yaml", ["a", "b", "c"])
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    labels = np.loadtxt(str(image_file).replace("images", "labels").replace(".png", ".txt"), ndmin=2)
    view = assignment_view(load_model(weights), cv2.imread(str(image_file)), labels, imgsz=64)
    assert view.settings == f"the package defaults: {weights} was trained without FSS"
    assert view.settings in picture_title(view, "t")
    with caplog.at_level("INFO", logger="ultralytics"):
        visualize_assignment(weights, image_file, imgsz=64, fss_beta=5.0)
    assert "was trained without FSS; given: fss_beta=5.0" in caplog.text


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
@pytest.mark.parametrize("assigner", ["atss", "simota", "maxiou", "paa", "dw"])
def test_baseline_assigners_are_drawn_too(trained, tiny_data, tmp_path, assigner):
    """Any `fss_assigner` but tal is drawn beside TAL: its positives are among its candidates, weight 1 and no prior
    (DW: its positive weights in [0, e^2] and its centre prior in (0, 1])."""
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    labels = np.loadtxt(str(image_file).replace("images", "labels").replace(".png", ".txt"), ndmin=2)
    view = assignment_view(trained.ema.ema, cv2.imread(str(image_file)), labels, imgsz=64, num_gts=len(labels),
                           fss_assigner=assigner)  # fmt: skip
    assert view.assigner == assigner and sum(len(g.fss_pos) for g in view.gts) > 0
    for gt in view.gts:
        if assigner == "dw":
            assert ((gt.fss_weights >= 0) & (gt.fss_weights <= np.exp(2))).all() and gt.best == -1
            assert ((gt.prior > 0) & (gt.prior <= 1)).all()
        else:
            assert (gt.fss_weights == 1).all() and gt.best == -1 and (gt.prior == 0).all()
        if assigner != "simota":  # no k: the count drawn is the positives'
            assert len(gt.fss_pos) == gt.k
    if assigner == "simota":  # every positive was taken by some GT's dynamic k (a contested anchor may go to a GT
        # that did not take it: the cheapest of all, as in YOLOX), so positives never outnumber the k's together
        assert sum(len(gt.fss_pos) for gt in view.gts) <= sum(gt.k for gt in view.gts)
    with pytest.raises(ValueError, match="fss_assigner=tal"):
        assignment_view(trained.ema.ema, cv2.imread(str(image_file)), labels, imgsz=64, fss_assigner="tal")


# ------------------------------------------------------------------------------------ obb, segment and pose models
TASK_MODELS = {"obb": OBBModel, "segment": SegmentationModel, "pose": PoseModel}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """Root of a generated 128-px dataset per task (4 images, 4-6 rotated shapes each)."""
    root = tmp_path_factory.mktemp("task-pictures")
    return {t: make_dataset(root / t, images=4, imgsz=128, objects=(4, 7), size=(0.15, 0.35), task=t).parent
            for t in TASK_MODELS}  # fmt: skip


@pytest.fixture(scope="module")
def dota_tile(dota_examples, tmp_path_factory) -> tuple[Path, Path]:
    """The shipped DOTA samples tiled at 256 px as Ultralytics obb data; the tile with most objects and its labels."""
    dst = tmp_path_factory.mktemp("dota-tiles")
    assert tile_dota(dota_examples, dst, crop=256, stride=256, format="obb", workers=1).ok
    label = max((dst / "labels").rglob("*.txt"), key=lambda p: len(p.read_text().splitlines()))
    return next((dst / "images").rglob(f"{label.stem}.png")), label


def seeded_model(task: str, cfg: str):
    """An untrained `task` model of 3 classes (4 keypoints for pose), seeded."""
    torch.manual_seed(0)
    kw = {"data_kpt_shape": (4, 3)} if task == "pose" else {}
    return TASK_MODELS[task](cfg, nc=3, verbose=False, **kw)


def first_val(root: Path) -> tuple[Path, Path]:
    """The first validation image of a generated dataset and its label file."""
    image = sorted((root / "images" / "val").glob("*.png"))[0]
    return image, root / "labels" / "val" / f"{image.stem}.txt"


def direct_assignment(model, task: str, image: np.ndarray, gt, imgsz: int, stock: bool = True, **fss):
    """Each assigner called directly on the loss's own inputs, not through the picture's replay: the FSS loss's
    `fss_assign` (what its Eq. (9) assigns with), and Ultralytics' assigner as its box-only loss calls it.

    Returns:
        rows (np.ndarray): (M,) label row of each GT the loss sees.
        fss (list[set]): Per GT, the anchor centres FSS made positive; `tal` likewise (None without `stock`).
        anchors (np.ndarray): (N, 2) every anchor centre, pixels.
    """
    bgr, px = letterboxed(image, gt, imgsz)
    batch, rows = seam.one_image_batch(task, bgr, px.cls, px.boxes, px.polygons, px.keypoints)
    model.args = seam.loss_args(fss)
    crit = seam.main_branch(build_fss_criterion(model))
    preds = model.eval()(batch["img"].float() / 255)[1]
    preds = preds.get("one2many", preds)
    x = crit.inputs(preds, batch)
    result, _ = crit.fss_assign(x, preds)
    anchors = (x.anchor_points * x.stride_tensor).numpy()

    def per_gt(fg_mask, gt_idx) -> list[set]:
        return [{tuple(a) for a in anchors[(fg_mask & (gt_idx == j))[0].numpy()]} for j in range(len(rows))]

    tal = None
    if stock:
        pd = x.pred_bboxes.clone()
        pd[..., :4] *= x.stride_tensor  # pixels; the angle as it is
        own = seam.main_branch(seam.criterion(model, seam.stock_loss_class(model))).assigner
        out = own(x.pred_scores.sigmoid(), pd.type(x.gt_bboxes.dtype), x.anchor_points * x.stride_tensor, x.gt_labels,
                  x.gt_bboxes, x.mask_gt)  # fmt: skip
        tal = per_gt(out[3], out[4])
    del model.args
    return rows, per_gt(result.fg_mask, result.gt_idx), tal, anchors


def picture_height(n: int) -> float:
    """Pixel height of a picture of `n` GTs (`_new_figure`: 6 + 2.6 n inches at 100 dpi)."""
    return (6 + 2.6 * n) * 100


def test_obb_picture_shows_the_rotated_assigners_choice(task_data, tmp_path):
    """On an obb model each GT's drawn positives are exactly those of `RotatedFSSAssigner` (as the FSS loss calls it)
    and of Ultralytics' `RotatedTaskAlignedAssigner`; its outline is its label's rotated box, and its candidate region
    (sides floored to the assigners' smallest side) holds exactly its candidates. The PNG has the expected size."""
    model = seeded_model("obb", "yolo11n-obb.yaml")
    image_file, label_file = first_val(task_data["obb"])
    image, gt = cv2.imread(str(image_file)), read_labels(label_file, "obb")
    view = assignment_view(model, image, gt, imgsz=128, num_gts=len(gt))
    assert view.task == "obb" and view.stock == "RotatedTaskAlignedAssigner" and view.overlap == "probiou"
    assert not hasattr(model, "args")  # lent and taken back
    rows, fss, tal, anchors = direct_assignment(model, "obb", image, gt, 128)
    assert sorted(g.index for g in view.gts) == list(rows) == list(range(len(gt)))
    _, px = letterboxed(image, gt, 128)
    for g in view.gts:
        j = list(rows).index(g.index)
        assert {tuple(a) for a in g.anchors[g.fss_pos]} == fss[j] and {tuple(a) for a in g.tal_pos} == tal[j]
        inside = inside_rotated(torch.from_numpy(anchors), torch.from_numpy(g.region)[None]).numpy()  # (N,)
        assert {tuple(a) for a in anchors[inside]} == {tuple(a) for a in g.anchors}
        corners = px.polygons[g.index]  # the label's corners, pixels: the outline's, in some order
        assert np.abs(corners[:, None] - g.outline[None]).sum(-1).min(1).max() < 0.05
        sides = np.linalg.norm(np.roll(g.region, -1, 0) - g.region, axis=1)  # the region's sides: >= stride_val
        assert sides.min() >= 16 - 1e-3 and g.polygon is None and g.keypoints is None
    assert sum(len(f) for f in fss) > 0 and sum(len(t) for t in tal) > 0
    plot_assignment(view, save=tmp_path / "obb.png")
    height, width = cv2.imread(str(tmp_path / "obb.png")).shape[:2]
    assert width == 1200 and abs(height - picture_height(len(view.gts))) <= 1


@pytest.mark.parametrize("fss", [{}, {"fss_min_k": 3, "fss_rescue": True}])
def test_assignment_by_size_counts_what_the_assigners_chose(task_data, fss):
    """`benchmarks/assignment_by_size.py` follows each GT through the steps: its FSS and TAL positives are those the
    loss's assigners give it (called directly), selected = min(k, candidates) >= FSS positives, k >= fss_min_k."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from assignment_by_size import per_gt

    model = seeded_model("obb", "yolo11n-obb.yaml")
    image_file, label_file = first_val(task_data["obb"])
    image, gt = cv2.imread(str(image_file)), read_labels(label_file, "obb")
    gts = per_gt(model, image_file, "obb", 128, check_fss_args(fss))
    rows, chosen, tal, _ = direct_assignment(model, "obb", image, gt, 128, **fss)
    assert len(gts) == len(rows) > 0
    assert [g["fss"] for g in gts] == [len(c) for c in chosen] and [g["tal"] for g in gts] == [len(t) for t in tal]
    for g in gts:
        assert g["selected"] == min(g["k"], g["candidates"]) >= g["fss"] and g["k"] >= fss.get("fss_min_k", 1)


@pytest.mark.parametrize("name", ["maxiou", "atss", "simota"])
def test_obb_picture_of_a_rotated_baseline_shows_its_choice(task_data, name):
    """An obb model drawn with one of the paper's Table 6 baselines shows exactly the positives of its oriented
    version as the FSS loss calls it, and no candidate region (the baselines' candidates are not the GT's box)."""
    model = seeded_model("obb", "yolo11n-obb.yaml")
    image_file, label_file = first_val(task_data["obb"])
    image, gt = cv2.imread(str(image_file)), read_labels(label_file, "obb")
    view = assignment_view(model, image, gt, imgsz=128, num_gts=len(gt), fss_assigner=name)
    rows, chosen, _, _ = direct_assignment(model, "obb", image, gt, 128, stock=False, fss_assigner=name)
    assert view.assigner == name and sum(len(c) for c in chosen) > 0
    for g in view.gts:
        assert {tuple(a) for a in g.anchors[g.fss_pos]} == chosen[list(rows).index(g.index)] and g.region is None


@pytest.mark.parametrize("task, cfg", [("segment", "yolo11n-seg.yaml"), ("pose", "yolo11n-pose.yaml"),
                                       pytest.param("segment", "yolo26n-seg.yaml", marks=pytest.mark.slow),
                                       pytest.param("pose", "yolo26n-pose.yaml", marks=pytest.mark.slow)])  # fmt: skip
def test_segment_and_pose_pictures_assign_the_boxes(task_data, task, cfg):
    """Segment and pose models are drawn through their box assignment: the positives are those of the FSS loss's
    assigner (and of Ultralytics' where it assigns on boxes only), each GT carries its label's outline or keypoints in
    pixels; YOLO26 assigners are named by what they score (mask-aware TAL; OKS in FSS's Eq. (3) for pose)."""
    model = seeded_model(task, cfg)
    image_file, label_file = first_val(task_data[task])
    image, gt = cv2.imread(str(image_file)), read_labels(label_file, task, getattr(model, "kpt_shape", None))
    yolo26 = cfg.startswith("yolo26")
    fss = {"fss_overlap": "box"} if yolo26 else {}  # box IoU in Eq. (3): comparable with fss_assign's default
    view = assignment_view(model, image, gt, imgsz=128, num_gts=len(gt), **fss)
    rows, want, tal, _ = direct_assignment(model, task, image, gt, 128, stock=not yolo26, **fss)
    _, px = letterboxed(image, gt, 128)
    for g in view.gts:
        j = list(rows).index(g.index)
        assert {tuple(a) for a in g.anchors[g.fss_pos]} == want[j]
        if tal is not None:
            assert {tuple(a) for a in g.tal_pos} == tal[j]
        assert g.outline is None and g.region is None
        if task == "segment":
            assert np.allclose(g.polygon, px.polygons[g.index]) and g.keypoints is None
            assert np.allclose(g.box, [*g.polygon.min(0), *g.polygon.max(0)], atol=1e-3)  # a polygon's box: its bounds
        else:
            assert np.allclose(g.keypoints, px.keypoints[g.index]) and g.polygon is None
    stocks = {"segment": "SegTaskAlignedAssigner", "pose": "PoseTaskAlignedAssigner"}
    assert view.stock == (stocks[task] if yolo26 else "TaskAlignedAssigner") and view.overlap == "IoU"
    if yolo26 and task == "pose":  # the default: OKS in Eq. (3), as the model trains
        assert assignment_view(model, image, gt, imgsz=128, num_gts=1).overlap == "OKS"


def test_visualize_takes_a_model_object(tiny_data):
    """A `DetectionModel` (even without training args) and a `YOLO` wrapper are drawn like weights are."""
    image_file = sorted((tiny_data.parent / "images" / "val").glob("*.png"))[0]
    torch.manual_seed(0)
    for model in (DetectionModel("yolo11n.yaml", nc=3, verbose=False), YOLO("yolo11n.yaml")):
        picture = visualize_assignment(model, image_file, imgsz=64, num_gts=1)
        assert picture.shape[1] == 1200 and picture.dtype == np.uint8


def task_model_yaml(task: str, folder: Path) -> Path:
    """A model YAML of `task` with 3 classes (and the generated data's 4 keypoints for pose)."""
    cfg = {"obb": "yolo11n-obb.yaml", "segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml"}[task]
    spec = {**yaml_model_load(cfg), "nc": 3, **({"kpt_shape": [4, 3]} if task == "pose" else {})}
    path = folder / cfg.replace(".yaml", "-3cls.yaml")
    YAML.save(path, spec)
    return path


@pytest.mark.parametrize("task", ["obb", "segment", "pose"])
def test_command_line_draws_every_task(task_data, task, tmp_path):
    """`python -m ultralytics_fss.visualize` on obb, segment and pose models, labels found the Ultralytics way."""
    image_file, _ = first_val(task_data[task])
    out = visualize_main(["--model", str(task_model_yaml(task, tmp_path)), "--source", str(image_file), "--imgsz",
                          "128", "--gt", "3", "--out", str(tmp_path / "a.png")])  # fmt: skip
    height, width = cv2.imread(out).shape[:2]
    assert width == 1200 and abs(height - picture_height(3)) <= 1


def test_command_line_on_a_dota_tile(dota_tile, tmp_path):
    """A DOTA tile with its Ultralytics obb labels (4 corners a row, as `tile_dota --format obb` writes them): every
    labelled object is assigned and drawn around its label's polygon."""
    image_file, label_file = dota_tile
    rows = read_labels(label_file, "obb")
    out = visualize_main(["--model", "yolo11n-obb.yaml", "--source", str(image_file), "--labels", str(label_file),
                          "--imgsz", "256", "--order", "crowded", "--out", str(tmp_path / "d.png")])  # fmt: skip
    assert cv2.imread(out).shape[1] == 1200
    torch.manual_seed(0)
    view = assignment_view(OBBModel("yolo11n-obb.yaml", verbose=False), cv2.imread(str(image_file)), rows,
                           imgsz=256, num_gts=len(rows))  # fmt: skip
    assert len(rows) >= 20 and view.num_gts == len(rows) and len(view.gts) == len(rows)  # none under 2 px here
    _, px = letterboxed(cv2.imread(str(image_file)), rows, 256)
    for g in view.gts:  # the rotated box is the smallest around the label's quadrilateral
        polygon = px.polygons[g.index]
        assert (g.box[:2] <= polygon.min(0) + 0.5).all() and (g.box[2:] >= polygon.max(0) - 0.5).all()


@pytest.mark.parametrize("args, message", [
    (["--labels", "{detect}"], "{detect}:1: expected 'class x1 y1 x2 y2 x3 y3 x4 y4' (YOLO obb label)"),
    (["--assigner", "dw"], "fss_assigner=dw assigns axis-aligned boxes"),
    (["--labels", "{missing}"], "label file {missing} (given) not found"),
    (["--imgsz", "100"], "imgsz=100 is not a multiple of the model's largest stride 32"),
])  # fmt: skip
def test_command_line_refuses_bad_input_in_one_line(task_data, tmp_path, capsys, args, message):
    """Input that cannot be drawn stops with exit status 2 and one line that says why (no traceback, no usage)."""
    image_file, _ = first_val(task_data["obb"])
    detect = tmp_path / "detect.txt"
    detect.write_text("0 0.5 0.5 0.2 0.2\n")
    paths = {"detect": detect, "missing": tmp_path / "missing.txt"}
    args = [a.format(**paths) for a in args]
    imgsz = [] if "--imgsz" in args else ["--imgsz", "128"]
    with pytest.raises(SystemExit) as stop:
        visualize_main(["--model", str(task_model_yaml("obb", tmp_path)), "--source", str(image_file), *imgsz, *args,
                        "--out", str(tmp_path / "x.png")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and message.format(**paths) in err[0], err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pose"])
def test_training_option_draws_every_task(task_data, task, tmp_path):
    """`fss_plot_assign=1` on a pose run (keypoints: the picture that differs most from detect's; obb and segment
    draw through the same option, their pictures in `test_command_line_draws_every_task`): one picture per epoch,
    listed with Ultralytics' plots; the trained weights are drawn by the command line (a subprocess, as users run it)
    with their own labels."""
    cfg = {"obb": "yolo11n-obb.yaml", "segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml"}[task]
    trainer = FSSTrainer(overrides=dict(model=cfg, data=str(task_data[task] / "data.yaml"), epochs=1, imgsz=128,
                                        batch=4, workers=0, device="cpu", project=str(tmp_path), name="run",
                                        exist_ok=True, plots=True, pretrained=False, seed=0,
                                        fss_plot_assign=1))  # fmt: skip
    trainer.train()
    picture = trainer.save_dir / "assign_epoch1.png"
    assert picture in trainer.plots and cv2.imread(str(picture)).shape[1] == 1200
    image_file, label_file = first_val(task_data[task])
    cmd = [sys.executable, "-m", "ultralytics_fss.visualize", "--model", str(trainer.best), "--source", str(image_file),
           "--labels", str(label_file), "--imgsz", "128", "--out", str(tmp_path / "c.png")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / "c.png")).shape[1] == 1200
