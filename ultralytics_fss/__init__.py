"""FSS (Focusing on Suboptimal Samples) label assignment for Ultralytics YOLO.

`FSSAssigner` (the paper's math, `ultralytics_fss.assign`), `FSSDetectionLoss` (Eq. 9), `FSSTrainer` and `enable_fss`
(Ultralytics glue, `ultralytics_fss.train`). The DOTA pipeline is `ultralytics_fss.dota` and the `yolo`
command-line glue `ultralytics_fss.cli`; neither is imported here, so `import ultralytics_fss` stays light.
"""

__version__ = "0.1.0"

from ultralytics_fss.assign import FSSAssigner, FSSAssignResult
from ultralytics_fss.train import (
    FSS_DEFAULTS,
    FSSDetectionLoss,
    FSSTrainer,
    build_fss_criterion,
    check_fss_args,
    enable_fss,
    record_tal_stats,
)

__all__ = [
    "FSSAssigner",
    "FSSAssignResult",
    "FSSDetectionLoss",
    "FSSTrainer",
    "FSS_DEFAULTS",
    "build_fss_criterion",
    "check_fss_args",
    "enable_fss",
    "record_tal_stats",
    "__version__",
]
