"""The seam's pieces that follow ultralytics/engine/trainer.py: validation metrics with extras, the checkpoint a
resume continues, and the command `MultiTrainer` runs for each tuning iteration.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ultralytics_fss.train.seam.models import saved_model_args


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
