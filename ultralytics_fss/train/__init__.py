"""Ultralytics glue: the `fss_*` keys, the FSS loss (Eq. 9), assignment statistics, callbacks, `FSSTrainer` and
tuning (`model.tune(trainer=FSSTrainer)`)."""

from ultralytics_fss.train.cfg import FSS_DEFAULTS, check_fss_args
from ultralytics_fss.train.loss import FSSDetectionLoss, TALDetectionLoss, build_fss_criterion, build_tal_criterion
from ultralytics_fss.train.stats import AssignmentStats
from ultralytics_fss.train.trainer import FSSTrainer, InstallCriterion, enable_fss, record_tal_stats
from ultralytics_fss.train.tune import FSS_SPACE, FSSTuner, ray_space

__all__ = [
    "FSS_DEFAULTS",
    "FSS_SPACE",
    "FSSTuner",
    "AssignmentStats",
    "FSSDetectionLoss",
    "FSSTrainer",
    "InstallCriterion",
    "TALDetectionLoss",
    "build_fss_criterion",
    "build_tal_criterion",
    "check_fss_args",
    "enable_fss",
    "ray_space",
    "record_tal_stats",
]
