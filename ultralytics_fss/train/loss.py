"""FSS loss, Eq. (9), on Ultralytics detection heads: the `FSSAssigner` result turned into weighted loss terms.

With w_i the Eq. (8) weight of positive i, t_i its soft classification target and D the normaliser:

    cls = (sum_pos w_i * BCE(p_i, t_i) + sum_neg BCE(p_i, 0)) / D      (BCE summed over classes)
    box = sum_pos v_i * (1 - CIoU_i) / D,   dfl (or l1) = sum_pos v_i * DFL_i / D

The paper's Eq. (9) is t_i = IoU_i (`fss_target=iou`), v_i = w_i (`fss_box=w`) and D = the number of positives
(`fss_norm=npos`). Eq. (9) leaves the loss scale to the host detector, and Ultralytics' gains (`box` 7.5, `cls` 0.5,
`dfl` 1.5) are tuned for TaskAlignedAssigner's: its targets are s / max s * max IoU per GT, its box terms weighted by
the target and everything divided by the sum of targets. The defaults put FSS's assignment on that scale:
t_i = s_i / max s * max IoU over the GT's positives (`fss_target=tal`), v_i = w_i * t_i (`fss_box=w_target`) and
D = sum_pos w_i * t_i (`fss_norm=target`); this measured best under Ultralytics' default recipe (README "Accuracy").
Ultralytics' gains and `class_weights` apply unchanged.

The same weighting applies to every dense task: `FSSOBBLoss` (oriented boxes: probiou box term, DFL and angle term
weighted like the box term), `FSSSegmentationLoss`/`FSSSegmentLoss26` and `FSSPoseLoss`/`FSSPoseLoss26` (Ultralytics'
mask and keypoint terms, unchanged, on FSS's positives). `TAL*Loss` are Ultralytics' own losses with their positives
recorded, for comparison runs. Every loss owns its `AssignmentStats` (`ultralytics_fss.train.stats`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch
from ultralytics.nn.modules.head import Detect, Pose26, Segment26, v10Detect
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, guess_model_task
from ultralytics.utils import LOGGER
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

from ultralytics_fss.assign import FSSAssigner, RotatedFSSAssigner
from ultralytics_fss.assign.baselines import BASELINES
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.stats import AssignmentStats, RecordingAssigner

QFL_BETA = 2.0  # GFL's Quality Focal Loss exponent (the paper's beta = 2)


@functools.lru_cache(maxsize=None)
def _warn_box_overlap(loss_name: str) -> None:
    """Warn once per loss class that `fss_overlap=task` has no task overlap to use there."""
    LOGGER.warning(f"fss_overlap=task applies to YOLO26 segment and pose models; {loss_name} scores box IoU in Eq. (3)")


class LossInputs(NamedTuple):
    """What Ultralytics' detection loss derives from a batch before it assigns (see `FSSDetectionLoss.inputs`).

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


class FSSDetectionLoss(v8DetectionLoss):
    """Ultralytics' detection loss with `FSSAssigner` and the Eq. (9) weighting.

    Reads `fss_*` hyperparameters from `model.args`. Accepts `tal_topk`/`tal_topk2` because Ultralytics' `E2ELoss`
    passes them: `tal_topk2 == 1` marks the one-to-one branch of end-to-end heads, which uses FSS with k = 1
    (`fss_o2o=fss`) or Ultralytics' own one-to-one assignment (`fss_o2o=tal`).

    Segmentation and pose losses put this class first in their bases (`FSSSegmentationLoss`, `FSSPoseLoss`, ...):
    Ultralytics' mask and keypoint terms read the positives from `get_assigned_targets_and_loss`, so overriding it
    is all they need. Oriented boxes override `inputs` and `loss` (`FSSOBBLoss`).
    """

    assigner_class: type = FSSAssigner  # the rotated loss uses RotatedFSSAssigner
    auto_task_overlap: bool = False  # fss_overlap=auto takes the task's overlap (True for YOLO26 pose: measured)
    installs_assigner_in_init: bool = True  # False where a stock __init__ still reads the stock assigner after ours

    def __init__(self, model: DetectionModel, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss, then swap in the FSS assigner."""
        super().__init__(model, tal_topk, tal_topk2)
        args = self.hyp if isinstance(self.hyp, dict) else vars(self.hyp)
        self.fss = check_fss_args(args)
        self.stats = AssignmentStats()  # updated every batch; the callbacks reset and publish it per epoch
        self.one2one = tal_topk2 == 1
        self.use_fss = not (self.one2one and self.fss["fss_o2o"] == "tal")
        self.stock_assigner = self.assigner  # Ultralytics' (its pair_overlaps scores masks / OKS for YOLO26 tasks)
        if self.use_fss and self.installs_assigner_in_init:
            self.assigner = self.fss_assigner()
        if self.fss["fss_overlap"] == "task" and type(self).task_overlap is FSSDetectionLoss.task_overlap:
            _warn_box_overlap(type(self).__name__)

    def fss_assigner(self):
        """The assigner of this branch: FSS (`assigner_class`, k = 1 on one-to-one branches) or a paper baseline."""
        if self.fss["fss_assigner"] in BASELINES and not self.one2one:  # the paper's baselines
            if self.assigner_class is not FSSAssigner:
                raise ValueError(f"fss_assigner={self.fss['fss_assigner']} assigns axis-aligned boxes (detect, "
                                 f"segment, pose); use fss_assigner=fss or tal for oriented boxes")  # fmt: skip
            return BASELINES[self.fss["fss_assigner"]](
                num_classes=self.nc,
                alpha=self.fss["fss_alpha"],
                beta=self.fss["fss_beta"],
                stride=self.stride.tolist(),
                soft_target=self.fss["fss_target"],  # TAL-scaled targets score the baseline's positives by FSS's s
            )
        return self.assigner_class(
            num_classes=self.nc,
            alpha=self.fss["fss_alpha"],
            beta=self.fss["fss_beta"],
            u=self.fss["fss_u"],
            q=self.fss["fss_q"],
            stride=self.stride.tolist(),
            prior=self.fss["fss_prior"],
            fixed_k=1 if self.one2one else None,
            rescue=self.fss["fss_rescue"],
            radius=self.fss["fss_radius"],
            soft_target=self.fss["fss_target"],
        )

    def inputs(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
        """Decode predictions and pad targets exactly as the stock loss does before it calls its assigner.

        Copied from Ultralytics 8.4.190 `v8DetectionLoss.get_assigned_targets_and_loss` (ultralytics/utils/loss.py,
        lines 433-450); `tests/test_loss.py::test_assigner_inputs_match_stock` fails if the stock method starts
        handing its assigner anything else.
        """
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, N, 4 * reg_max)
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (b, N, C) logits
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)  # (N, 2), (N, 1)
        dtype, batch_size = pred_scores.dtype, pred_scores.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # (b, M, 1), (b, M, 4) xyxy pixels
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)  # (b, M, 1)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # (b, N, 4) xyxy, grid units
        return LossInputs(pred_distri, pred_scores, pred_bboxes, anchor_points, stride_tensor, imgsz, gt_labels,
                          gt_bboxes, mask_gt)  # fmt: skip

    def task_overlap(self, x: LossInputs, **extra: torch.Tensor):
        """The overlap of Eq. (3) other than box IoU (`fss_overlap=task`), as a function of the candidate pairs'
        indices; None: box IoU. Overridden by the YOLO26 segment and pose losses, whose stock assigners score masks
        and keypoints; `extra` holds what those losses hand their assigner."""
        return None

    def wants_task_overlap(self, extra: dict) -> bool:
        """Whether Eq. (3) takes the task's overlap: `fss_overlap=task` (or `auto` where `auto_task_overlap`), FSS
        (not a baseline) and the stock loss handed its assigner the inputs of that overlap."""
        mode = self.fss["fss_overlap"]
        wanted = mode == "task" or (mode == "auto" and self.auto_task_overlap)
        return wanted and self.fss["fss_assigner"] == "fss" and bool(extra)

    def fss_assign(self, x: LossInputs, preds: dict[str, torch.Tensor], overlap=None) -> tuple:
        """Run the assigner on detached predictions with boxes in pixels, listing step 1 from the feature-map grid;
        `overlap` replaces the box IoU of Eq. (3) (see `task_overlap`).

        Returns:
            result (FSSAssignResult): Per-anchor targets and Eq. (8) weights.
            k (torch.Tensor): (b, M) number of suboptimal samples per GT.
        """
        pd_boxes = x.pred_bboxes.detach()
        pd_boxes = torch.cat([pd_boxes[..., :4] * x.stride_tensor, pd_boxes[..., 4:]], -1)  # pixels; angle as is
        return self.assigner.assign(
            x.pred_scores.detach().sigmoid(),
            pd_boxes.type(x.gt_bboxes.dtype),
            x.anchor_points * x.stride_tensor,
            x.gt_labels,
            x.gt_bboxes,
            x.mask_gt,
            grid=[tuple(f.shape[2:]) for f in preds["feats"]],  # step 1 in O(P), without the dense mask
            **({} if overlap is None else {"overlap": overlap}),
        )

    def fss_weighting(self, result) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. (9)'s per-positive weights and normaliser, as the `fss_*` keys choose them.

        Returns:
            weights (torch.Tensor): (b, N) w_i of the classification term (1 with fss_weights=False), 0 for background.
            box_weights (torch.Tensor): (b, N) v_i of the box, DFL and angle terms: w_i, or w_i * t_i.
            norm (torch.Tensor): () D: the sum of w_i * t_i, or the number of positives; at least 1.
        """
        fg_mask = result.fg_mask  # (b, N)
        weights = result.weights if self.fss["fss_weights"] else fg_mask.float()
        target = result.scores.sum(-1)  # (b, N) soft target t_i of each positive, 0 for background
        box_weights = weights * target if self.fss["fss_box"] == "w_target" else weights
        if self.fss["fss_norm"] == "target":
            norm = (weights * target).sum()
        else:
            norm = fg_mask.sum().to(weights.dtype)
        return weights, box_weights, norm.clamp(min=1)  # on the device: no host sync

    def fss_cls_loss(self, pred_scores: torch.Tensor, result, weights: torch.Tensor, norm: torch.Tensor):
        """Classification term of Eq. (9): w_i * BCE towards the soft target for positives, BCE towards 0 for
        background, 0 for ignored anchors (labels < 0), divided by `norm`; Ultralytics' `class_weights` apply.

        With `fss_cls=qfl` each BCE element is GFL's Quality Focal Loss (Li et al., NeurIPS 2020, Eq. 5):
        QFL(sigma) = |y - sigma|^beta * BCE(sigma, y), beta = 2, for every class of every anchor (y = 0 off target).
        """
        target = result.scores.to(pred_scores.dtype)  # (b, N, C)
        bce = self.bce(pred_scores, target)  # (b, N, C)
        if self.fss["fss_cls"] == "qfl":
            bce = bce * (target - pred_scores.sigmoid()).abs().pow(QFL_BETA)
        if self.class_weights is not None:
            bce = bce * self.class_weights
        cls_weights = torch.where(result.fg_mask, weights, (result.labels >= 0).to(weights.dtype))
        return (bce.sum(-1) * cls_weights).sum() / norm

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **kwargs) -> tuple:
        """Eq. (9). Overridden because the stock method weights by TAL's target scores; FSS carries `weights`.

        Returns:
            (tuple): Same layout as the stock method: (fg_mask, gt_idx, target_bboxes, anchor_points,
                stride_tensor), the gain-scaled (box, cls, dfl) loss, and a dict of detached loss items.
        """
        if not self.use_fss:
            self.positive_weights = None
            return super().get_assigned_targets_and_loss(preds, batch, **kwargs)
        x = self.inputs(preds, batch)
        result, k = self.fss_assign(x, preds, self.task_overlap(x, **kwargs))
        weights, box_weights, norm = self.fss_weighting(result)
        self.positive_weights = weights  # (b, N) for the mask / keypoint terms of segment and pose (fss_task_weights)
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        loss[1] = self.fss_cls_loss(x.pred_scores, result, weights, norm)
        # BboxLoss weights each positive by its `target_scores` summed over classes: pass v_i in that slot.
        loss[0], loss[2] = self.bbox_loss(
            x.pred_distri,
            x.pred_bboxes,
            x.anchor_points,
            result.bboxes / x.stride_tensor,
            box_weights.unsqueeze(-1),
            norm,
            result.fg_mask,
            x.imgsz,
            x.stride_tensor,
        )
        self.stats.update(result.fg_mask, result.gt_idx, x.mask_gt, k=k, weights=weights, scores=result.scores)
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        return (
            (result.fg_mask, result.gt_idx, result.bboxes, x.anchor_points, x.stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )


class FSSOBBLoss(FSSDetectionLoss, v8OBBLoss):
    """Ultralytics' oriented-box loss with `RotatedFSSAssigner` and the Eq. (9) weighting on every term: cls (soft
    target), probiou box term, DFL and angle (each positive weighted by v_i, divided by D, as for detection)."""

    assigner_class = RotatedFSSAssigner

    def inputs(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
        """Decode predictions and pad targets as the stock oriented loss does before it calls its assigner.

        Copied from Ultralytics 8.4.190 `v8OBBLoss.loss` (ultralytics/utils/loss.py, lines 1072-1107, without its
        error message); `tests/test_loss.py::test_obb_assigner_inputs_match_stock` fails if the stock loss starts
        handing its assigner anything else.
        """
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, N, 4 * reg_max)
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (b, N, C) logits
        pred_angle = preds["angle"].permute(0, 2, 1).contiguous()  # (b, N, 1)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=pred_scores.dtype) * self.stride[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"].view(-1, 5)), 1)
        rw, rh = targets[:, 4] * float(imgsz[1]), targets[:, 5] * float(imgsz[0])
        targets = targets[(rw >= 2) & (rh >= 2)]  # Ultralytics drops rotated boxes under 2 px to stabilise training
        targets = self.preprocess(targets.to(self.device), pred_scores.shape[0], scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 5), 2)  # (b, M, 1), (b, M, 5) xywhr pixels
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri, pred_angle)  # (b, N, 5) xywhr, grid units
        return LossInputs(pred_distri, pred_scores, pred_bboxes, anchor_points, stride_tensor, imgsz, gt_labels,
                          gt_bboxes, mask_gt, pred_angle)  # fmt: skip

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple:
        """Eq. (9) for oriented boxes; the stock loss when this branch does not use FSS (`fss_o2o=tal`).

        Returns:
            (tuple): (box, cls, dfl, angle) losses times the batch size, and their detached values by name.
        """
        if not self.use_fss:
            return super().loss(preds, batch)
        x = self.inputs(preds, batch)
        result, k = self.fss_assign(x, preds)
        weights, box_weights, norm = self.fss_weighting(result)
        loss = torch.zeros(4, device=self.device)  # box, cls, dfl, angle
        loss[1] = self.fss_cls_loss(x.pred_scores, result, weights, norm)
        target_bboxes = torch.cat([result.bboxes[..., :4] / x.stride_tensor, result.bboxes[..., 4:]], -1)
        fg_mask = result.fg_mask
        loss[0], loss[2] = self.bbox_loss(
            x.pred_distri,
            x.pred_bboxes,
            x.anchor_points,
            target_bboxes,
            box_weights.unsqueeze(-1),
            norm,
            fg_mask,
            x.imgsz,
            x.stride_tensor,
        )
        loss[3] = self.calculate_angle_loss(x.pred_bboxes, target_bboxes, fg_mask, box_weights[fg_mask], norm)
        loss[0] += (x.pred_angle * 0).sum()  # keeps the angle branch in the graph without positives (DDP)
        self.stats.update(fg_mask, result.gt_idx, x.mask_gt, k=k, weights=weights, scores=result.scores)
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        loss[3] *= self.hyp.angle
        return loss * x.pred_scores.shape[0], dict(zip(self.loss_names, loss.detach()))


class MaskWeights:
    """Mixin for FSS segmentation losses: with `fss_task_weights=True` each positive's mask term is weighted by its
    Eq. (8) weight too (the paper weights cls and box only; README "Segmentation and pose")."""

    def calculate_segmentation_loss(self, fg_mask, masks, target_gt_idx, target_bboxes, batch_idx, proto, pred_masks,
                                    imgsz):  # fmt: skip
        """Ultralytics' mask loss; weighted per positive when `fss_task_weights` is on.

        Copied from Ultralytics 8.4.190 `v8SegmentationLoss.calculate_segmentation_loss` (ultralytics/utils/loss.py,
        lines 647-677) with one change: each positive's area is divided by its weight, and `single_mask_loss` divides
        by the area, so its term is multiplied by w_i. `tests/test_tasks.py::test_weighted_task_losses_match_stock`
        checks that with all weights 1 it equals the stock method.
        """
        w = getattr(self, "positive_weights", None)
        if not self.fss["fss_task_weights"] or w is None:
            return super().calculate_segmentation_loss(fg_mask, masks, target_gt_idx, target_bboxes, batch_idx, proto,
                                                       pred_masks, imgsz)  # fmt: skip
        _, _, mask_h, mask_w = proto.shape
        loss = 0
        target_bboxes_normalized = target_bboxes / imgsz[[1, 0, 1, 0]]
        marea = xyxy2xywh(target_bboxes_normalized)[..., 2:].prod(2) / w.clamp(min=1e-6)  # area / w_i
        mxyxy = target_bboxes_normalized * torch.tensor([mask_w, mask_h, mask_w, mask_h], device=proto.device)
        for i, single_i in enumerate(zip(fg_mask, target_gt_idx, pred_masks, proto, mxyxy, marea)):
            fg_mask_i, target_gt_idx_i, pred_masks_i, proto_i, mxyxy_i, marea_i = single_i
            if fg_mask_i.any():
                mask_idx = target_gt_idx_i[fg_mask_i]
                if self.overlap:
                    gt_mask = (masks[i] == (mask_idx + 1).view(-1, 1, 1)).float()
                else:
                    gt_mask = masks[batch_idx.view(-1) == i][mask_idx]
                loss += self.single_mask_loss(
                    gt_mask, pred_masks_i[fg_mask_i], proto_i, mxyxy_i[fg_mask_i], marea_i[fg_mask_i]
                )
            else:  # keeps the mask branch in the graph (DDP), as the stock loss does
                loss += (proto * 0).sum() + (pred_masks * 0).sum()
        return loss / fg_mask.sum()


class WeightedKeypointLoss(KeypointLoss):
    """Ultralytics' OKS keypoint loss with an optional weight per object row (`weights`, set by the loss per batch)."""

    weights: torch.Tensor | None = None

    def forward(self, pred_kpts, gt_kpts, kpt_mask, area):
        """Copied from Ultralytics 8.4.190 `KeypointLoss.forward` (ultralytics/utils/loss.py, lines 348-352), each
        row's term times its weight; the stock forward when `weights` is None (tested equal with weights 1)."""
        if self.weights is None:
            return super().forward(pred_kpts, gt_kpts, kpt_mask, area)
        d = (pred_kpts[..., 0] - gt_kpts[..., 0]).pow(2) + (pred_kpts[..., 1] - gt_kpts[..., 1]).pow(2)
        kpt_loss_factor = kpt_mask.shape[1] / (torch.sum(kpt_mask != 0, dim=1) + 1e-9)
        e = d / ((2 * self.sigmas).pow(2) * (area + 1e-9) * 2)
        return (kpt_loss_factor.view(-1, 1) * ((1 - torch.exp(-e)) * kpt_mask) * self.weights.view(-1, 1)).mean()


class KeypointWeights:
    """Mixin for FSS pose losses: with `fss_task_weights=True` each positive's keypoint (OKS) term is weighted by its
    Eq. (8) weight too; keypoint visibility and RLE terms stay as Ultralytics computes them."""

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the loss, then swap in the weighted keypoint loss (same sigmas)."""
        super().__init__(model, tal_topk, tal_topk2)
        self.keypoint_loss = WeightedKeypointLoss(self.keypoint_loss.sigmas)

    def calculate_keypoints_loss(self, masks, target_gt_idx, keypoints, stride_tensor, target_bboxes, pred_kpts):
        """Hand the positives' weights (in the row order of `pred_kpts[masks]`) to the keypoint loss, then run
        Ultralytics' method."""
        w = getattr(self, "positive_weights", None)
        self.keypoint_loss.weights = w[masks] if self.fss["fss_task_weights"] and w is not None else None
        return super().calculate_keypoints_loss(masks, target_gt_idx, keypoints, stride_tensor, target_bboxes,
                                                pred_kpts)  # fmt: skip


class FSSSegmentationLoss(MaskWeights, FSSDetectionLoss, v8SegmentationLoss):
    """Ultralytics' YOLOv8/11 segmentation loss on FSS's positives (box IoU in Eq. (3)); mask terms as Ultralytics',
    or weighted by Eq. (8) (`fss_task_weights`)."""


class FSSSegmentLoss26(MaskWeights, SegmentLoss26, FSSDetectionLoss):
    """Ultralytics' YOLO26 segmentation loss on FSS's positives. Eq. (3) scores box IoU, or with `fss_overlap=task`
    Ultralytics' own mask-aware overlap ((CIoU + predicted-mask IoU) / 2, `SegTaskAlignedAssigner.pair_overlaps`).

    `SegmentLoss26` comes first so that its `get_assigned_targets_and_loss` prepares the masks and hands them on to
    FSS's; its `__init__` runs after FSS's and builds its `SegTaskAlignedAssigner` from the stock assigner's settings
    (Ultralytics 8.4.190 ultralytics/utils/loss.py lines 686-687), so the FSS assigner is installed after it.
    """

    installs_assigner_in_init = False  # SegmentLoss26.__init__ reads topk, alpha, ... of the stock assigner

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock YOLO26 loss (FSS's `__init__` runs inside it), then install the FSS assigner."""
        super().__init__(model, tal_topk, tal_topk2)
        self.stock_assigner = self.assigner  # Ultralytics' SegTaskAlignedAssigner (fss_o2o=tal, fss_overlap=task)
        if self.use_fss:
            # Its pair_overlaps scores mask IoU only on each GT's 3 * topk best pairs by p^alpha * IoU^beta: FSS's
            # q, alpha and beta rank them, as for the pairs FSS selects from.
            self.stock_assigner = SegTaskAlignedAssigner(topk=self.fss["fss_q"], num_classes=self.nc,
                                                         alpha=self.fss["fss_alpha"], beta=self.fss["fss_beta"],
                                                         stride=self.stride.tolist())  # fmt: skip
            self.assigner = self.fss_assigner()

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **kwargs) -> tuple:
        """FSS's Eq. (9); through `SegmentLoss26`'s mask preparation only when Eq. (3) needs the masks
        (`fss_overlap=task`) or this branch uses Ultralytics' assigner."""
        if self.use_fss and not self.wants_task_overlap({"masks": True}):
            return FSSDetectionLoss.get_assigned_targets_and_loss(self, preds, batch)
        return super().get_assigned_targets_and_loss(preds, batch, **kwargs)

    def task_overlap(self, x: LossInputs, **extra: torch.Tensor):
        """`SegTaskAlignedAssigner.pair_overlaps` on FSS's candidate pairs (`fss_overlap=task`), else None."""
        if not self.wants_task_overlap(extra):
            return None
        stock, (b, m) = self.stock_assigner, x.gt_bboxes.shape[:2]
        stock.bs, stock.n_max_boxes = b, m  # set by its forward in Ultralytics; read by pair_overlaps
        scores = x.pred_scores.detach().sigmoid()
        boxes = x.pred_bboxes.detach() * x.stride_tensor
        return lambda bi, gi, ai: stock.pair_overlaps((bi, gi, ai), x.gt_bboxes, boxes, scores, x.gt_labels, **extra)


class FSSPoseLoss(KeypointWeights, FSSDetectionLoss, v8PoseLoss):
    """Ultralytics' YOLOv8/11 pose loss on FSS's positives (box IoU in Eq. (3)); keypoint terms as Ultralytics', or
    weighted by Eq. (8) (`fss_task_weights`)."""


class FSSPoseLoss26(KeypointWeights, FSSDetectionLoss, PoseLoss26):
    """Ultralytics' YOLO26 pose loss on FSS's positives. Eq. (3) scores Ultralytics' own keypoint OKS
    (`PoseTaskAlignedAssigner.pair_overlaps`; box CIoU for GTs without visible keypoints) with `fss_overlap=auto`
    (the default) or `task`, box IoU with `fss_overlap=box`."""

    auto_task_overlap = True  # OKS measured better than box IoU in Eq. (3) under Ultralytics' default recipe

    def task_overlap(self, x: LossInputs, **extra: torch.Tensor):
        """`PoseTaskAlignedAssigner.pair_overlaps` (OKS) on FSS's candidate pairs (`fss_overlap=task`), else None."""
        if not self.wants_task_overlap(extra):
            return None
        boxes = x.pred_bboxes.detach() * x.stride_tensor
        pd_kpts, gt_kpts = extra["pd_kpts"], extra["gt_kpts"]
        return lambda bi, gi, ai: self.stock_assigner.pair_overlaps((bi, gi, ai), x.gt_bboxes, boxes, pd_kpts, gt_kpts)


class RecordingLoss:
    """Mixin for a stock Ultralytics loss: its assignment unchanged, its positives recorded in `stats`."""

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss, then wrap its assigner in a `RecordingAssigner`."""
        super().__init__(model, tal_topk, tal_topk2)
        self.stats = AssignmentStats()
        self.assigner = RecordingAssigner(self.assigner, self.stats)


class TALDetectionLoss(RecordingLoss, v8DetectionLoss):
    """Ultralytics' own detection loss, unchanged, with its positives recorded in `stats` (comparison runs)."""


class TALOBBLoss(RecordingLoss, v8OBBLoss):
    """Ultralytics' own oriented-box loss, positives recorded."""


class TALSegmentationLoss(RecordingLoss, v8SegmentationLoss):
    """Ultralytics' own YOLOv8/11 segmentation loss, positives recorded."""


class TALSegmentLoss26(RecordingLoss, SegmentLoss26):
    """Ultralytics' own YOLO26 segmentation loss, positives recorded."""


class TALPoseLoss(RecordingLoss, v8PoseLoss):
    """Ultralytics' own YOLOv8/11 pose loss, positives recorded."""


class TALPoseLoss26(RecordingLoss, PoseLoss26):
    """Ultralytics' own YOLO26 pose loss, positives recorded."""


# Ultralytics' loss of each dense task -> (its FSS version, its recording version)
LOSSES: dict[type, tuple[type, type]] = {
    v8DetectionLoss: (FSSDetectionLoss, TALDetectionLoss),
    v8OBBLoss: (FSSOBBLoss, TALOBBLoss),
    v8SegmentationLoss: (FSSSegmentationLoss, TALSegmentationLoss),
    SegmentLoss26: (FSSSegmentLoss26, TALSegmentLoss26),
    v8PoseLoss: (FSSPoseLoss, TALPoseLoss),
    PoseLoss26: (FSSPoseLoss26, TALPoseLoss26),
}


def stock_loss_class(model) -> type:
    """Return the loss class Ultralytics' `model.init_criterion` uses (for E2E heads: inside its `E2ELoss`).

    Mirrors the `init_criterion` methods of DetectionModel, OBBModel, SegmentationModel and PoseModel (Ultralytics
    8.4.190 ultralytics/nn/tasks.py lines 651-653, 683-685, 715-718, 830-833); `tests/test_tasks.py` checks it
    against `init_criterion` for every family.

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


def build_criterion(model, loss_fn: type | None = None, stock: bool = False):
    """Return the FSS (or, with `stock`, the recording stock) version of `model`'s own loss as its criterion,
    wrapped in `E2ELoss` for end-to-end heads (YOLO26, YOLOv10) as `init_criterion` does.

    Args:
        model (DetectionModel): A detect, OBB, segment or pose model.
        loss_fn (type, optional): A loss class to use instead (a user's subclass).
        stock (bool): Ultralytics' assignment with its positives recorded, instead of FSS.

    Raises:
        NotImplementedError: For models of other tasks (see `stock_loss_class`).
    """
    loss_fn = loss_fn or LOSSES[stock_loss_class(model)][int(stock)]
    if getattr(model.model[-1], "one2one_cv2", None) is not None:  # end-to-end heads (YOLO26, YOLOv10)
        return E2ELoss(model, loss_fn)
    return loss_fn(model)


def build_fss_criterion(model):
    """Return the FSS criterion for `model` (see `build_criterion`); with `fss_assigner=tal` in its args, Ultralytics'
    own (`build_tal_criterion`), so that such a run equals a stock run seed for seed."""
    args = getattr(model, "args", None) or {}
    if check_fss_args(args if isinstance(args, dict) else vars(args))["fss_assigner"] == "tal":
        return build_tal_criterion(model)
    return build_criterion(model)


def build_tal_criterion(model):
    """Return Ultralytics' own criterion for `model`, recording its assignment statistics (see `build_criterion`)."""
    return build_criterion(model, stock=True)
