"""The `fss/*` assignment statistics reach Ultralytics' loggers as metrics, never as learning rates: a real training
with Ultralytics' own TensorBoard callback, its event file read back with TensorBoard's event reader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import read_csv

pytestmark = pytest.mark.slow  # a real two-epoch training in a subprocess

SCRIPT = """
import json, sys
from ultralytics.utils import SETTINGS
SETTINGS.update(tensorboard=True)  # in this run's own settings folder (YOLO_CONFIG_DIR)
from ultralytics_fss import FSSTrainer

seen = []
def record(trainer):  # what every logger reads at the end of an epoch
    seen.append({"lr": sorted(trainer.lr), "metrics": sorted(trainer.metrics)})

trainer = FSSTrainer(overrides=json.loads(sys.argv[1]))
trainer.add_callback("on_fit_epoch_end", record)
trainer.train()
print("SEEN", json.dumps(seen[:2]))
"""


def test_statistics_are_metrics_in_tensorboard_and_results_csv(train_args, tmp_path, repo_env):
    """Epoch 1 without validation, epoch 2 with it: both epochs' `fss/*` values are TensorBoard scalars equal to
    results.csv's; `trainer.lr` holds only the optimiser's `lr/pg*`; `trainer.metrics` holds the statistics."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = {**train_args, "epochs": 2, "val": False, "name": "tb"}
    env = {k: v for k, v in repo_env.items() if k != "PYTEST_CURRENT_TEST"}  # Ultralytics skips loggers in pytest
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "settings"), YOLO_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(args)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.split("SEEN", 1)[1])
    assert len(seen) == 2
    for epoch in seen:
        assert epoch["lr"] == ["lr/pg0", "lr/pg1", "lr/pg2"]
        assert {"fss/pos_per_gt", "fss/k_mean", "fss/w_mean"} <= set(epoch["metrics"])

    run = tmp_path / "tb"  # train_args' project is tmp_path
    rows = read_csv(run / "results.csv")
    events = EventAccumulator(str(run))
    events.Reload()
    tags = events.Tags()["scalars"]
    stats = sorted(k for k in rows[0] if k.startswith("fss/"))
    assert stats and set(stats) <= set(tags) and not any(t.startswith("lr/fss") for t in tags)
    for name in stats:
        logged = {e.step: e.value for e in events.Scalars(name)}
        assert logged.keys() >= {1, 2}, name
        for row in rows:
            assert logged[int(float(row["epoch"]))] == pytest.approx(float(row[name]), rel=1e-4, abs=1e-6), name
