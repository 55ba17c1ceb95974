"""The label-assignment math: FSS as overridable steps (Eqs. 2-8) and the paper's baselines, all `PairAssigner`s.
Imports torch and Ultralytics' box ops only."""

from ultralytics_fss.assign.baselines import ATSSAssigner, MaxIoUAssigner, SimOTAAssigner
from ultralytics_fss.assign.dw import DWAssigner
from ultralytics_fss.assign.fss import FSSAssigner
from ultralytics_fss.assign.paa import PAAAssigner
from ultralytics_fss.assign.pairs import FSSAssignResult, PairAssigner
from ultralytics_fss.assign.rotated import (
    RotatedATSSAssigner,
    RotatedFSSAssigner,
    RotatedMaxIoUAssigner,
    RotatedSimOTAAssigner,
)

# `fss_assigner` value -> the paper's baseline it names (Tables 2, 3 and 5; `tal` and `fss` are not assigners here)
BASELINES = {"maxiou": MaxIoUAssigner, "atss": ATSSAssigner, "simota": SimOTAAssigner, "paa": PAAAssigner,
             "dw": DWAssigner}  # fmt: skip
# the baselines of the paper's DOTA table (Table 6) on oriented boxes (`assign.rotated`)
ROTATED_BASELINES = {"maxiou": RotatedMaxIoUAssigner, "atss": RotatedATSSAssigner, "simota": RotatedSimOTAAssigner}

__all__ = ["BASELINES", "ROTATED_BASELINES", "FSSAssigner", "FSSAssignResult", "PairAssigner", "RotatedFSSAssigner"]
