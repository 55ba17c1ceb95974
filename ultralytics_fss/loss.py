"""FSS loss, Eq. (9), on Ultralytics detection heads: the `FSSAssigner` result turned into weighted loss terms.

With w_i the Eq. (8) weight of positive i, IoU_i its soft target and D the normaliser:

    cls = (sum_pos w_i * BCE(p_i, IoU_i) + sum_neg BCE(p_i, 0)) / D      (BCE summed over classes)
    box = sum_pos w_i * (1 - CIoU_i) / D,   dfl (or l1) = sum_pos w_i * DFL_i / D

D is the number of positives (`fss_norm=npos`, the paper) or sum_pos w_i * IoU_i (`fss_norm=target`, the scale
Ultralytics' `box`/`cls`/`dfl` gains were tuned for). Ultralytics' gains and `class_weights` apply unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.nn.modules.head import Detect, v10Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss
from ultralytics.utils.tal import make_anchors

from ultralytics_fss.assigner import FSSAssigner
from ultralytics_fss.cfg import check_fss_args


class AssignmentStats:
    """Running sums of assignment statistics, kept on the device (no host sync per batch).

    Examples:
        >>> stats = AssignmentStats()
        >>> stats.update(fg_mask, gt_idx, mask_gt, k=k, weights=weights)
        >>> stats.summary()  # {'pos_per_gt': ..., 'k_mean': ..., ...}; then stats.reset()
    """

    def __init__(self):
        """Start empty."""
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.sums: dict[str, torch.Tensor] = {}

    def _add(self, name: str, value: torch.Tensor, reduce: str = "sum") -> None:
        value = value.detach().double()
        old = self.sums.get(name)
        if old is None:
            self.sums[name] = value
        else:
            self.sums[name] = {"sum": torch.add, "max": torch.maximum, "min": torch.minimum}[reduce](old, value)

    def update(
        self,
        fg_mask: torch.Tensor,
        gt_idx: torch.Tensor,
        mask_gt: torch.Tensor,
        k: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> None:
        """Accumulate one batch.

        Args:
            fg_mask (torch.Tensor): (b, N) bool positives.
            gt_idx (torch.Tensor): (b, N) int64 GT index of each positive.
            mask_gt (torch.Tensor): (b, M, 1) 1 for real GTs.
            k (torch.Tensor, optional): (b, M) int64 dynamic k (FSS only).
            weights (torch.Tensor, optional): (b, N) Eq. (8) weights (FSS only).
            scores (torch.Tensor, optional): (b, N, C) soft classification targets.
        """
        b, m = mask_gt.shape[:2]
        valid = mask_gt.view(b, m).bool()
        pos_per_gt = torch.zeros(b * m, device=fg_mask.device)  # (b*M,)
        if m:  # a batch without any GT has no positives to count (and nothing to index into)
            flat_gt = (gt_idx + torch.arange(b, device=gt_idx.device)[:, None] * m).view(-1)  # (b*N,) into (b*M,)
            pos_per_gt.index_add_(0, flat_gt, fg_mask.view(-1).float())
        self._add("gts", valid.sum())
        self._add("pos", fg_mask.sum())
        self._add("gts_without_pos", (valid.view(-1) & (pos_per_gt == 0)).sum())
        if k is not None:  # masked reductions instead of boolean indexing: no host sync
            self._add("k_sum", (k * valid).sum())
            self._add("k_max", (k * valid).max() if k.numel() else k.new_zeros(()), "max")
        if weights is not None:
            self._add("w_sum", (weights * fg_mask).sum())
            self._add("w_min", torch.where(fg_mask, weights, float("inf")).min(), "min")
            self._add("w_max", torch.where(fg_mask, weights, float("-inf")).max(), "max")
        if scores is not None:
            self._add("target_sum", scores.sum())

    def summary(self) -> dict[str, float]:
        """Return means over everything accumulated: positives per GT, k, weights, soft target, GTs without positive."""
        s = {k: float(v) for k, v in self.sums.items()}  # one host sync per call
        gts, pos = max(s.get("gts", 0.0), 1.0), max(s.get("pos", 0.0), 1.0)
        out = {"pos_per_gt": s.get("pos", 0.0) / gts, "no_pos_share": s.get("gts_without_pos", 0.0) / gts}
        if "k_sum" in s:
            out.update(k_mean=s["k_sum"] / gts, k_max=s["k_max"])
        if "w_sum" in s and s.get("pos", 0.0) > 0:
            out.update(w_min=s["w_min"], w_mean=s["w_sum"] / pos, w_max=s["w_max"])
        if "target_sum" in s:
            out["target_mean"] = s["target_sum"] / pos
        return out


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
        self.stats: AssignmentStats | None = None  # set by callbacks that want assignment statistics
        one2one = tal_topk2 == 1
        self.use_fss = not (one2one and self.fss["fss_o2o"] == "tal")
        if self.use_fss:
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
            )

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **kwargs) -> tuple:
        """Eq. (9). Overridden because the stock method weights by TAL's target scores; FSS carries `weights`.

        Returns:
            (tuple): Same layout as the stock method: (fg_mask, gt_idx, target_bboxes, anchor_points,
                stride_tensor), the gain-scaled (box, cls, dfl) loss, and a dict of detached loss items.
        """
        if not self.use_fss:
            return super().get_assigned_targets_and_loss(preds, batch, **kwargs)
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
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

        result, k = self.assigner.assign(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )
        fg_mask = result.fg_mask  # (b, N)
        weights = result.weights if self.fss["fss_weights"] else fg_mask.float()  # (b, N), 0 for background
        if self.fss["fss_norm"] == "target":
            norm = (weights * result.scores.sum(-1)).sum()  # sum of w_i * IoU_i
        else:
            norm = fg_mask.sum().to(weights.dtype)  # number of positives
        norm = norm.clamp(min=1)  # on the device: no host sync

        bce = self.bce(pred_scores, result.scores.to(dtype))  # (b, N, C)
        if self.class_weights is not None:
            bce = bce * self.class_weights
        cls_weights = torch.where(fg_mask, weights, 1.0)  # w_i on positives, 1 on negatives
        loss[1] = (bce.sum(-1) * cls_weights).sum() / norm

        # BboxLoss weights each positive by its `target_scores` summed over classes: pass w_i in that slot.
        loss[0], loss[2] = self.bbox_loss(
            pred_distri,
            pred_bboxes,
            anchor_points,
            result.bboxes / stride_tensor,
            weights.unsqueeze(-1),
            norm,
            fg_mask,
            imgsz,
            stride_tensor,
        )
        if self.stats is not None:
            self.stats.update(fg_mask, result.gt_idx, mask_gt, k=k, weights=weights, scores=result.scores)

        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        return (
            (fg_mask, result.gt_idx, result.bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )


def build_fss_criterion(model: DetectionModel) -> FSSDetectionLoss | E2ELoss:
    """Return the FSS criterion for `model`, mirroring `DetectionModel.init_criterion`.

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
        return E2ELoss(model, FSSDetectionLoss)
    return FSSDetectionLoss(model)
