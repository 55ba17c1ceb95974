"""Ultralytics callbacks that publish assignment statistics once per epoch as metrics: `fss/*` entries of
`trainer.metrics`, so results.csv, the console and every logger Ultralytics integrates (TensorBoard, MLflow, W&B,
Comet, ClearML, DVC) record them as metrics under their own names; and one console line. They only read and reset the
statistics the criterion owns (`ultralytics_fss.train.stats`).

`trainer.metrics` is replaced by each validation, so the statistics reach it twice: at the end of the training epoch
(epochs without validation keep that dict) and through the validator (`seam.ValidatorWithExtras`), which adds them to
the metrics it returns.
"""

from __future__ import annotations

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.train.seam import ValidatorWithExtras
from ultralytics_fss.train.stats import criterion_stats, o2m_weight

PREFIX = "fss/"  # column prefix of the statistics in results.csv


def on_train_epoch_start(trainer) -> None:
    """Start a fresh statistics window at the start of each training epoch, with the one-to-many weight of this
    epoch for end-to-end heads (Ultralytics updates it before the epoch's end)."""
    found = criterion_stats(trainer)
    for stats in found.values():
        stats.reset()
    weight = o2m_weight(trainer)
    if weight is not None and "" in found:
        found[""].values["o2m_weight"] = weight


def epoch_metrics(trainer) -> dict[str, float]:
    """The statistics of the epoch so far as `fss/*` metrics (end-to-end heads: the one-to-one branch's as
    `fss/o2o_*`, and `fss/o2m_weight`); {} when the criterion records none."""
    found = criterion_stats(trainer)
    return {f"{PREFIX}{prefix}{k}": v for prefix, stats in found.items() for k, v in stats.summary().items()}


def on_pretrain_routine_end(trainer) -> None:
    """Let the trainer's validator add the epoch's statistics to the metrics of each validation."""
    if trainer.validator is not None and not isinstance(trainer.validator, ValidatorWithExtras):
        trainer.validator = ValidatorWithExtras(trainer.validator, lambda: epoch_metrics(trainer))


def on_train_epoch_end(trainer) -> None:
    """Publish the epoch's statistics: in `trainer.metrics` (kept as they are when no validation follows) and one
    console line, headed by the assigner that made them (`FSS assignment:`, `TAL assignment:` for a stock run)."""
    metrics = epoch_metrics(trainer)
    if not metrics:
        return
    if trainer.metrics is not None:  # None on DDP ranks other than 0, which write no results
        trainer.metrics.update(metrics)
    head = colorstr(f"{assigner_name(trainer)} assignment:")
    LOGGER.info(f"{head} " + ", ".join(f"{k.removeprefix(PREFIX)} {v:.3g}" for k, v in metrics.items()))


def assigner_name(trainer) -> str:
    """The assigner a trainer's statistics describe, as users name it: `fss_assigner` of an FSS trainer (`FSS`,
    `ATSS`, ...), `TAL` for a stock trainer recording Ultralytics' own."""
    return str(getattr(trainer.args, "fss_assigner", "tal")).upper()


callbacks = {
    "on_pretrain_routine_end": [on_pretrain_routine_end],
    "on_train_epoch_start": [on_train_epoch_start],
    "on_train_epoch_end": [on_train_epoch_end],
}


def add_stats_callbacks(target) -> None:
    """Register the statistics callbacks once on a trainer or a `YOLO` model."""
    for event, funcs in callbacks.items():
        for func in funcs:
            if func not in target.callbacks[event]:
                target.add_callback(event, func)
