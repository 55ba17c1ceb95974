"""The label-assignment math: FSS as overridable steps (Eqs. 2-8) and the paper's baselines, all `PairAssigner`s.
Imports torch and Ultralytics' box ops only."""

from ultralytics_fss.assign.fss import FSSAssigner
from ultralytics_fss.assign.pairs import FSSAssignResult, PairAssigner
from ultralytics_fss.assign.rotated import RotatedFSSAssigner

__all__ = ["FSSAssigner", "FSSAssignResult", "PairAssigner", "RotatedFSSAssigner"]
