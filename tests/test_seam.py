"""Drift tests of the Ultralytics seam (`ultralytics_fss.train.seam`): each copy or mirror of Ultralytics code behaves
like the upstream code it names, on real inputs, for every model family. A failure here means Ultralytics changed
under a copy: update that piece of `ultralytics_fss/train/seam/`, not the test.

The CLI mirrors are checked against Ultralytics' own `entrypoint`: both parse the same command lines and end in
`Model.train`, which is replaced by a recorder for these tests (the comparison is of the arguments it receives).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.engine.model import Model
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, guess_model_task
from ultralytics.utils.loss import E2ELoss, KeypointLoss, PoseLoss26, SegmentLoss26, v8OBBLoss

from conftest import FAMILIES
from ultralytics_fss.assign import FSSAssigner, RotatedFSSAssigner
from ultralytics_fss.train import seam
from ultralytics_fss.train.loss import LOSSES, FSSLoss, RecordingLoss, build_fss_criterion, build_tal_criterion

TASK_MODELS = {
    "obb": (OBBModel, ["yolov8n-obb.yaml", "yolo11n-obb.yaml", "yolo26n-obb.yaml"]),
    "segment": (SegmentationModel, ["yolov8n-seg.yaml", "yolo11n-seg.yaml", "yolo26n-seg.yaml"]),
    "pose": (PoseModel, ["yolov8n-pose.yaml", "yolo11n-pose.yaml", "yolo26n-pose.yaml"]),
}
FAST = {"yolo11n.yaml", "yolo11n-obb.yaml", "yolo26n-seg.yaml", "yolo26n-pose.yaml"}  # the fast lane's: one per task
ALL = [pytest.param(t, m, marks=() if m in FAST else pytest.mark.slow)
       for t, ms in [("detect", FAMILIES)] + [(t, ms) for t, (_, ms) in TASK_MODELS.items()] for m in ms]


def model_and_batch(task: str, cfg: str):
    """A seeded model of `task` (args: Ultralytics' defaults) and a batch of two 64-px images with four objects."""
    torch.manual_seed(0)
    kw = {"data_kpt_shape": (4, 3)} if task == "pose" else {}
    model = (DetectionModel if task == "detect" else TASK_MODELS[task][0])(cfg, nc=3, verbose=False, **kw).train()
    model.args = get_cfg()
    gen = torch.Generator().manual_seed(1)
    boxes = torch.tensor([[0.3, 0.3, 0.3, 0.2], [0.6, 0.5, 0.3, 0.3], [0.5, 0.5, 0.4, 0.4], [0.4, 0.6, 0.3, 0.25]])
    if task == "obb":
        boxes = torch.cat([boxes, torch.tensor([[0.4], [1.2], [0.0], [0.7]])], 1)
    batch = {"img": torch.rand(2, 3, 64, 64, generator=gen), "batch_idx": torch.tensor([0.0, 0.0, 0.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0], [2.0], [1.0]]), "bboxes": boxes}  # fmt: skip
    if task == "segment":
        masks = torch.zeros(2, 16, 16)
        masks[0, 3:7, 3:8], masks[0, 6:11, 7:12], masks[0, 5:12, 4:12], masks[1, 5:11, 5:11] = 1, 2, 3, 1
        batch["masks"], batch["sem_masks"] = masks, torch.zeros(2, 16, 16)
    if task == "pose":
        batch["keypoints"] = torch.rand(4, 4, 3, generator=gen) * torch.tensor([1.0, 1.0, 2.0])
    return model, batch


def branch_preds(loss, model, batch) -> dict:
    """The training predictions the (one-to-many) branch's loss reads."""
    preds = loss.parse_output(model(batch["img"]))
    return preds.get("one2many", preds)


class Capture:
    """Stand-in for an assigner call: records the tensors it is handed, then calls the real one."""

    def __init__(self, call):
        self.call, self.args, self.kwargs = call, None, None

    def __call__(self, *args, **kwargs):
        self.args = [a.clone() for a in args]
        self.kwargs = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        return self.call(*args, **kwargs)


@pytest.mark.parametrize("task, cfg", ALL)
def test_stock_loss_class_and_criterion_mirror_init_criterion(task, cfg):
    """`stock_loss_class` names the loss `init_criterion` builds; `criterion` wraps it the same way (E2ELoss or not)."""
    model, _ = model_and_batch(task, cfg)
    stock = model.init_criterion()
    ours = seam.criterion(model, seam.stock_loss_class(model))
    assert type(ours) is type(stock)
    assert [type(b) for b in seam.branches(ours)] == [type(b) for b in seam.branches(stock)]
    assert [b.assigner.topk for b in seam.branches(ours)] == [b.assigner.topk for b in seam.branches(stock)]
    assert seam.main_branch(stock) is (stock.one2many if isinstance(stock, E2ELoss) else stock)
    assert seam.model_task(model) == task == guess_model_task(model)


@pytest.mark.parametrize("task, cfg", ALL)
def test_loss_inputs_match_stock(task, cfg):
    """The copied preludes (`detect_inputs`, `obb_inputs`, `segment26_assigner_inputs`): on the same batch, FSS hands
    its assigner exactly the tensors the stock loss hands its own."""
    model, batch = model_and_batch(task, cfg)
    stock = seam.stock_loss_class(model)(model)
    preds = branch_preds(stock, model, batch)
    stock.assigner = Capture(stock.assigner)
    stock.loss(preds, batch)
    x = (seam.obb_inputs if isinstance(stock, v8OBBLoss) else seam.detect_inputs)(stock, preds, batch)
    pd = x.pred_bboxes.detach().clone()
    pd[..., :4] *= x.stride_tensor
    ours = [x.pred_scores.detach().sigmoid(), pd, x.anchor_points * x.stride_tensor, x.gt_labels, x.gt_bboxes,
            x.mask_gt]  # fmt: skip
    assert len(stock.assigner.args) == len(ours)
    for name, want, got in zip(["pd_scores", "pd_bboxes", "anc_points", "gt_labels", "gt_bboxes", "mask_gt"],
                               stock.assigner.args, ours):  # fmt: skip
        assert want.dtype == got.dtype and torch.equal(want, got), name
    assert int(x.mask_gt.sum()) == 4
    if isinstance(stock, SegmentLoss26):
        extra = seam.segment26_assigner_inputs(stock, preds, batch)
        assert extra.keys() == stock.assigner.kwargs.keys()
        assert all(torch.equal(extra[k], stock.assigner.kwargs[k]) for k in extra)


@pytest.mark.parametrize("cfg", ["yolo26n-seg.yaml", "yolo26n-pose.yaml"])
def test_task_pair_overlaps_match_stock_forward(cfg):
    """`task_pair_overlaps` on a fresh assigner gives what the stock assigner's own `pair_overlaps` gave inside its
    `forward` on the same pairs: the per-call fields it sets are all that call needs."""
    task = "segment" if "seg" in cfg else "pose"
    model, batch = model_and_batch(task, cfg)
    stock = seam.stock_loss_class(model)(model)
    preds = branch_preds(stock, model, batch)
    seen = {}
    inner = stock.assigner.pair_overlaps

    def spy(indices, *args, **kwargs):
        out = inner(indices, *args, **kwargs)
        seen.update(indices=indices, args=args, kwargs=kwargs, out=out.clone())
        return out

    stock.assigner.pair_overlaps = spy
    stock.loss(preds, batch)
    fresh = seam.stock_loss_class(model)(model).assigner
    got = seam.task_pair_overlaps(fresh, seen["indices"], *seen["args"], **seen["kwargs"])
    assert len(seen["out"]) > 0 and torch.equal(got, seen["out"])


@pytest.mark.parametrize("cfg", ["yolo11n-seg.yaml", "yolo26n-seg.yaml"])
def test_weighted_segmentation_loss_is_stock_with_unit_weights(cfg):
    """The copied mask term equals Ultralytics' with every weight 1, and scales with a common weight."""
    model, batch = model_and_batch("segment", cfg)
    loss = seam.stock_loss_class(model)(model)
    preds = branch_preds(loss, model, batch)
    seen = {}
    inner = loss.calculate_segmentation_loss

    def spy(*args):
        seen["args"] = args
        return inner(*args)

    loss.calculate_segmentation_loss = spy
    loss.loss(preds, batch)
    fg_mask = seen["args"][0]
    want = inner(*seen["args"])
    ones = torch.ones(fg_mask.shape)
    torch.testing.assert_close(seam.weighted_segmentation_loss(loss, ones, *seen["args"]), want)
    torch.testing.assert_close(seam.weighted_segmentation_loss(loss, ones * 3, *seen["args"]), want * 3)


def test_weighted_keypoint_loss_is_stock_outside_its_scope():
    """`WeightedKeypointLoss` is Ultralytics' `KeypointLoss` unless weighted; weights apply per row, inside the
    `weighted` block only."""
    gen = torch.Generator().manual_seed(0)
    sigmas = torch.rand(5, generator=gen) + 0.1
    pred, gt = torch.rand(6, 5, 3, generator=gen), torch.rand(6, 5, 3, generator=gen)
    mask, area = torch.rand(6, 5, generator=gen) > 0.3, torch.rand(6, 1, generator=gen) + 0.5
    stock, ours = KeypointLoss(sigmas), seam.WeightedKeypointLoss(sigmas)
    want = stock(pred, gt, mask, area)
    assert torch.equal(ours(pred, gt, mask, area), want)
    with ours.weighted(torch.ones(6)):
        torch.testing.assert_close(ours(pred, gt, mask, area), want)
    w = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 0.5])
    with ours.weighted(w):
        rows = [float(stock(pred[i : i + 1], gt[i : i + 1], mask[i : i + 1], area[i : i + 1])) for i in range(6)]
        torch.testing.assert_close(ours(pred, gt, mask, area), torch.tensor(sum(r * float(wi) for r, wi in
                                                                                zip(rows, w)) / 6))  # fmt: skip
    assert ours.row_weights is None and torch.equal(ours(pred, gt, mask, area), want)


@pytest.mark.parametrize("task, cfg", ALL)
def test_fss_is_installed_on_every_family(task, cfg):
    """Every family's FSS criterion is the stock loss with FSS installed, one way: `FSSLoss` then the stock class;
    the branch FSS drives assigns with FSS and records FSS's k; the one-to-one branch keeps Ultralytics' assigner
    (`fss_o2o=tal`), its positives recorded. The recording criterion is the stock loss with its assigner recorded."""
    model, batch = model_and_batch(task, cfg)
    stock_cls = seam.stock_loss_class(model)
    crit = build_fss_criterion(model)
    for branch in seam.branches(crit):
        assert type(branch) is LOSSES[stock_cls][0] and type(branch).__bases__ == (FSSLoss, stock_cls)
    main = seam.main_branch(crit)
    assert type(main.assigner) is (RotatedFSSAssigner if task == "obb" else FSSAssigner) and main.use_fss
    if isinstance(crit, E2ELoss):
        assert not crit.one2one.use_fss and crit.one2one.assigner.assigner is crit.one2one.stock_assigner  # recorded
    loss, _ = crit(model(batch["img"]), batch)
    assert torch.isfinite(loss).all() and main.stats.summary()["k_mean"] > 0
    recording = seam.main_branch(build_tal_criterion(model))
    assert type(recording).__bases__ == (RecordingLoss, stock_cls)


def test_task_weights_live_for_one_call():
    """The Eq. (8) weights handed to the keypoint terms (`fss_task_weights`) exist during a loss call only."""
    model, batch = model_and_batch("pose", "yolo26n-pose.yaml")
    model.args.fss_task_weights = True
    crit = build_fss_criterion(model)
    main = crit.one2many
    seen = []
    inner = main.keypoint_loss.forward

    def spy(*args):
        seen.append(main.keypoint_loss.row_weights)
        return inner(*args)

    main.keypoint_loss.forward = spy
    crit(model(batch["img"]), batch)
    assert seen and seen[0] is not None and main.task_weights is None and main.keypoint_loss.row_weights is None
    assert isinstance(main, PoseLoss26)


# ----------------------------------------------------------------------------------------------- the `yolo` command

COMMANDS = [
    "yolo detect train model=yolo11n.yaml data=coco8.yaml epochs=1 imgsz=64",
    "yolo train model=yolo11n-obb.yaml --imgsz=64, batch = 4",  # dashes, a trailing comma, spaces around '='
    "yolo train model=yolo11n.yaml cos_lr half epochs=3",  # a bare default boolean, a bare flag
    "yolo segment train model=yolo11n-seg.yaml",  # the task's default data
    "yolo train model=yolo11n-pose.yaml task=detect",  # the model's task wins
    "yolo detect train imgsz=64",  # the task's default model
    "yolo train",  # Ultralytics' default model and data
]


@pytest.fixture
def recorded_train(monkeypatch, tmp_path):
    """Replace `Model.train` by a recorder of (task, kwargs); in a folder holding `yolo26n.pt` (the default model,
    saved from `yolo26n.yaml`: no download)."""
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    YOLO("yolo26n.yaml").save("yolo26n.pt")
    calls = []
    monkeypatch.setattr(Model, "train", lambda self, **kw: calls.append((self.task, kw)))
    return calls


@pytest.mark.parametrize("command", COMMANDS)
def test_yolo_train_mirrors_entrypoint(recorded_train, command):
    """`parse_yolo_args` + `yolo_train` end in the `Model.train` call Ultralytics' own `entrypoint` makes."""
    from ultralytics_fss.cli import stock_entrypoint

    stock_entrypoint()(command)
    overrides, cfg_file = seam.parse_yolo_args(command.split(" ")[1:])
    assert cfg_file is None
    seam.yolo_train(overrides)
    (want, got) = recorded_train
    assert got == want and want[1]["model"]


@pytest.mark.parametrize("command", ["yolo help", "yolo detect train imgsz", "yolo train epochs=1 nonsense",
                                     "yolo train epochs="])  # fmt: skip
def test_parse_leaves_the_rest_to_ultralytics(command):
    """Special commands, a key without '=', unknown words and malformed pairs are Ultralytics' to report."""
    assert seam.parse_yolo_args(command.split(" ")[1:]) is None


def test_args_dict_of_namespace_and_dict():
    """`args_dict` copies: a namespace's and a checkpoint dict's args, never the object itself."""
    ns = get_cfg()
    d = seam.args_dict(ns)
    d["epochs"] = -1
    assert ns.epochs != -1 and seam.args_dict({"a": 1}) == {"a": 1}


def test_saved_model_args_read_what_a_finished_checkpoint_keeps(tmp_path):
    """Ultralytics trims a finished checkpoint's `train_args` to its own keys (`strip_optimizer`) and gives every
    loaded model those trimmed args (`load_checkpoint`): `fss_*` survive only in the pickled model's args, where
    `saved_model_args` reads them. Checked on a checkpoint saved and stripped by Ultralytics' own functions."""
    import copy

    from ultralytics.nn.tasks import load_checkpoint
    from ultralytics.utils.torch_utils import strip_optimizer

    args = get_cfg(overrides={"epochs": 3})
    vars(args).update(fss_beta=4.0, trainer="ultralytics_fss.FSSTrainer")  # as FSSTrainer's args carry them
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    model.args = args  # as `set_model_attributes` leaves it, shared with the EMA copy
    ckpt = {"epoch": 2, "model": None, "ema": copy.deepcopy(model).half(), "updates": 1, "optimizer": {},
            "train_args": vars(args), "date": "", "version": ""}  # `BaseTrainer._get_checkpoint`'s keys
    torch.save(ckpt, tmp_path / "last.pt")
    assert seam.saved_model_args(tmp_path / "last.pt")["fss_beta"] == 4.0  # an unfinished run: both places
    strip_optimizer(tmp_path / "last.pt")  # what `final_eval` does to best.pt and last.pt
    loaded, _ = load_checkpoint(tmp_path / "last.pt")
    assert "fss_beta" not in loaded.args and "trainer" not in loaded.args  # upstream drops them on loading
    saved = seam.saved_model_args(tmp_path / "last.pt")
    assert saved["fss_beta"] == 4.0 and saved["trainer"] == "ultralytics_fss.FSSTrainer" and saved["epochs"] == 3


@pytest.mark.parametrize("base, task", [("yolo11n-obb.yaml", "obb"), ("yolo11n-seg.yaml", "segment"),
                                        ("yolo11n-pose.yaml", "pose"), ("yolo11n.yaml", "detect")])  # fmt: skip
def test_model_file_task_is_the_task_yolo_gives(tmp_path, caplog, base, task):
    """The task of a model YAML or weights saved under a name that says nothing (`aerial.yaml`), as `YOLO(model)`
    reads it (the head, the pickled model), with no 'Unable to automatically guess' warning; the same for the names
    Ultralytics ships."""
    from ultralytics.nn.tasks import yaml_model_load
    from ultralytics.utils import YAML

    cfg = tmp_path / "aerial.yaml"
    YAML.save(cfg, {k: v for k, v in yaml_model_load(base).items() if k != "yaml_file"})
    weights = tmp_path / "aerial.pt"
    YOLO(cfg).save(weights)
    with caplog.at_level("WARNING", logger="ultralytics"):
        found = [seam.model_file_task(m) for m in (base, cfg, weights)]
    assert found == [task, task, task] == [YOLO(cfg).task, YOLO(weights).task, task]
    assert "Unable to automatically guess" not in caplog.text
    assert guess_model_task(str(cfg)) == "detect" or task == "detect"  # the name-based guess the seam avoids


# ------------------------------------------------------------------------------------------------------ batches
@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """data.yaml of a generated 64-px dataset per task (4 images)."""
    from ultralytics_fss.synthetic import make_dataset

    root = tmp_path_factory.mktemp("tasks")
    return {t: make_dataset(root / t, images=4, imgsz=64, objects=(3, 6), size=(0.15, 0.4), task=t)
            for t in ("detect", "obb", "segment", "pose")}  # fmt: skip


@pytest.mark.parametrize("task", ["detect", "obb", "segment", "pose"])
def test_one_image_batch_is_the_validation_loaders(task_data, task):
    """`one_image_batch` of an image and its labels (in pixels) is the batch Ultralytics' validation dataloader makes
    of them (`build_yolo_dataset` in val mode, `collate_fn`, `overlap_mask=False`): images, classes, boxes (xywhr for
    obb), masks and keypoints alike; and the labels handed in are left as they were."""
    import cv2
    import numpy as np
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(task_data[task]))
    cfg = get_cfg(overrides=dict(task=task, imgsz=64, overlap_mask=False, cache=False))
    dataset = build_yolo_dataset(cfg, data["val"], 1, data, mode="val")
    want = dataset.collate_fn([dataset[0]])
    label = dataset.labels[0]
    boxes = label["bboxes"] * 64  # the images are 64 px: the loader's letterbox changes nothing
    polygons = [s * 64 for s in label["segments"]] if task in {"obb", "segment"} else None
    keypoints = label["keypoints"] * [64, 64, 1] if task == "pose" else None
    copies = [np.copy(a) for a in (boxes, *(polygons or []), *([] if keypoints is None else [keypoints]))]
    got, rows = seam.one_image_batch(task, cv2.imread(dataset.im_files[0]), label["cls"][:, 0], boxes, polygons,
                                     keypoints)  # fmt: skip
    assert list(rows) == list(range(len(label["cls"]))) and len(rows) >= 3
    tensors = {k for k, v in want.items() if isinstance(v, torch.Tensor)}
    extra = {"segment": {"masks"}, "pose": {"keypoints"}}.get(task, set())
    assert tensors == set(got) and {"masks", "keypoints"} & tensors == extra
    for k in tensors:
        assert got[k].shape == want[k].shape and got[k].dtype == want[k].dtype, k
        assert torch.allclose(got[k].float(), want[k].float(), atol=1e-5), k
    assert all(np.array_equal(a, b) for a, b in zip(copies, (boxes, *(polygons or []),
                                                           *([] if keypoints is None else [keypoints]))))  # fmt: skip


def test_obb_kept_is_the_obb_losss_filter():
    """`one_image_batch` leaves out the rotated boxes `v8OBBLoss` drops (a side under 2 px), and names the rows it
    kept; the loss then sees exactly the kept boxes."""
    import numpy as np

    model, _ = model_and_batch("obb", "yolo11n-obb.yaml")
    corners = np.array([[[10, 10], [30, 10], [30, 20], [10, 20]], [[40, 40], [41.5, 40], [41.5, 50], [40, 50]],
                        [[20, 40], [40, 40], [40, 60], [20, 60]]], np.float32)  # the middle one is 1.5 px wide
    boxes = np.concatenate([corners.min(1), corners.max(1) - corners.min(1)], 1)
    boxes[:, :2] += boxes[:, 2:] / 2  # xywh
    batch, rows = seam.one_image_batch("obb", np.zeros((64, 64, 3), np.uint8), np.zeros(3), boxes, list(corners))
    assert list(rows) == [0, 2] and batch["bboxes"].shape == (2, 5)
    stock = seam.stock_loss_class(model)(model)
    preds = branch_preds(stock, model, {"img": batch["img"].float() / 255})
    x = seam.obb_inputs(stock, preds, batch)
    assert int(x.mask_gt.sum()) == 2 and seam.obb_kept(batch["bboxes"], torch.tensor([64, 64])).all()
    # against upstream: the stock loss, on the batch with the thin box put back, hands its assigner the same two GTs
    full = {**batch, "bboxes": torch.cat([batch["bboxes"][:1], torch.tensor([[40.75, 45, 1.5, 10, 0]]) / 64 *
                                          torch.tensor([1, 1, 1, 1, 64.0]), batch["bboxes"][1:]]),
            "cls": torch.zeros(3, 1), "batch_idx": torch.zeros(3)}  # fmt: skip
    stock.assigner = Capture(stock.assigner)
    stock.loss(preds, full)
    kept = seam.obb_kept(full["bboxes"], torch.tensor([64.0, 64.0]))
    assert kept.tolist() == [True, False, True] and int(stock.assigner.args[5].sum()) == int(kept.sum()) == 2


def test_loss_args_is_a_namespace_over_the_defaults():
    """`loss_args`: Ultralytics' defaults under the given values, read by attribute, one mask per object."""
    args = seam.loss_args({"box": 1.5, "overlap_mask": True, "fss_q": 3})
    assert args.box == 1.5 and args.fss_q == 3 and args.overlap_mask is False and args.cls == get_cfg().cls


# --- `model.tune`: the routed method and the Tuner's subprocess command --------------------------------------------


def test_stock_tune_builds_the_tuner_args_that_fss_tune_mirrors(monkeypatch, tmp_path):
    """Ultralytics' `Model.tune` (its sink, the Tuner, recorded) gets `{**overrides, **kwargs, "mode": "train"}` with
    optimizer AdamW unless the space tunes it: `ultralytics_fss.train.tune.tune` builds the same for `FSSTuner`."""
    import ultralytics.engine.tuner as upstream

    seen = []

    class Recorder:
        def __init__(self, args, _callbacks=None, *, model=None):
            seen.append(dict(args))

        def __call__(self, iterations=300, cleanup=True):
            seen.append(iterations)

    monkeypatch.setattr(upstream, "Tuner", Recorder)
    model = YOLO("yolo11n.yaml")
    from ultralytics_fss.train.tune import tune, wants_fss

    seam.install_tune_routing(wants_fss, tune)  # as taking the trainer's name from the package does
    assert Model.tune.__wrapped__ is not None and YOLO.tune is Model.tune  # routed; YOLO does not override it
    seam.stock_tune(model, False, 3, data="d.yaml", epochs=2, space={"lr0": (1e-4, 1e-2)})
    seam.stock_tune(model, False, 1, data="d.yaml", space={"optimizer": ["SGD"]})
    assert seen == [{**model.overrides, "data": "d.yaml", "epochs": 2, "space": {"lr0": (1e-4, 1e-2)},
                     "optimizer": "AdamW", "mode": "train"}, 3,
                    {**model.overrides, "data": "d.yaml", "space": {"optimizer": ["SGD"]}, "mode": "train"}, 1]


def test_tuner_command_is_what_multitrainer_runs(tmp_path):
    """Inside `tuner_command`, Ultralytics' MultiTrainer (the Tuner's per-iteration runner) runs the given command
    with `train` and every argument as `key=value` (a script that records its argv stands in for training)."""
    import json
    import sys

    import ultralytics.engine.trainer as engine_trainer
    from ultralytics.engine.trainer import MultiTrainer

    out = tmp_path / "argv.json"
    script = f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))"
    stock = engine_trainer._YOLO_CLI_COMMAND
    args = {"model": "yolo11n.yaml", "data": [str(tmp_path / "d.yaml")], "project": str(tmp_path), "task": "detect",
            "trainer": "ultralytics_fss.FSSTrainer", "fss_q": 3, "plots": False}  # fmt: skip
    with seam.tuner_command([sys.executable, "-c", script]):
        MultiTrainer(None, args, YOLO("yolo11n.yaml").model).train()
    argv = json.loads(out.read_text())
    assert argv[0] == "train" and {"trainer=ultralytics_fss.FSSTrainer", "fss_q=3", "task=detect"} <= set(argv)
    assert engine_trainer._YOLO_CLI_COMMAND is stock  # restored


# --- pieces moved into the seam: each against the upstream code it follows -----------------------------------------


def test_keep_e2e_schedule_carries_every_piece_of_state_update_advances():
    """A criterion built in place of a stepped `E2ELoss` continues its decay: after `keep_e2e_schedule` every number
    `E2ELoss` holds equals the stepped one's, and both step on alike (a new schedule attribute upstream fails here)."""
    from ultralytics.utils.loss import v8DetectionLoss

    model, _ = model_and_batch("detect", "yolo26n.yaml")
    stepped = E2ELoss(model, v8DetectionLoss)
    for _ in range(3):
        stepped.update()
    rebuilt = E2ELoss(model, v8DetectionLoss)
    seam.keep_e2e_schedule(rebuilt, stepped)
    numbers = lambda c: {k: v for k, v in vars(c).items() if isinstance(v, (int, float))}  # noqa: E731
    assert numbers(rebuilt) == numbers(stepped) and stepped.updates == 3
    stepped.update(), rebuilt.update()
    assert numbers(rebuilt) == numbers(stepped)
    seam.keep_e2e_schedule(rebuilt, v8DetectionLoss(model))  # not end-to-end: nothing carried
    assert numbers(rebuilt) == numbers(stepped)


def test_o2m_weight_is_e2e_losss_branch_weight():
    from ultralytics.utils.loss import v8DetectionLoss

    model, _ = model_and_batch("detect", "yolo26n.yaml")
    crit = E2ELoss(model, v8DetectionLoss)
    assert seam.o2m_weight(crit) == crit.o2m == 0.8
    crit.update()
    assert seam.o2m_weight(crit) == crit.o2m < 0.8 and seam.o2m_weight(v8DetectionLoss(model)) is None


@pytest.mark.parametrize("cfg", ["yolo11n.yaml", "yolo26n.yaml"])
def test_training_preds_are_the_branch_the_loss_reads(cfg):
    """In eval mode (the replay) and train mode alike, `training_preds` gives the predictions Ultralytics' criterion
    hands its (one-to-many) loss."""
    model, batch = model_and_batch("detect", cfg)
    crit = seam.criterion(model, seam.stock_loss_class(model))
    with torch.no_grad():
        for mode in (True, False):  # train mode: the dict; eval mode: (inference, dict)
            model.train(mode)
            want = branch_preds(seam.main_branch(crit), model, batch)  # the loss's own `parse_output`
            got = seam.training_preds(model(batch["img"]))
            assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in ("boxes", "scores"))


def test_obb_angle_term_is_the_stock_losss(tmp_path):
    """With the stock assigner's targets and weights (target score sums over their sum), `obb_angle_term` gives the
    angle term `v8OBBLoss.loss` computes, and a zero keeper with the angle output in its graph."""
    model, batch = model_and_batch("obb", "yolo11n-obb.yaml")
    stock = seam.stock_loss_class(model)(model)
    stock.assigner = Capture(stock.assigner)
    preds = branch_preds(stock, model, batch)
    total, _ = stock.loss(preds, batch)
    x = seam.obb_inputs(stock, preds, batch)
    _, target_bboxes, target_scores, fg_mask, _ = stock.assigner.call(*stock.assigner.args)
    target_bboxes = torch.cat([target_bboxes[..., :4] / x.stride_tensor, target_bboxes[..., 4:]], -1)
    norm = max(target_scores.sum(), 1)
    angle, keeper = seam.obb_angle_term(stock, x, target_bboxes, fg_mask, target_scores[fg_mask].sum(-1), norm)
    assert fg_mask.any() and float(keeper.detach()) == 0.0 and keeper.requires_grad
    want = total[3] / (stock.hyp.angle * batch["img"].shape[0])
    torch.testing.assert_close(angle, want.to(angle.dtype), rtol=1e-5, atol=1e-7)


def test_the_entry_point_the_hook_replaces_is_the_console_scripts():
    """`yolo` and `ultralytics` call `ultralytics.cfg:entrypoint` (Ultralytics' installed metadata): what the startup
    hook wraps (`TARGET`, `SCRIPTS`) and what `stock_entrypoint` unwraps."""
    from importlib.metadata import distribution

    import _ultralytics_fss_hook as hook

    scripts = {e.name: e.value for e in distribution("ultralytics").entry_points if e.group == "console_scripts"}
    module, attr = seam.ENTRYPOINT
    assert {scripts[name] for name in hook.SCRIPTS} == {f"{module}:{attr}"} and hook.TARGET == module
    import ultralytics.cfg

    assert seam.stock_entrypoint() is getattr(ultralytics.cfg.entrypoint, "__wrapped__", ultralytics.cfg.entrypoint)


def test_hooked_tuner_runs_each_hook_inside_its_upstream_step(tmp_path):
    """The Tuner's private steps exist upstream as `HookedTuner` overrides them, and each hook sees their result:
    identity hooks leave Ultralytics' `_constrain` and `_save_local_result` unchanged."""
    import json

    from ultralytics.engine.tuner import Tuner

    args = dict(model="yolo11n.yaml", data="coco8.yaml", project=str(tmp_path), name="t", space={"lr0": (1e-5, 1e-1)})
    stock, hooked = Tuner(dict(args)), seam.HookedTuner(dict(args, name="h"))
    hyp = {"lr0": 5.0}
    assert hooked._constrain(dict(hyp)) == stock._constrain(dict(hyp)) == {"lr0": 0.1}

    class Doubling(seam.HookedTuner):
        def constrain(self, hyp):
            return {k: 2 * v for k, v in hyp.items()}

        def record(self, result):
            return {**result, "seen": True}

    doubling = Doubling(dict(args, name="d"))
    assert doubling._constrain(dict(hyp)) == {"lr0": 0.2}
    doubling.tune_dir.mkdir(parents=True)
    doubling._save_local_result({"iteration": 1, "fitness": 0.5, "hyperparameters": {"lr0": 0.01}})
    (line,) = doubling.tune_file.read_text().splitlines()
    assert json.loads(line)["seen"] is True and doubling.local_results()[0]["fitness"] == 0.5
    assert doubling.best_result(doubling.local_results())["iteration"] == 1


def test_importing_modules_patches_nothing_and_the_trainers_name_routes_tune():
    """`Model.tune` is replaced by `install_tune_routing` alone: importing any module of the package leaves it stock;
    taking a name of the trainer from the package routes it; `ULTRALYTICS_FSS_HOOK=0` leaves it stock."""
    import os
    import subprocess
    import sys

    probe = ("import ultralytics_fss.train, ultralytics_fss.train.tune, ultralytics_fss.assign, ultralytics_fss.cli\n"
             "from ultralytics.engine.model import Model\n"
             "print(hasattr(Model.tune, '__wrapped__'))\n"
             "from ultralytics_fss import FSSTrainer\n"
             "print(hasattr(Model.tune, '__wrapped__'))")  # fmt: skip
    root = str(Path(__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr
    off = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={**env, "ULTRALYTICS_FSS_HOOK": "0"})  # fmt: skip
    assert off.stdout.split() == ["False", "False"], off.stdout + off.stderr


def test_model_tune_args_are_what_model_tune_hands_its_tuner(monkeypatch):
    """`model_tune_args` against `Model.tune` itself (its Tuner recorded): the same dict, and the same refusal of
    positional arguments."""
    import ultralytics.engine.tuner as upstream

    seen = []

    class Recorder:
        def __init__(self, args, _callbacks=None, *, model=None):
            seen.append(dict(args))

        def __call__(self, iterations=300, cleanup=True):
            pass

    monkeypatch.setattr(upstream, "Tuner", Recorder)
    model = YOLO("yolo11n.yaml")
    for space in ({"lr0": (1e-4, 1e-2)}, {"optimizer": ["SGD"]}):
        seam.stock_tune(model, False, 2, data="d.yaml", epochs=2, space=space)
        assert seam.model_tune_args(model, (), dict(data="d.yaml", epochs=2), space) == seen[-1]
    with pytest.raises(TypeError, match="require use_ray=True") as ours:
        seam.model_tune_args(model, (1,), {}, None)
    with pytest.raises(TypeError) as theirs:
        seam.stock_tune(model, False, 2, 1)
    assert str(ours.value) == str(theirs.value)
