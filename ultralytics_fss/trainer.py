"""`FSSTrainer`: Ultralytics' detection trainer with the FSS criterion installed on the model."""

from __future__ import annotations

from typing import Any

from copy import copy

from ultralytics.cfg import cfg2dict
from ultralytics.models.yolo.detect import DetectionTrainer, DetectionValidator
from ultralytics.utils import DEFAULT_CFG, IterableSimpleNamespace

from ultralytics_fss.callbacks import add_stats_callbacks, install_fss_criterion
from ultralytics_fss.cfg import FSS_DEFAULTS, TRAINER_KEY, check_fss_args, trainer_path



class FSSTrainer(DetectionTrainer):
    """Detection trainer whose criterion assigns labels with FSS; the model class stays Ultralytics' own.

    The `fss_*` keys (see `ultralytics_fss.cfg.FSS_KEYS`) are accepted in `overrides`, validated, saved in
    `args.yaml` and checkpoints, and restored on resume. Checkpoints load without `ultralytics_fss`.

    Examples:
        >>> from ultralytics_fss import FSSTrainer
        >>> FSSTrainer(overrides=dict(model="yolo11n.yaml", data="data.yaml", epochs=1, fss_beta=4.0)).train()
        >>> from ultralytics import YOLO
        >>> YOLO("yolo11n.yaml").train(trainer=FSSTrainer, data="data.yaml", epochs=1)
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: dict | None = None):
        """Validate `fss_*` overrides, then declare the FSS keys in the base config so Ultralytics accepts them.

        Args:
            cfg (str | dict | SimpleNamespace): Base configuration, Ultralytics' defaults by default.
            overrides (dict, optional): Arguments, `fss_*` keys included.
            _callbacks (dict, optional): Ultralytics callbacks.
        """
        overrides = dict(overrides or {})
        if not overrides.get("resume"):  # recorded for `yolo train resume` (a resumed run reads it from its checkpoint)
            overrides[TRAINER_KEY] = trainer_path(type(self))
        base = cfg2dict(cfg)
        check_fss_args({**base, **overrides})  # fail before any run directory is made
        super().__init__({**FSS_DEFAULTS, TRAINER_KEY: None, **base}, overrides, _callbacks)
        for key, value in check_fss_args(vars(self.args)).items():  # a stock checkpoint resumed here lacks them
            setattr(self.args, key, value)
        setattr(self.args, TRAINER_KEY, trainer_path(type(self)))  # resumed args come from the checkpoint
        add_stats_callbacks(self)

    def get_validator(self) -> DetectionValidator:
        """Return the stock validator; overridden because it re-checks its args against Ultralytics' defaults, which
        have no `fss_*` or `trainer` keys (validation losses still use FSS: the EMA model carries the FSS criterion)."""
        args = {k: v for k, v in vars(self.args).items() if not k.startswith("fss_") and k != TRAINER_KEY}
        args = IterableSimpleNamespace(**args)
        return DetectionValidator(self.test_loader, save_dir=self.save_dir, args=copy(args), _callbacks=self.callbacks)

    def resume_training(self, ckpt):
        """Resume as Ultralytics does, then install FSS: this is the last setup step, after the EMA copy is made and
        after Ultralytics rebuilds a stock criterion for end-to-end heads, so it covers fresh and resumed runs."""
        super().resume_training(ckpt)
        self.install_criterion()

    def install_criterion(self) -> None:
        """Put the FSS criterion on the training model and on its EMA copy (which computes validation losses).

        The one-to-many / one-to-one loss schedule of end-to-end heads (`E2ELoss.updates`) is carried over; the
        logic is shared with `enable_fss` (`ultralytics_fss.callbacks.install_fss_criterion`).
        """
        install_fss_criterion(self)
