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

`TALDetectionLoss` is Ultralytics' own loss with its positives recorded, for comparison runs. Both losses own their
`AssignmentStats` (`ultralytics_fss.train.stats`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from ultralytics.nn.modules.head import Detect, v10Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss
from ultralytics.utils.tal import make_anchors

from ultralytics_fss.assign import FSSAssigner
from ultralytics_fss.assign.baselines import BASELINES
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.stats import AssignmentStats, RecordingAssigner


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

class FSSDetectionLoss(v8DetectionLoss):
    """Ultralytics' detection loss with `FSSAssigner` and the Eq. (9) weighting.

    Reads `fss_*` hyperparameters from `model.args`. Accepts `tal_topk`/`tal_topk2` because Ultralytics' `E2ELoss`
    passes them: `tal_topk2 == 1` marks the one-to-one branch of end-to-end heads, which uses FSS with k = 1
    (`fss_o2o=fss`) or Ultralytics' own one-to-one assignment (`fss_o2o=tal`).
    """

    def __init__(self, model: DetectionModel, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss, then swap in the FSS assigner."""
        super().__init__(model, tal_topk, tal_topk2)
        args = self.hyp if isinstance(self.hyp, dict) else vars(self.hyp)
        self.fss = check_fss_args(args)
        self.stats = AssignmentStats()  # updated every batch; the callbacks reset and publish it per epoch
        one2one = tal_topk2 == 1
        self.use_fss = not (one2one and self.fss["fss_o2o"] == "tal")
        if self.use_fss and self.fss["fss_assigner"] in BASELINES and not one2one:  # the paper's baselines
            self.assigner = BASELINES[self.fss["fss_assigner"]](num_classes=self.nc, stride=self.stride.tolist())
        elif self.use_fss:
            self.assigner = FSSAssigner(
                num_classes=self.nc,
                alpha=self.fss["fss_alpha"],
                beta=self.fss["fss_beta"],
                u=self.fss["fss_u"],
                q=self.fss["fss_q"],
                stride=self.stride.tolist(),
                prior=self.fss["fss_prior"],
                fixed_k=1 if one2one else None,
                rescue=self.fss["fss_rescue"],
                radius=self.fss["fss_radius"],
                soft_target=self.fss["fss_target"],
            )

    def inputs(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
        """Decode predictions and pad targets exactly as the stock loss does before it calls its assigner.

        Copied from Ultralytics 8.4.190 `v8DetectionLoss.get_assigned_targets_and_loss` (ultralytics/utils/loss.py,
        lines 433-450), the only copy in this package; `tests/test_loss.py::test_assigner_inputs_match_stock` fails
        if the stock method starts handing its assigner anything else.
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

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **kwargs) -> tuple:
        """Eq. (9). Overridden because the stock method weights by TAL's target scores; FSS carries `weights`.

        Returns:
            (tuple): Same layout as the stock method: (fg_mask, gt_idx, target_bboxes, anchor_points,
                stride_tensor), the gain-scaled (box, cls, dfl) loss, and a dict of detached loss items.
        """
        if not self.use_fss:
            return super().get_assigned_targets_and_loss(preds, batch, **kwargs)
        x = self.inputs(preds, batch)
        result, k = self.assigner.assign(
            x.pred_scores.detach().sigmoid(),
            (x.pred_bboxes.detach() * x.stride_tensor).type(x.gt_bboxes.dtype),
            x.anchor_points * x.stride_tensor,
            x.gt_labels,
            x.gt_bboxes,
            x.mask_gt,
            grid=[tuple(f.shape[2:]) for f in preds["feats"]],  # step 1 in O(P), without the dense mask
        )
        fg_mask = result.fg_mask  # (b, N)
        weights = result.weights if self.fss["fss_weights"] else fg_mask.float()  # (b, N), 0 for background
        target = result.scores.sum(-1)  # (b, N) soft target t_i of each positive, 0 for background
        box_weights = weights * target if self.fss["fss_box"] == "w_target" else weights  # (b, N)
        if self.fss["fss_norm"] == "target":
            norm = (weights * target).sum()  # sum of w_i * t_i
        else:
            norm = fg_mask.sum().to(weights.dtype)  # number of positives
        norm = norm.clamp(min=1)  # on the device: no host sync

        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        bce = self.bce(x.pred_scores, result.scores.to(x.pred_scores.dtype))  # (b, N, C)
        if self.class_weights is not None:
            bce = bce * self.class_weights
        cls_weights = torch.where(fg_mask, weights, (result.labels >= 0).to(weights.dtype))  # w_i; 1; 0: ignored
        loss[1] = (bce.sum(-1) * cls_weights).sum() / norm

        # BboxLoss weights each positive by its `target_scores` summed over classes: pass w_i in that slot.
        loss[0], loss[2] = self.bbox_loss(
            x.pred_distri,
            x.pred_bboxes,
            x.anchor_points,
            result.bboxes / x.stride_tensor,
            box_weights.unsqueeze(-1),
            norm,
            fg_mask,
            x.imgsz,
            x.stride_tensor,
        )
        self.stats.update(fg_mask, result.gt_idx, x.mask_gt, k=k, weights=weights, scores=result.scores)

        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        return (
            (fg_mask, result.gt_idx, result.bboxes, x.anchor_points, x.stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )


class TALDetectionLoss(v8DetectionLoss):
    """Ultralytics' own detection loss, unchanged, with its positives recorded in `stats` (comparison runs)."""

    def __init__(self, model: DetectionModel, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss, then wrap its assigner in a `RecordingAssigner`."""
        super().__init__(model, tal_topk, tal_topk2)
        self.stats = AssignmentStats()
        self.assigner = RecordingAssigner(self.assigner, self.stats)


def build_criterion(model: DetectionModel, loss_fn: type = FSSDetectionLoss) -> v8DetectionLoss | E2ELoss:
    """Return `loss_fn` as `model`'s criterion, mirroring
    `DetectionModel.init_criterion`: both branches of an `E2ELoss` for end-to-end heads (YOLO26, YOLOv10).

    Raises:
        NotImplementedError: For models other than plain YOLO detection models (RT-DETR, segment, pose, OBB,
            classify, YOLO-World/YOLOE), which FSS does not support yet.
    """
    if type(model) is not DetectionModel or type(model.model[-1]) not in {Detect, v10Detect}:
        raise NotImplementedError(
            f"FSS supports YOLO detection models (task=detect) only, not {type(model).__name__}. "
            "Train RT-DETR, segment, pose, OBB and classify models with Ultralytics' own trainers."
        )
    if getattr(model.model[-1], "one2one_cv2", None) is not None:  # end-to-end heads (YOLO26, YOLOv10)
        return E2ELoss(model, loss_fn)
    return loss_fn(model)


def build_fss_criterion(model: DetectionModel) -> FSSDetectionLoss | TALDetectionLoss | E2ELoss:
    """Return the FSS criterion for `model` (see `build_criterion`); with `fss_assigner=tal` in its args, Ultralytics'
    own (`build_tal_criterion`), so that such a run equals a stock run seed for seed."""
    args = getattr(model, "args", None) or {}
    if check_fss_args(args if isinstance(args, dict) else vars(args))["fss_assigner"] == "tal":
        return build_tal_criterion(model)
    return build_criterion(model, FSSDetectionLoss)


def build_tal_criterion(model: DetectionModel) -> TALDetectionLoss | E2ELoss:
    """Return Ultralytics' own criterion for `model`, recording its assignment statistics (see `build_criterion`)."""
    return build_criterion(model, TALDetectionLoss)
