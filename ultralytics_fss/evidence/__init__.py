"""Evidence a user judges FSS by: paired training runs (stock vs FSS, same data and seed), their tables, and pictures
of the assignment (`evidence.assignment_view`, `evidence.pictures`, imported on use: they need matplotlib)."""

from ultralytics_fss.evidence.runs import format_table, read_results, train_pair, train_run

__all__ = ["format_table", "read_results", "train_pair", "train_run"]
