"""Ultralytics callbacks: FSS assignment statistics once per epoch (console and `results.csv`), and `enable_fss`.

Statistics come from the one-to-many branch of end-to-end heads, the branch FSS drives. For a stock criterion
(comparison runs) the TAL assigner is wrapped so that the same positives-per-GT figures are recorded.

`enable_fss(model)` turns FSS on for any trainer through callbacks alone; `install_fss_criterion` is the one function
that puts the FSS criterion on a trainer's model and EMA copy, shared with `FSSTrainer`.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from ultralytics.utils import LOGGER, IterableSimpleNamespace, colorstr
from ultralytics.utils.torch_utils import unwrap_model

from ultralytics_fss.cfg import FSS_DEFAULTS, check_fss_args
from ultralytics_fss.loss import AssignmentStats, FSSDetectionLoss, build_fss_criterion

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
    """Register the statistics callbacks on a trainer or a `YOLO` model (stock or FSS)."""
    for event, funcs in callbacks.items():
        for func in funcs:
            if func not in trainer.callbacks[event]:
                trainer.add_callback(event, func)


def _args_dict(args) -> dict[str, Any]:
    """Return model or trainer args (a namespace, or a dict for models loaded from checkpoints) as a dict."""
    return dict(args) if isinstance(args, dict) else dict(vars(args))


def install_fss_criterion(trainer, fss: dict[str, Any] | None = None) -> None:
    """Put the FSS criterion on the trainer's model and on its EMA copy (which computes validation losses).

    Called by `FSSTrainer.resume_training` and by the `enable_fss` callback at `on_pretrain_routine_end`: both run
    after the EMA copy is made and after Ultralytics rebuilds a stock criterion for end-to-end heads on resume, whose
    one-to-many / one-to-one schedule (`E2ELoss.updates`) is carried over.

    Args:
        trainer (BaseTrainer): A detection trainer after `_setup_train` built its model and EMA.
        fss (dict, optional): Checked `fss_*` values for trainers whose args do not hold them (`enable_fss` with a
            stock trainer): each model gets a copy of its args with these values, `trainer.args` stays untouched so
            the stock validator, `args.yaml` and the DDP state see only Ultralytics' keys. None: read from the args.
    """
    model = unwrap_model(trainer.model)
    previous = getattr(model, "criterion", None)
    for target in (model, trainer.ema.ema if trainer.ema else None):
        if target is None:
            continue
        if fss is not None:
            target.args = IterableSimpleNamespace(**{**_args_dict(target.args), **fss})
        criterion = build_fss_criterion(target)
        if hasattr(previous, "updates"):  # E2ELoss rebuilt by Ultralytics on resume
            criterion.updates, criterion.o2m, criterion.o2o = previous.updates, previous.o2m, previous.o2o
        target.criterion = criterion
    values = check_fss_args(_args_dict(model.args))
    LOGGER.info(f"{colorstr('FSS:')} " + ", ".join(f"{k}={v}" for k, v in values.items()))


class InstallFSS:
    """`on_pretrain_routine_end` callback installing the FSS criterion with fixed `fss_*` values (see `enable_fss`).

    A class rather than a closure so that Ultralytics' DDP launcher pickles it by reference with its values.
    """

    def __init__(self, fss: dict[str, Any]):
        """Keep the checked `fss_*` values."""
        self.fss = check_fss_args(fss)

    def __call__(self, trainer) -> None:
        """Install the FSS criterion on the trainer's model and EMA (fires after EMA creation and resume)."""
        install_fss_criterion(trainer, self.fss)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.fss.items() if v != FSS_DEFAULTS[k]}
        return f"InstallFSS({changed})"


def enable_fss(model, **fss: Any):
    """Turn FSS on for a `YOLO` model (or a trainer) through Ultralytics callbacks alone, whatever its trainer class.

    Adds an `on_pretrain_routine_end` callback that installs the FSS criterion on the training model and its EMA
    copy, and the per-epoch `fss/*` statistics callbacks. Calling it again replaces the earlier FSS values. The
    callbacks travel with the model's callbacks into the trainer, into resumed runs and into DDP workers.

    Args:
        model (ultralytics.YOLO | BaseTrainer): Anything with `callbacks` and `add_callback`.
        **fss (Any): `fss_*` hyperparameters (see `ultralytics_fss.cfg.FSS_KEYS`); missing keys take their defaults.

    Returns:
        (ultralytics.YOLO | BaseTrainer): `model`, for chaining.

    Raises:
        KeyError | TypeError | ValueError: For an unknown key or an invalid value, naming the argument.

    Examples:
        >>> from ultralytics import YOLO
        >>> from ultralytics_fss import enable_fss
        >>> model = enable_fss(YOLO("yolo11n.yaml"), fss_beta=4.0)
        >>> model.train(trainer=MyDetectionTrainer, data="data.yaml", epochs=1)  # any DetectionTrainer subclass
    """
    install = InstallFSS(fss)
    event = model.callbacks["on_pretrain_routine_end"]
    event[:] = [f for f in event if not isinstance(f, InstallFSS)]
    model.add_callback("on_pretrain_routine_end", install)
    add_stats_callbacks(model)
    return model


__all__ = [
    "callbacks",
    "add_stats_callbacks",
    "enable_fss",
    "install_fss_criterion",
    "InstallFSS",
    "on_train_epoch_start",
    "on_train_epoch_end",
]
