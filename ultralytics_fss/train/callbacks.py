"""Ultralytics callbacks that publish assignment statistics once per epoch: `fss/*` columns of results.csv and one
console line. They only read and reset the statistics the criterion owns (`ultralytics_fss.train.stats`); they build
nothing and attach nothing.
"""

from __future__ import annotations

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.train.stats import criterion_stats

PREFIX = "fss/"  # column prefix of the statistics in results.csv


def on_train_epoch_start(trainer) -> None:
    """Start a fresh statistics window at the start of each training epoch."""
    stats = criterion_stats(trainer)
    if stats is not None:
        stats.reset()


def on_train_epoch_end(trainer) -> None:
    """Publish the epoch's statistics: `fss/*` columns of results.csv (via `trainer.lr`, the only per-epoch dict
    Ultralytics merges into its row after validation) and one console line."""
    stats = criterion_stats(trainer)
    if stats is None:
        return
    summary = stats.summary()
    trainer.lr.update({f"{PREFIX}{k}": v for k, v in summary.items()})
    LOGGER.info(f"{colorstr('FSS:')} " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()))


callbacks = {
    "on_train_epoch_start": [on_train_epoch_start],
    "on_train_epoch_end": [on_train_epoch_end],
}


def add_stats_callbacks(target) -> None:
    """Register the statistics callbacks once on a trainer or a `YOLO` model."""
    for event, funcs in callbacks.items():
        for func in funcs:
            if func not in target.callbacks[event]:
                target.add_callback(event, func)
