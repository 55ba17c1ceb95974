"""FSS (Focusing on Suboptimal Samples) label assignment for Ultralytics YOLO.

`FSSAssigner` (the paper's math), `FSSDetectionLoss` (Eq. 9), `FSSTrainer` and `enable_fss` (Ultralytics glue). The
DOTA tiler is `ultralytics_fss.tile_dota` and the `yolo` command-line glue `ultralytics_fss.cli`; neither is imported
here, so `import ultralytics_fss` stays light.
"""

__version__ = "0.1.0"

from ultralytics_fss.assigner import FSSAssigner, FSSAssignResult
from ultralytics_fss.callbacks import enable_fss
from ultralytics_fss.cfg import FSS_DEFAULTS, check_fss_args
from ultralytics_fss.loss import FSSDetectionLoss, build_fss_criterion
from ultralytics_fss.trainer import FSSTrainer

__all__ = [
    "FSSAssigner",
    "FSSAssignResult",
    "FSSDetectionLoss",
    "FSSTrainer",
    "FSS_DEFAULTS",
    "build_fss_criterion",
    "check_fss_args",
    "enable_fss",
    "__version__",
]
