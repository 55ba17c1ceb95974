"""The seam's pieces that follow ultralytics/utils/loss.py (and utils/tal.py): what the stock losses derive before
they assign, their task terms, the end-to-end wrapper and its schedule, the oriented-box loss's angle tail.

Each piece names its upstream lines (Ultralytics 8.4.190); tests/test_seam.py checks each against the stock code on
real inputs.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from ultralytics.utils import DEFAULT_CFG_DICT, IterableSimpleNamespace
from ultralytics.utils.loss import (
    E2ELoss,
    KeypointLoss,
    SegmentLoss26,
    v8DetectionLoss,
    v8OBBLoss,
    v8SegmentationLoss,
)
from ultralytics.utils.ops import xyxy2xywh
from ultralytics.utils.tal import SegTaskAlignedAssigner, make_anchors

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
    return LossInputs(
        pred_distri, pred_scores, pred_bboxes, anchor_points, stride_tensor, imgsz, gt_labels, gt_bboxes, mask_gt
    )


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
    return LossInputs(
        pred_distri,
        pred_scores,
        pred_bboxes,
        anchor_points,
        stride_tensor,
        imgsz,
        gt_labels,
        gt_bboxes,
        mask_gt,
        pred_angle,
    )


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


def weighted_segmentation_loss(
    loss: v8SegmentationLoss,
    weights: torch.Tensor,
    fg_mask,
    masks,
    target_gt_idx,
    target_bboxes,
    batch_idx,
    proto,
    pred_masks,
    imgsz,
) -> torch.Tensor:
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


def loss_args(args: dict[str, Any]) -> IterableSimpleNamespace:
    """`model.args` for losses built outside training, from a model's args (or none) and `fss_*` values: Ultralytics'
    defaults under `args`, as a namespace (`v8SegmentationLoss.__init__` reads `model.args.overlap_mask` as an
    attribute, ultralytics/utils/loss.py line 524), with `overlap_mask=False` to match `one_image_batch`'s masks."""
    return IterableSimpleNamespace(**{**DEFAULT_CFG_DICT, **args, "overlap_mask": False})



def keep_e2e_schedule(criterion: Any, previous: Any) -> None:
    """Carry the branch-weight schedule of an `E2ELoss` over to one built in its place (`criterion`): the state its
    `update` advances, `updates`, `o2m` and `o2o` (utils/loss.py `E2ELoss.__init__` and `update`, lines 1326-1330 and
    1343-1347); nothing when `previous` is not an end-to-end criterion. Ultralytics rebuilds the criterion on resume;
    FSS installs its own after that, and must not restart the decay."""
    if isinstance(previous, E2ELoss) and isinstance(criterion, E2ELoss):
        criterion.updates, criterion.o2m, criterion.o2o = previous.updates, previous.o2m, previous.o2o


def o2m_weight(criterion: Any) -> float | None:
    """The weight of the one-to-many branch of an end-to-end criterion for the epoch about to train (`E2ELoss.o2m`,
    decayed from 0.8 to 0.1 over training by `update`, utils/loss.py lines 1343-1351; the one-to-one branch weighs
    1 - that); None for other criteria."""
    return float(criterion.o2m) if isinstance(criterion, E2ELoss) else None


def training_preds(output: Any) -> dict[str, Any]:
    """The training-format predictions of the branch FSS drives, from a model's forward output: in eval mode the
    model returns (inference, training dict), in train mode the dict; an end-to-end head's dict holds each branch
    under `one2many` / `one2one` (`E2ELoss.__call__`, utils/loss.py lines 1337-1338), FSS drives `one2many`."""
    preds = output[1] if isinstance(output, tuple) else output
    return preds.get("one2many", preds)


def obb_angle_term(
    loss: v8OBBLoss,
    x: LossInputs,
    target_bboxes: torch.Tensor,
    fg_mask: torch.Tensor,
    weights: torch.Tensor,
    norm: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tail of `v8OBBLoss.loss` (utils/loss.py, lines 1141-1146) with FSS's weights: the angle term, and the zero
    that keeps the angle and distribution outputs in the graph when a batch has no positive (DDP needs every output
    to have a gradient).

    Args:
        loss (v8OBBLoss): The loss (its `calculate_angle_loss`).
        x (LossInputs): The batch's inputs (`obb_inputs`).
        target_bboxes (torch.Tensor): (b, N, 5) assigned boxes, grid units (angle as is).
        fg_mask (torch.Tensor): (b, N) positives.
        weights (torch.Tensor): (P,) weight of each positive (the stock loss: its target score sum).
        norm (torch.Tensor): () the normaliser of the box term.

    Returns:
        angle (torch.Tensor): () the angle term, before the `angle` gain.
        keeper (torch.Tensor): () zero, with the angle and distribution outputs in its graph; add it to the box term.
    """
    angle = loss.calculate_angle_loss(x.pred_bboxes, target_bboxes, fg_mask, weights, norm)
    return angle, (x.pred_angle * 0).sum() + x.pred_distri[..., :0].sum()
