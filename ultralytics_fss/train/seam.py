"""The Ultralytics seam: every piece of `ultralytics_fss` shaped by Ultralytics' internals, in one file.

Each piece is copied or mirrored from Ultralytics 8.4.190 and names its upstream file and lines; `tests/test_seam.py`
checks each one's behaviour against the upstream code on real inputs (the same tensors, the same parsed arguments)
for every model family. When Ultralytics changes, this file and that test are what to revisit.

| piece                         | mirrors, in Ultralytics 8.4.190                                                  |
|-------------------------------|----------------------------------------------------------------------------------|
| `detect_inputs`               | utils/loss.py `v8DetectionLoss.get_assigned_targets_and_loss`, lines 433-450     |
| `obb_inputs`                  | utils/loss.py `v8OBBLoss.loss`, lines 1073-1106                                  |
| `segment26_assigner_inputs`   | utils/loss.py `SegmentLoss26.get_assigned_targets_and_loss`, lines 691-708       |
| `segment26_overlap_assigner`  | utils/tal.py `SegTaskAlignedAssigner.pair_overlaps`' top-k ranking, 462-463      |
| `task_pair_overlaps`          | utils/tal.py `TaskAlignedAssigner.forward`'s per-call `bs`, `n_max_boxes`, 89-90 |
| `weighted_segmentation_loss`  | utils/loss.py `v8SegmentationLoss.calculate_segmentation_loss`, lines 647-677    |
| `WeightedKeypointLoss`        | utils/loss.py `KeypointLoss.forward`, lines 344-352                              |
| `stock_loss_class`            | nn/tasks.py `init_criterion` of the detect, obb, segment, pose models, 651-833   |
| `model_task`                  | the same table, by task name                                                     |
| `one_image_batch`             | data/dataset.py `YOLODataset` val pipeline: `update_labels_info` (401-431),      |
|                               | `build_transforms`' `Format` (327-358), `collate_fn` (433-461)                   |
| `loss_args`                   | utils/loss.py: the losses read `model.args` by attribute (`overlap_mask`, 524)   |
| `OBB_MIN_SIDE`, `obb_kept`    | utils/loss.py `v8OBBLoss.loss`'s tiny-box filter, lines 1089-1090                |
| `criterion`, `branches`, ...  | utils/loss.py `E2ELoss` (`one2many`, `one2one` branches), lines 1319-1333        |
| `parse_yolo_args`, BARE_FLAGS | cfg/__init__.py `entrypoint`'s argument loop, lines 1067-1105                    |
| `yolo_train`                  | cfg/__init__.py `entrypoint`'s deprecated keys, train defaults, call, 1107-1188  |
| `resumed_train_args`          | engine/trainer.py `check_resume` (`resume=last.pt`, or `resume model=last.pt`)   |
| `ValidatorWithExtras`         | engine/trainer.py: validation replaces `trainer.metrics`, 647-685 (test_loggers) |
| `unsupported_model`           | models/yolo/model.py `YOLO.__init__`'s routing by head, class and asset name     |
| `args_dict`                   | `model.args`: a namespace while training, a dict once loaded from a checkpoint   |
| `saved_model_args`            | nn/tasks.py `load_checkpoint` (2036, 2050), utils/torch_utils.py `strip_optimizer`|
| `model_file_task`             | engine/model.py `Model._new`/`_load`: the task of a YAML's head or of weights    |
| `route_tune`, `stock_tune`    | engine/model.py `Model.tune`, lines 915-967: the one method patched (see below)  |
| `tuner_command`               | engine/trainer.py `MultiTrainer.train`'s `yolo train` subprocess, 1347-1357      |

`route_tune` is the only replacement of an Ultralytics attribute: `model.tune(trainer=...)` cannot work otherwise
(`Model.tune` checks every argument against Ultralytics' config). The replacement calls the stock method for every
call that does not ask for FSS; `ULTRALYTICS_FSS_HOOK=0` leaves `Model.tune` untouched.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from ultralytics.cfg import (
    MODES,
    TASK2DATA,
    TASK2MODEL,
    TASKS,
    _handle_deprecation,
    merge_equals_args,
    parse_key_value_pair,
)
from ultralytics.nn.modules.head import Detect, Pose26, Segment26, v10Detect
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, guess_model_task
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOGGER, IterableSimpleNamespace
from ultralytics.utils.loss import (
    E2ELoss,
    KeypointLoss,
    PoseLoss26,
    SegmentLoss26,
    v8DetectionLoss,
    v8OBBLoss,
    v8PoseLoss,
    v8SegmentationLoss,
)
from ultralytics.utils.ops import xyxy2xywh
from ultralytics.utils.tal import SegTaskAlignedAssigner, make_anchors

# ---------------------------------------------------------------------------------------------------------- losses

OBB_MIN_SIDE = 2.0  # px; `v8OBBLoss.loss` drops rotated GTs with a smaller side (`obb_kept`)


class LossInputs(NamedTuple):
    """What Ultralytics' detection loss derives from a batch before it assigns.

    Attributes:
        pred_distri (torch.Tensor): (b, N, 4 * reg_max) box distribution logits.
        pred_scores (torch.Tensor): (b, N, C) class logits.
        pred_bboxes (torch.Tensor): (b, N, 4) decoded boxes, xyxy grid units.
        anchor_points (torch.Tensor): (N, 2) anchor centres, grid units.
        stride_tensor (torch.Tensor): (N, 1) stride of each anchor.
        imgsz (torch.Tensor): (2,) image height and width, pixels.
        gt_labels (torch.Tensor): (b, M, 1) GT classes.
        gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels.
        mask_gt (torch.Tensor): (b, M, 1) 1 for real GTs.
        pred_angle (torch.Tensor, optional): (b, N, 1) predicted angles, radians (oriented boxes only; then
            `pred_bboxes` and `gt_bboxes` are xywhr, grid units and pixels).
    """

    pred_distri: torch.Tensor
    pred_scores: torch.Tensor
    pred_bboxes: torch.Tensor
    anchor_points: torch.Tensor
    stride_tensor: torch.Tensor
    imgsz: torch.Tensor
    gt_labels: torch.Tensor
    gt_bboxes: torch.Tensor
    mask_gt: torch.Tensor
    pred_angle: torch.Tensor | None = None


def detect_inputs(loss: v8DetectionLoss, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
    """Decode predictions and pad targets exactly as the stock detection loss does before it calls its assigner.

    Copied from `v8DetectionLoss.get_assigned_targets_and_loss` (ultralytics/utils/loss.py, lines 433-450).
    """
    pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, N, 4 * reg_max)
    pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (b, N, C) logits
    anchor_points, stride_tensor = make_anchors(preds["feats"], loss.stride, 0.5)  # (N, 2), (N, 1)
    dtype, batch_size = pred_scores.dtype, pred_scores.shape[0]
    imgsz = torch.tensor(preds["feats"][0].shape[2:], device=loss.device, dtype=dtype) * loss.stride[0]
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
    targets = loss.preprocess(targets.to(loss.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
    gt_labels, gt_bboxes = targets.split((1, 4), 2)  # (b, M, 1), (b, M, 4) xyxy pixels
    mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)  # (b, M, 1)
    pred_bboxes = loss.bbox_decode(anchor_points, pred_distri)  # (b, N, 4) xyxy, grid units
    return LossInputs(pred_distri, pred_scores, pred_bboxes, anchor_points, stride_tensor, imgsz, gt_labels,
                      gt_bboxes, mask_gt)  # fmt: skip


def obb_inputs(loss: v8OBBLoss, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
    """Decode predictions and pad targets as the stock oriented-box loss does before it calls its assigner.

    Copied from `v8OBBLoss.loss` (ultralytics/utils/loss.py, lines 1073-1106, without its error message).
    """
    pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, N, 4 * reg_max)
    pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (b, N, C) logits
    pred_angle = preds["angle"].permute(0, 2, 1).contiguous()  # (b, N, 1)
    anchor_points, stride_tensor = make_anchors(preds["feats"], loss.stride, 0.5)
    imgsz = torch.tensor(preds["feats"][0].shape[2:], device=loss.device, dtype=pred_scores.dtype) * loss.stride[0]
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"].view(-1, 5)), 1)
    targets = targets[obb_kept(targets[:, 2:], imgsz)]  # Ultralytics drops rotated boxes under 2 px
    targets = loss.preprocess(targets.to(loss.device), pred_scores.shape[0], scale_tensor=imgsz[[1, 0, 1, 0]])
    gt_labels, gt_bboxes = targets.split((1, 5), 2)  # (b, M, 1), (b, M, 5) xywhr pixels
    mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
    pred_bboxes = loss.bbox_decode(anchor_points, pred_distri, pred_angle)  # (b, N, 5) xywhr, grid units
    return LossInputs(pred_distri, pred_scores, pred_bboxes, anchor_points, stride_tensor, imgsz, gt_labels,
                      gt_bboxes, mask_gt, pred_angle)  # fmt: skip


def obb_kept(bboxes: torch.Tensor, imgsz: torch.Tensor) -> torch.Tensor:
    """Which rotated GTs `v8OBBLoss.loss` keeps: width and height at least `OBB_MIN_SIDE` px (ultralytics/utils/loss.py
    lines 1089-1090, "to stabilize training"); the others never reach its assigner.

    Args:
        bboxes (torch.Tensor): (n, 5) xywhr boxes, xywh normalised to the image, as the batch holds them.
        imgsz (torch.Tensor): (2,) image height and width, pixels.

    Returns:
        (torch.Tensor): (n,) bool.
    """
    rw, rh = bboxes[:, 2] * float(imgsz[1]), bboxes[:, 3] * float(imgsz[0])
    return (rw >= OBB_MIN_SIDE) & (rh >= OBB_MIN_SIDE)


def segment26_assigner_inputs(loss: SegmentLoss26, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict:
    """What the YOLO26 segmentation loss hands its mask-aware assigner besides the box inputs.

    Copied from `SegmentLoss26.get_assigned_targets_and_loss` (ultralytics/utils/loss.py, lines 691-708).

    Returns:
        (dict): `pd_coef` (b, N, nm), `mask_scale` (b, 1), `proto` (b, nm, h, w) and `gt_masks` (b, M', h, w) bool.
    """
    batch_idx = batch["batch_idx"].view(-1).long().to(loss.device)
    proto = (preds["proto"][0] if isinstance(preds["proto"], tuple) else preds["proto"]).detach()
    bs, _, mh, mw = proto.shape
    n = torch.bincount(batch_idx, minlength=bs)
    masks = batch["masks"].to(loss.device)
    if masks.numel() and masks.shape[-2:] != (mh, mw):
        masks = F.interpolate(masks[None].float(), (mh, mw), mode="nearest")[0]
    if loss.overlap:  # (bs, h, w) where i + 1 marks each image's i-th object
        gt_masks = masks[:, None] == torch.arange(1, int(n.max()) + 1, device=loss.device)[:, None, None]
    else:  # (n_objects, h, w) in batch order, padded into per-image slots
        gt_masks = masks.new_zeros(bs, int(n.max()), *masks.shape[1:])
        gt_masks[batch_idx, torch.arange(len(batch_idx), device=loss.device) - (n.cumsum(0) - n)[batch_idx]] = masks
        gt_masks = gt_masks > 0.5
    mask_scale = (mh / (preds["feats"][0].shape[2] * loss.stride[0])).expand(bs, 1)
    pd_coef = preds["mask_coefficient"].detach().permute(0, 2, 1)
    return dict(pd_coef=pd_coef, mask_scale=mask_scale, proto=proto, gt_masks=gt_masks)


def task_pair_overlaps(stock_assigner, pairs: tuple[torch.Tensor, ...], gt_bboxes: torch.Tensor, *args, **kwargs):
    """Ultralytics' task overlap (`SegTaskAlignedAssigner` mask IoU, `PoseTaskAlignedAssigner` OKS) of candidate pairs.

    `pair_overlaps` reads the batch size and GT count its `forward` stores on the assigner per call
    (ultralytics/utils/tal.py, lines 89-90); they are set here, from this call's GT tensor, right before it runs.

    Args:
        stock_assigner: The stock loss's own assigner.
        pairs (tuple[torch.Tensor, ...]): (image, GT, anchor) indices of the pairs, each (P,).
        gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, pixels.
        *args, **kwargs: The rest of that assigner's `pair_overlaps` arguments.

    Returns:
        (torch.Tensor): (P,) overlaps.
    """
    stock_assigner.bs, stock_assigner.n_max_boxes = gt_bboxes.shape[:2]
    return stock_assigner.pair_overlaps(pairs, gt_bboxes, *args, **kwargs)


def segment26_overlap_assigner(loss: SegmentLoss26, topk: int, alpha: float, beta: float) -> SegTaskAlignedAssigner:
    """The `SegTaskAlignedAssigner` whose `pair_overlaps` gives FSS the mask-aware overlap on a branch FSS assigns.

    Its `pair_overlaps` computes mask IoU only on each GT's `3 * topk` best pairs by `p^alpha * IoU^beta`
    (ultralytics/utils/tal.py, lines 462-463), and `SegmentLoss26.__init__` builds it from the settings of the
    assigner before it (ultralytics/utils/loss.py, lines 686-687); here FSS's q, alpha and beta rank the pairs.
    """
    return SegTaskAlignedAssigner(topk=topk, num_classes=loss.nc, alpha=alpha, beta=beta, stride=loss.stride.tolist())


def weighted_segmentation_loss(loss: v8SegmentationLoss, weights: torch.Tensor, fg_mask, masks, target_gt_idx,
                               target_bboxes, batch_idx, proto, pred_masks, imgsz) -> torch.Tensor:  # fmt: skip
    """Ultralytics' mask loss with each positive's term times its weight.

    Copied from `v8SegmentationLoss.calculate_segmentation_loss` (ultralytics/utils/loss.py, lines 647-677) with one
    change: each positive's area is divided by its weight, and `single_mask_loss` divides by the area, so its term is
    multiplied by the weight. With every weight 1 it is the stock method (`tests/test_seam.py`).

    Args:
        loss (v8SegmentationLoss): The segmentation loss (its `overlap` flag and `single_mask_loss`).
        weights (torch.Tensor): (b, N) weight of each anchor; only positives' are read.
        The others: as the stock method's.
    """
    _, _, mask_h, mask_w = proto.shape
    total = 0
    target_bboxes_normalized = target_bboxes / imgsz[[1, 0, 1, 0]]
    marea = xyxy2xywh(target_bboxes_normalized)[..., 2:].prod(2) / weights.clamp(min=1e-6)  # area / w_i
    mxyxy = target_bboxes_normalized * torch.tensor([mask_w, mask_h, mask_w, mask_h], device=proto.device)
    for i, single_i in enumerate(zip(fg_mask, target_gt_idx, pred_masks, proto, mxyxy, marea)):
        fg_mask_i, target_gt_idx_i, pred_masks_i, proto_i, mxyxy_i, marea_i = single_i
        if fg_mask_i.any():
            mask_idx = target_gt_idx_i[fg_mask_i]
            if loss.overlap:
                gt_mask = (masks[i] == (mask_idx + 1).view(-1, 1, 1)).float()
            else:
                gt_mask = masks[batch_idx.view(-1) == i][mask_idx]
            total += loss.single_mask_loss(
                gt_mask, pred_masks_i[fg_mask_i], proto_i, mxyxy_i[fg_mask_i], marea_i[fg_mask_i]
            )
        else:  # keeps the mask branch in the graph (DDP), as the stock loss does
            total += (proto * 0).sum() + (pred_masks * 0).sum()
    return total / fg_mask.sum()


class WeightedKeypointLoss(KeypointLoss):
    """Ultralytics' OKS keypoint loss with a weight per object row, given for the duration of one loss call."""

    def __init__(self, sigmas: torch.Tensor):
        """Same sigmas as the stock keypoint loss; unweighted until `weighted` opens a call."""
        super().__init__(sigmas)
        self.row_weights: torch.Tensor | None = None

    def weighted(self, row_weights: torch.Tensor):
        """Context in which `forward` weights each row: `with keypoint_loss.weighted(w): ...` (one loss call)."""
        return _Scoped(self, "row_weights", row_weights)

    def forward(self, pred_kpts, gt_kpts, kpt_mask, area):
        """Copied from `KeypointLoss.forward` (ultralytics/utils/loss.py, lines 348-352), each row's term times its
        weight; the stock forward outside `weighted` (tested equal with weights 1)."""
        if self.row_weights is None:
            return super().forward(pred_kpts, gt_kpts, kpt_mask, area)
        d = (pred_kpts[..., 0] - gt_kpts[..., 0]).pow(2) + (pred_kpts[..., 1] - gt_kpts[..., 1]).pow(2)
        kpt_loss_factor = kpt_mask.shape[1] / (torch.sum(kpt_mask != 0, dim=1) + 1e-9)
        e = d / ((2 * self.sigmas).pow(2) * (area + 1e-9) * 2)
        return (kpt_loss_factor.view(-1, 1) * ((1 - torch.exp(-e)) * kpt_mask) * self.row_weights.view(-1, 1)).mean()


class _Scoped:
    """Set `obj.name = value` on entry and back to None on exit: a value that lives for one call, never longer."""

    def __init__(self, obj: Any, name: str, value: Any):
        self.obj, self.name, self.value = obj, name, value

    def __enter__(self):
        setattr(self.obj, self.name, self.value)

    def __exit__(self, *exc):
        setattr(self.obj, self.name, None)


def scoped(obj: Any, name: str, value: Any) -> _Scoped:
    """Context manager: `obj.name` holds `value` inside the `with` block and None after it, even on errors."""
    return _Scoped(obj, name, value)


def stock_loss_class(model) -> type:
    """Return the loss class Ultralytics' `model.init_criterion` uses (for end-to-end heads: inside its `E2ELoss`).

    Mirrors the `init_criterion` methods of DetectionModel, OBBModel, SegmentationModel and PoseModel
    (ultralytics/nn/tasks.py, lines 651-653, 683-685, 715-718, 830-833).

    Raises:
        NotImplementedError: For every other model (RT-DETR, YOLO-World/YOLOE, classify, semantic segmentation,
            depth), naming its task.
    """
    head = model.model[-1]
    if type(model) is DetectionModel and type(head) in {Detect, v10Detect}:
        return v8DetectionLoss
    if type(model) is OBBModel:
        return v8OBBLoss
    if type(model) is SegmentationModel:
        return SegmentLoss26 if isinstance(head, Segment26) else v8SegmentationLoss
    if type(model) is PoseModel:
        return PoseLoss26 if isinstance(head, Pose26) else v8PoseLoss
    task = guess_model_task(model) or "detect"  # RT-DETR's head is not in Ultralytics' table; its task is detect
    raise NotImplementedError(
        f"FSS trains YOLO detect, obb, segment and pose models, not {type(model).__name__} (task={task}). "
        "Train it with Ultralytics' own trainer."
    )


# Which models FSS cannot train, told from `model=` before Ultralytics builds anything or makes a run folder: from a
# YAML's head (its last layer, as `guess_model_task` reads it), the class pickled in local weights, or an asset name to
# be downloaded, as `YOLO.__init__` routes them (ultralytics/models/yolo/model.py). What cannot be told here (a custom
# YAML, a model object) is refused by `stock_loss_class` on the built model. Guarded by tests/test_trainer.py's check
# over every head of Ultralytics' shipped model YAMLs.
# Heads of the models FSS cannot train (the last layer of a model YAML): (Ultralytics model class, family).
UNSUPPORTED_HEADS: dict[str, tuple[str, str]] = {
    "RTDETRDecoder": ("RTDETRDetectionModel", "RT-DETR"),
    "WorldDetect": ("WorldModel", "YOLO-World"),
    "YOLOEDetect": ("YOLOEModel", "YOLOE"),
    "YOLOESegment": ("YOLOESegModel", "YOLOE"),
    "YOLOESegment26": ("YOLOESegModel", "YOLOE"),
    "Classify": ("ClassificationModel", "classify"),
    "SemanticSegment": ("SemanticSegmentationModel", "semantic segmentation"),
    "Depth": ("DepthModel", "depth"),
}
UNSUPPORTED_CLASSES: dict[str, str] = dict(UNSUPPORTED_HEADS.values())  # model class: family
# Ultralytics asset names (downloaded when missing) by family, as `YOLO.__init__` routes YAMLs by name.
ASSET_NAMES = (("rtdetr", "RT-DETR", "RTDETRDetectionModel"), ("-world", "YOLO-World", "WorldModel"),
               ("yoloe", "YOLOE", "YOLOEModel"))  # fmt: skip
SUPPORTED = (
    "FSSTrainer trains YOLO detect, obb, segment and pose models (DetectionModel, OBBModel, SegmentationModel, "
    "PoseModel; YOLO26 and YOLOv10 included)"
)


def unsupported_model(model: Any) -> tuple[str, str] | None:
    """The Ultralytics model class and family of a `model=` value FSS cannot train, found without building it.

    Args:
        model (Any): The `model=` argument: a model YAML, weights, or anything else (not checked here).

    Returns:
        (tuple[str, str] | None): `(class name, family)`, e.g. `("RTDETRDetectionModel", "RT-DETR")`; None when the
            model is trainable or cannot be told yet (missing or malformed file: Ultralytics reports it).

    Examples:
        >>> unsupported_model("rtdetr-l.yaml"), unsupported_model("yolo11n-cls.yaml"), unsupported_model("yolo11n.yaml")
        (('RTDETRDetectionModel', 'RT-DETR'), ('ClassificationModel', 'classify'), None)
    """
    if not isinstance(model, (str, Path)) or not str(model):
        return None
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        from ultralytics.nn.tasks import yaml_model_load

        try:
            head = yaml_model_load(path)["head"][-1][2]
        except Exception:  # missing or malformed: Ultralytics' own error follows, with its own words
            return None
        return UNSUPPORTED_HEADS.get(head)
    if suffix != ".pt":
        return None
    if not path.is_file():  # an asset Ultralytics would download: told by its name
        return next(((cls, family) for word, family, cls in ASSET_NAMES if word in path.stem), None)
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(path)
    except Exception:  # unreadable: Ultralytics' own error follows
        return None
    name = type((ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt).__name__
    return (name, UNSUPPORTED_CLASSES[name]) if name in UNSUPPORTED_CLASSES else None


def refusal(model: Any, cls: str, family: str) -> str:
    """The one-line message for a model FSS cannot train: what it is, what is supported, what to do instead."""
    return (f"model={model}: {family} model ({cls}); FSS cannot train it. {SUPPORTED}. Train it with Ultralytics' "
            "own trainer (without trainer=).")  # fmt: skip


LOSS_TASKS = {v8DetectionLoss: "detect", v8OBBLoss: "obb", v8SegmentationLoss: "segment", SegmentLoss26: "segment",
              v8PoseLoss: "pose", PoseLoss26: "pose"}  # fmt: skip


def model_task(model) -> str:
    """The dense task of `model` (`detect`, `obb`, `segment` or `pose`), from the loss `init_criterion` builds for it.

    Raises:
        NotImplementedError: For models FSS does not train (see `stock_loss_class`).
    """
    return LOSS_TASKS[stock_loss_class(model)]


def criterion(model, loss_fn: Callable) -> Any:
    """Wrap `loss_fn(model, tal_topk, tal_topk2)` as `init_criterion` does: in `E2ELoss` for end-to-end heads (YOLO26,
    YOLOv10; its one-to-many branch built with tal_topk=10, its one-to-one with tal_topk=7, tal_topk2=1)."""
    if getattr(model.model[-1], "one2one_cv2", None) is not None:
        return E2ELoss(model, loss_fn)
    return loss_fn(model)


def branches(crit) -> list:
    """The losses inside a criterion: `[one2many, one2one]` for `E2ELoss`, else `[crit]`."""
    return [crit.one2many, crit.one2one] if isinstance(crit, E2ELoss) else [crit]


def main_branch(crit):
    """The loss FSS drives: the one-to-many branch of an `E2ELoss`, else the criterion itself (None stays None)."""
    return crit.one2many if isinstance(crit, E2ELoss) else crit


class ValidatorWithExtras:
    """The trainer's validator, with `extra()` merged into the metrics it returns during training.

    Ultralytics' trainer replaces `trainer.metrics` with what `trainer.validator(trainer)` returns (`validate`), after
    `on_train_epoch_end` and before `save_metrics` writes the results.csv row and `on_fit_epoch_end` hands
    `trainer.metrics` to the loggers (TensorBoard, MLflow, W&B, Comet, ClearML, DVC); no callback runs in between
    (ultralytics/engine/trainer.py, lines 647-685). Everything else is the wrapped validator's: attribute reads and
    writes pass through, and a call without a trainer (the final validation of best.pt) is unchanged.
    """

    def __init__(self, validator: Any, extra: Callable[[], dict[str, float]]):
        """Wrap `validator`; `extra()` gives the entries to add to each training-time validation's metrics."""
        object.__setattr__(self, "validator", validator)
        object.__setattr__(self, "extra", extra)

    def __call__(self, trainer=None, model=None, **kwargs):
        """Validate as the wrapped validator does; during training, add `extra()` to its metrics (rank 0: a dict)."""
        metrics = self.validator(trainer, model, **kwargs)
        if trainer is not None and isinstance(metrics, dict):
            metrics = {**metrics, **self.extra()}
        return metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.validator, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.validator, name, value)


def args_dict(args) -> dict[str, Any]:
    """`model.args` or `trainer.args` as a new dict: Ultralytics keeps a namespace while training and a dict in
    models loaded from checkpoints."""
    return dict(args) if isinstance(args, dict) else dict(vars(args))


def saved_model_args(weights: str | Path) -> dict[str, Any]:
    """The arguments a checkpoint's model was trained with, `fss_*` and `trainer` included, read from the file.

    A finished run's `best.pt`/`last.pt` keeps them only in the pickled model's own `args`: `strip_optimizer` trims
    `train_args` to Ultralytics' keys (utils/torch_utils.py, lines 939-952), and `load_checkpoint` then replaces
    `model.args` of every loaded model by those trimmed `train_args` (nn/tasks.py, lines 2036 and 2050). An
    unfinished run's checkpoint still has them in `train_args` too.

    Returns:
        (dict[str, Any]): `train_args` under the model's (EMA's) `args`; {} for a file without either.
    """
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    return {**(ckpt.get("train_args") or {}), **args_dict(getattr(model, "args", None) or {})}


def model_file_task(model: str | Path) -> str:
    """The task of a `model=` value as `YOLO(model)` gives it (engine/model.py `_new` and `_load`), never from a guess
    on the file name of a local file: a model YAML's head (`guess_model_task` of the YAML dict), the model pickled in
    local weights, and only for an asset name Ultralytics downloads, the name (`yolo11n-obb.pt` is obb).

    Raises:
        FileNotFoundError: If a model YAML is neither a file nor one Ultralytics ships (`yaml_model_load`).
    """
    from ultralytics.nn.tasks import torch_safe_load, yaml_model_load

    path = Path(model)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return guess_model_task(yaml_model_load(path))
    if path.is_file():
        ckpt, _ = torch_safe_load(str(path))
        return guess_model_task((ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt)
    return guess_model_task(path)


# ----------------------------------------------------------------------------------------------------- batches

SEGMENT_RESAMPLES = {"obb": 100, "segment": 1000}  # points per polygon, `YOLODataset.update_labels_info` (line 421)


def one_image_batch(task: str, image: np.ndarray, cls: np.ndarray, boxes: np.ndarray,
                    polygons: list[np.ndarray] | None = None, keypoints: np.ndarray | None = None,
                    mask_ratio: int = 4) -> tuple[dict[str, torch.Tensor], np.ndarray]:  # fmt: skip
    """The batch Ultralytics' validation loader makes of one letterboxed image, for the loss of `task`.

    Built with Ultralytics' own pieces, as `YOLODataset` chains them (ultralytics/data/dataset.py): `Instances` with the
    polygons resampled as `update_labels_info` does (lines 401-431), `Format` with the arguments of `build_transforms`
    (lines 327-358; oriented boxes become xywhr there, polygons masks), then `collate_fn` (lines 433-461). One change:
    `mask_overlap=False` (one mask per object, in label order: `overlap_mask=True` re-sorts the objects by area), so
    the loss's GT j is label row j; the assigners see the same boxes either way. The arrays handed in are never
    modified (`Format` normalises in place: it gets copies).

    Args:
        task (str): `detect`, `obb`, `segment` or `pose`.
        image (np.ndarray): (S, S, 3) uint8 BGR image, already letterboxed to the model's input.
        cls (np.ndarray): (n,) classes.
        boxes (np.ndarray): (n, 4) xywh pixels.
        polygons (list[np.ndarray], optional): n (k, 2) pixel polygons: the 4 corners of each rotated box (obb), or
            each object's outline (segment).
        keypoints (np.ndarray, optional): (n, K, 2 or 3) pixels (and visibility), pose.
        mask_ratio (int): Mask downsampling (Ultralytics' `mask_ratio`).

    Returns:
        batch (dict[str, torch.Tensor]): `img` (1, 3, S, S) uint8 RGB, `batch_idx` (n',), `cls` (n', 1), `bboxes`
            (n', 4) normalised xywh or (n', 5) xywhr, `masks` (n', S / mask_ratio, S / mask_ratio) for segment,
            `keypoints` (n', K, 3) normalised for pose (and what else `Format` adds): of the objects the loss keeps.
        rows (np.ndarray): (n',) int64 label row of each batch object (obb: without the tiny ones, `obb_kept`).
    """
    from ultralytics.data.augment import Format
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.utils.instance import Instances
    from ultralytics.utils.ops import resample_segments

    n = len(cls)
    segments = np.zeros((0, SEGMENT_RESAMPLES["segment"], 2), dtype=np.float32)  # as update_labels_info, line 429
    if task in SEGMENT_RESAMPLES and n:
        max_len, resamples = max(len(s) for s in polygons), SEGMENT_RESAMPLES[task]
        resamples = max_len + 1 if resamples < max_len else resamples  # as update_labels_info, line 425
        segments = np.stack(resample_segments([np.asarray(s, np.float32) for s in polygons], n=resamples))
    instances = Instances(np.array(boxes, np.float32).reshape(n, 4), segments,  # copies: Format works in place
                          None if keypoints is None else np.array(keypoints, np.float32), bbox_format="xywh",
                          normalized=False)  # fmt: skip
    labels = {"img": image, "cls": np.array(cls, np.float32).reshape(n, 1), "instances": instances}
    formatter = Format(bbox_format="xywh", normalize=True, return_mask=task == "segment",
                       return_keypoint=task == "pose", return_obb=task == "obb", batch_idx=True,
                       mask_ratio=mask_ratio, mask_overlap=False)  # fmt: skip
    batch = YOLODataset.collate_fn([formatter(labels)])
    rows = np.arange(n)
    if task == "obb":
        kept = obb_kept(batch["bboxes"], torch.tensor(image.shape[:2]))  # (n,)
        rows = rows[kept.numpy()]
        batch.update(bboxes=batch["bboxes"][kept], cls=batch["cls"][kept], batch_idx=batch["batch_idx"][kept])
    return batch, rows


def loss_args(args: dict[str, Any]) -> IterableSimpleNamespace:
    """`model.args` for losses built outside training, from a model's args (or none) and `fss_*` values: Ultralytics'
    defaults under `args`, as a namespace (`v8SegmentationLoss.__init__` reads `model.args.overlap_mask` as an
    attribute, ultralytics/utils/loss.py line 524), with `overlap_mask=False` to match `one_image_batch`'s masks."""
    return IterableSimpleNamespace(**{**DEFAULT_CFG_DICT, **args, "overlap_mask": False})


# ----------------------------------------------------------------------------------------------- the `yolo` command

BARE_FLAGS = {"half", "int8", "end2end", "nms"}  # bare boolean flags whose defaults are missing or None (line 1097)


def parse_yolo_args(args: list[str]) -> tuple[dict[str, Any], str | None] | None:
    """Parse `yolo` arguments as `entrypoint`'s loop does (ultralytics/cfg/__init__.py, lines 1067-1105).

    Args:
        args (list[str]): The command line without the program name.

    Returns:
        (tuple | None): (overrides with `task` and `mode` when given, the `cfg=` value or None); None for anything
            left to Ultralytics' own message: special commands (`help`, `settings`, ...), unknown words, a key without
            `=`, malformed pairs.
    """
    overrides, cfg_file = {}, None
    try:
        merged = merge_equals_args(args)
    except SyntaxError:
        return None
    for a in merged:
        a = a[2:] if a.startswith("--") else a
        a = a[:-1] if a.endswith(",") else a
        if "=" in a:
            try:
                k, v = parse_key_value_pair(a)
            except (NameError, SyntaxError, ValueError, AssertionError):
                return None
            if k == "cfg" and v is not None:
                cfg_file = v
            else:
                overrides[k] = v
        elif a in TASKS:
            overrides["task"] = a
        elif a in MODES:
            overrides["mode"] = a
        elif (a in DEFAULT_CFG_DICT and isinstance(DEFAULT_CFG_DICT[a], bool)) or a in BARE_FLAGS:
            overrides[a] = True
        else:
            return None
    return overrides, cfg_file


def resumed_train_args(overrides: dict[str, Any]) -> dict[str, Any]:
    """The arguments of the checkpoint a train command resumes (`saved_model_args`: the model's own args over
    `train_args`): `resume=last.pt`, or `resume=True` (bare `resume`) with `model=last.pt`, as Ultralytics'
    `BaseTrainer.check_resume` finds the file; {} when none is resumed or the file is not a readable checkpoint
    (Ultralytics reports that itself)."""
    resume = overrides.get("resume")
    ckpt = resume if isinstance(resume, (str, Path)) else overrides.get("model") if resume is True else None
    if not (ckpt and str(ckpt).endswith(".pt") and Path(ckpt).is_file()):
        return {}
    try:
        return saved_model_args(ckpt)
    except Exception:
        return {}


def yolo_train(overrides: dict[str, Any], method: str = "train", **extra: Any) -> Any:
    """Run a parsed train command as `entrypoint` ends it: `YOLO(model, task=task).train(**overrides, **extra)`
    (`method="tune"`: `.tune(...)`, which Ultralytics' `entrypoint` does not offer, with the same defaults).

    Mirrors `entrypoint`'s task, model and data defaults for train (ultralytics/cfg/__init__.py, lines 1118-1188): a
    task's default model, `yolo26n.pt` when none, the model's task over a conflicting `task=`, the task's default data
    unless resuming. One addition: `resume=last.pt` without `model=` loads that checkpoint, so the model (and its
    task) is the resumed run's.

    Args:
        overrides (dict): Parsed arguments (`parse_yolo_args`), with `task` and `mode` when given.
        method (str): The `YOLO` method to call: "train" or "tune".
        **extra (Any): Further arguments (`trainer=`, `space=`).

    Returns:
        (Any): What the method returns.
    """
    from ultralytics import YOLO

    kwargs = _handle_deprecation({"mode": "train", **overrides})  # as entrypoint's key check (1107 -> 670): half=True
    # becomes quantize=16
    task = kwargs.pop("task", None)
    if task and "model" not in kwargs:
        kwargs["model"] = TASK2MODEL[task]
    resume = kwargs.get("resume")
    name = kwargs.pop("model", None) or (str(resume) if isinstance(resume, (str, Path)) else DEFAULT_CFG.model)
    if name is None:
        name = "yolo26n.pt"
        LOGGER.warning(f"'model' argument is missing. Using default 'model={name}'.")
    kwargs["model"] = name
    model = YOLO(name, task=task)
    if task and task != model.task:
        LOGGER.warning(f"conflicting 'task={task}' passed with 'task={model.task}' model. "
                       f"Ignoring 'task={task}' and updating to 'task={model.task}' to match model.")  # fmt: skip
    if kwargs.get("data") is None and not kwargs.get("resume"):
        kwargs["data"] = DEFAULT_CFG.data or TASK2DATA.get(model.task or DEFAULT_CFG.task, DEFAULT_CFG.data)
        LOGGER.warning(f"'data' argument is missing. Using default 'data={kwargs['data']}'.")
    if method != "train":
        kwargs.pop("mode")  # `Model.tune` sets mode=train itself
    return getattr(model, method)(**kwargs, **extra)


# ------------------------------------------------------------------------------------------------------ `model.tune`


def stock_tune(model, use_ray: bool = False, iterations: int = 300, *args: Any, **kwargs: Any):
    """Ultralytics' own `Model.tune` (ultralytics/engine/model.py, lines 915-967), whether or not `route_tune` ran."""
    from ultralytics.engine.model import Model

    return getattr(Model.tune, "__wrapped__", Model.tune)(model, use_ray, iterations, *args, **kwargs)


def route_tune(wants: Callable[[Any, dict], bool], handler: Callable) -> bool:
    """Replace `Model.tune` by a wrapper that sends the calls `wants(model, kwargs)` accepts to `handler` (same
    signature as `Model.tune`) and every other call to Ultralytics' method, unchanged. Installed once; not at all when
    `ULTRALYTICS_FSS_HOOK=0`.

    Returns:
        (bool): Whether `Model.tune` is routed now.
    """
    from ultralytics.engine.model import Model

    if getattr(Model.tune, "__wrapped__", None) is not None:
        return True
    if os.environ.get("ULTRALYTICS_FSS_HOOK", "1") == "0":
        return False
    stock = Model.tune

    @functools.wraps(stock)
    def tune(self, use_ray=False, iterations=300, *args, **kwargs):
        if wants(self, kwargs):
            return handler(self, use_ray, iterations, *args, **kwargs)
        return stock(self, use_ray, iterations, *args, **kwargs)

    Model.tune = tune  # functools.wraps sets tune.__wrapped__ = stock
    return True


@contextmanager
def tuner_command(command: list[str]) -> Iterator[None]:
    """Inside the block, Ultralytics' `MultiTrainer` (which the Tuner runs for each iteration) trains with `command`
    in place of `yolo` (`_YOLO_CLI_COMMAND` of ultralytics/engine/trainer.py, read by `MultiTrainer.train` at line
    1352); restored after the block, even on errors."""
    import ultralytics.engine.trainer as engine_trainer

    stock = engine_trainer._YOLO_CLI_COMMAND
    engine_trainer._YOLO_CLI_COMMAND = command
    try:
        yield
    finally:
        engine_trainer._YOLO_CLI_COMMAND = stock
