"""The label-assignment math: FSS as overridable steps (Eqs. 2-8). Imports torch and Ultralytics' box ops only."""

from ultralytics_fss.assign.fss import FSSAssigner, FSSAssignResult
from ultralytics_fss.assign.rotated import RotatedFSSAssigner

__all__ = ["FSSAssigner", "FSSAssignResult", "RotatedFSSAssigner"]
