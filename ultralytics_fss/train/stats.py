"""Assignment statistics: positives per GT, dynamic k, Eq. (8) weights, soft targets, GTs left without a positive.

Owner: the loss. `FSSDetectionLoss` (and `TALDetectionLoss`, Ultralytics' own loss with its positives recorded for
comparison runs) creates one `AssignmentStats` and updates it every batch; the callbacks in
`ultralytics_fss.train.callbacks` only reset it at the start of an epoch and publish its summary at the end.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.utils.torch_utils import unwrap_model

from ultralytics_fss.train import seam
from ultralytics_fss.train.seam import main_branch


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
        self.values: dict[str, float] = {}  # set once per window (`fss/o2m_weight`), reported as they are

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
        return {**out, **self.values}


class RecordingAssigner(nn.Module):
    """Wrap a stock `TaskAlignedAssigner` and record its positives per GT in `stats`; the assignment is unchanged."""

    def __init__(self, assigner: nn.Module, stats: AssignmentStats):
        """Keep the assigner to call and the statistics to update."""
        super().__init__()
        self.assigner, self.stats = assigner, stats

    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        """Call the wrapped assigner and record its result (TAL's five-tuple) in `stats`."""
        out = self.assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra)
        _, _, target_scores, fg_mask, gt_idx = out
        self.stats.update(fg_mask, gt_idx.long(), mask_gt, scores=target_scores)
        return out


def criterion_stats(trainer) -> dict[str, AssignmentStats]:
    """Return the statistics of the trainer's criterion by column prefix: "" for the one-to-many branch of end-to-end
    heads (the branch FSS drives) or the only branch, "o2o_" for the one-to-one branch (FSS at k = 1 or Ultralytics'
    top-1, recorded); {} when the criterion records none (a stock trainer without `record_tal_stats`, or not built)."""
    crit = getattr(unwrap_model(trainer.model), "criterion", None)
    found = {
        "": getattr(main_branch(crit), "stats", None),
        "o2o_": getattr(getattr(crit, "one2one", None), "stats", None),
    }
    return {prefix: stats for prefix, stats in found.items() if stats is not None}


def o2m_weight(trainer) -> float | None:
    """The one-to-many branch's weight of the trainer's end-to-end criterion for the epoch about to train
    (`seam.o2m_weight`; Ultralytics updates it before `on_train_epoch_end`); None for other criteria."""
    return seam.o2m_weight(getattr(unwrap_model(trainer.model), "criterion", None))
