"""Evidence a user judges FSS by: comparisons of assignment variants over seeds on the same data (`evidence.compare`,
runs identified by `evidence.identity`), their tables and plots, COCO metrics (`evidence.coco`), and pictures of the
assignment for every task (`evidence.pictures` of `evidence.assignment_view`: one training step replayed on one
image by `evidence.replay`, on labels read by `evidence.gt_labels`; imported on use: they need matplotlib)."""

from ultralytics_fss.evidence.compare import run_all
from ultralytics_fss.evidence.runs import read_results, train_run

__all__ = ["read_results", "run_all", "train_run"]
