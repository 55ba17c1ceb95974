"""Ultralytics callbacks that log FSS assignment statistics once per epoch (console and `results.csv`).

Statistics come from the one-to-many branch of end-to-end heads, the branch FSS drives. For a stock criterion
(comparison runs) the TAL assigner is wrapped so that the same positives-per-GT figures are recorded.
"""

from __future__ import annotations

from torch import nn
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.torch_utils import unwrap_model

from ultralytics_fss.loss import AssignmentStats, FSSDetectionLoss

PREFIX = "fss/"


class _RecordingAssigner(nn.Module):
    """Wrap a stock `TaskAlignedAssigner` and record its positives per GT; the assignment is unchanged."""

    def __init__(self, assigner: nn.Module, stats: AssignmentStats):
        super().__init__()
        self.assigner, self.stats = assigner, stats

    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        out = self.assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra)
        _, _, target_scores, fg_mask, gt_idx = out
        self.stats.update(fg_mask, gt_idx.long(), mask_gt, scores=target_scores)
        return out


def _main_loss(trainer):
    """Return the criterion's loss object whose assignments are logged (one-to-many branch for end-to-end heads)."""
    model = unwrap_model(trainer.model)
    if getattr(model, "criterion", None) is None:  # stock trainers build it lazily on the first batch
        model.criterion = model.init_criterion()
    criterion = model.criterion
    return getattr(criterion, "one2many", criterion)


def _stats(loss) -> AssignmentStats:
    """Return the statistics sink of `loss`, attaching one on first use."""
    if isinstance(loss, FSSDetectionLoss) and loss.use_fss:
        loss.stats = loss.stats or AssignmentStats()
        return loss.stats
    if not isinstance(loss.assigner, _RecordingAssigner):
        loss.assigner = _RecordingAssigner(loss.assigner, AssignmentStats())
    return loss.assigner.stats


def on_train_epoch_start(trainer) -> None:
    """Start a fresh statistics window at the start of each training epoch."""
    _stats(_main_loss(trainer)).reset()


def on_train_epoch_end(trainer) -> None:
    """Publish the epoch's statistics: `fss/*` columns of results.csv (via `trainer.lr`, the only per-epoch dict
    Ultralytics merges into its row after validation) and one console line."""
    summary = _stats(_main_loss(trainer)).summary()
    trainer.fss_stats = summary
    trainer.lr.update({f"{PREFIX}{k}": v for k, v in summary.items()})
    LOGGER.info(f"{colorstr('FSS:')} " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()))


callbacks = {
    "on_train_epoch_start": [on_train_epoch_start],
    "on_train_epoch_end": [on_train_epoch_end],
}


def add_stats_callbacks(trainer) -> None:
    """Register the statistics callbacks on a trainer (stock or FSS)."""
    for event, funcs in callbacks.items():
        for func in funcs:
            if func not in trainer.callbacks[event]:
                trainer.add_callback(event, func)


__all__ = ["callbacks", "add_stats_callbacks", "on_train_epoch_start", "on_train_epoch_end"]
