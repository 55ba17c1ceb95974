"""Multi-GPU state on CPU: Ultralytics' DDP launcher file rebuilds an FSS trainer in a fresh process.

`generate_ddp_file` pickles the trainer class, its args, model and callbacks; each worker runs the generated script,
which rebuilds the trainer from them and calls `trainer.train()`. Here the generated script runs in a subprocess
exactly as written, except that `trainer.train()` becomes the setup part of training (`_setup_train`, which builds
the model, the EMA copy and fires `on_pretrain_routine_end`) followed by checks; no process group is started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file

from ultralytics_fss import FSSTrainer, enable_fss

pytestmark = pytest.mark.slow  # every test here trains or runs a training in a subprocess

CHECKS = """
    trainer._setup_train()
    import json
    from ultralytics_fss.train import InstallCriterion
    from ultralytics_fss.train.seam import branches as losses
    report = {
        "class": type(trainer).__module__ + "." + type(trainer).__qualname__,
        "args": {k: v for k, v in vars(trainer.args).items() if k.startswith("fss_") or k == "trainer"},
        "train": [type(x).__name__ for x in losses(trainer.model.criterion)],
        "ema": [type(x).__name__ for x in losses(trainer.ema.ema.criterion)],
        "beta": [x.assigner.beta for x in losses(trainer.model.criterion) if getattr(x, "use_fss", False)],
        "install_callbacks": [c.fss for c in trainer.callbacks["on_pretrain_routine_end"]
                              if isinstance(c, InstallCriterion)],
    }
    print("REPORT" + json.dumps(report))
"""


def run_worker(trainer) -> dict:
    """Write the DDP state with Ultralytics' own function and run its worker script in a fresh process."""
    file = generate_ddp_file(trainer)
    try:
        script = Path(file).read_text()
        assert script.count("trainer.train()") == 1, script
        body = script.replace("    trainer.train()\n", CHECKS)
        proc = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=300)
    finally:
        ddp_cleanup(trainer, file)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.split("REPORT")[-1].splitlines()[0])


def test_ddp_state_rebuilds_fss_trainer(train_args):
    trainer = FSSTrainer(overrides={**train_args, "fss_beta": 4.0, "fss_q": 7})
    report = run_worker(trainer)
    assert report["class"] == "ultralytics_fss.train.trainer.FSSTrainer"
    assert report["args"]["fss_beta"] == 4.0 and report["args"]["fss_q"] == 7
    assert report["args"]["trainer"] == "ultralytics_fss.FSSTrainer"
    assert report["install_callbacks"] == [None]  # one install callback (pickled, then re-added): args hold the values
    assert report["train"] == ["FSSDetectionLoss"] and report["ema"] == ["FSSDetectionLoss"]
    assert report["beta"] == [4.0]


@pytest.mark.parametrize("model", ["yolo11n.yaml", "yolo26n.yaml"])
def test_ddp_state_keeps_enable_fss_callbacks(train_args, model):
    """A stock trainer with `enable_fss` callbacks: the callbacks survive pickling and install FSS in the worker."""
    yolo = enable_fss(YOLO(model), fss_beta=3.0)
    trainer = DetectionTrainer(overrides={**train_args, "model": model}, _callbacks=yolo.callbacks)
    report = run_worker(trainer)
    assert report["class"] == "ultralytics.models.yolo.detect.train.DetectionTrainer"
    assert report["args"] == {}  # the stock trainer's args stay Ultralytics' own
    assert [c["fss_beta"] for c in report["install_callbacks"]] == [3.0]
    fss = ["FSSDetectionLoss"] * (2 if model.startswith("yolo26") else 1)  # end-to-end: both branches
    assert report["train"] == fss and report["ema"] == fss
    assert report["beta"] == [3.0]  # one-to-one branch keeps Ultralytics' assigner (fss_o2o=tal)
