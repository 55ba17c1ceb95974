"""One training run of a comparison (`evidence.compare`), and the demo's fast recipe.

Per-epoch assignment statistics are read back from each run's results.csv (the `fss/*` columns the statistics
callbacks publish), for stock and FSS alike.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.train import FSSTrainer, record_tal_stats
from ultralytics_fss.train.callbacks import PREFIX

STOCK_TRAINERS = {"detect": DetectionTrainer, "obb": OBBTrainer, "segment": SegmentationTrainer, "pose": PoseTrainer}
TASK_MODELS = {"detect": "yolo11n.yaml", "obb": "yolo11n-obb.yaml", "segment": "yolo11n-seg.yaml",
               "pose": "yolo11n-pose.yaml"}  # fmt: skip
METRIC_SUFFIX = {"detect": "B", "obb": "B", "segment": "M", "pose": "P"}  # the task's own mAP: box, mask, pose


def read_results(path: str | Path) -> list[dict[str, float]]:
    """Read an Ultralytics results.csv: one dict per epoch, column names stripped, values as floats (empty cells, as
    the `fss_coco` columns leave in all but the last row, are left out)."""
    with open(path, newline="") as f:
        return [{k.strip(): float(v) for k, v in row.items() if v.strip()} for row in csv.DictReader(f)]


def train_run(run_dir: Path, trainer_cls: type, data: Path, seed: int, **args: Any) -> dict[str, Any]:
    """Train one run into `run_dir`; return its final metrics and its per-epoch assignment statistics.

    Args:
        run_dir (Path): The run folder (Ultralytics' `project` / `name`).
        trainer_cls (type): Ultralytics' trainer of the task (its assignment is recorded with `record_tal_stats`) or
            an FSS trainer.
        data (Path): data.yaml.
        seed (int): Training seed (deterministic runs).
        **args (Any): Further training arguments (model, epochs, imgsz, fss_* keys...).

    Returns:
        (dict): seed, mAP50, mAP50-95 (final validation of best.pt, of the task's own metric: boxes for detect and
            obb, masks for segment, keypoints for pose), s/epoch (mean training time per epoch), pos/GT (positives
            per GT in the last epoch), `epochs` (a list of the `fss/*` statistics of each epoch) and
            `map_per_epoch` (validation mAP50-95 of each epoch).
    """
    LOGGER.info(f"\n{colorstr('bold', f'=== {run_dir.name} (seed {seed}) ===')}")
    overrides = {**dict(deterministic=True, plots=False), **args,  # plots off unless asked for
                 **dict(data=str(data), project=str(run_dir.parent), name=run_dir.name, exist_ok=True, seed=seed)}
    trainer = trainer_cls(overrides=overrides)
    if not issubclass(trainer_cls, FSSTrainer):
        record_tal_stats(trainer)  # positives per GT for stock runs too
    epoch_times = []
    trainer.add_callback("on_train_epoch_start", lambda t: setattr(t, "_run_t0", time.perf_counter()))
    trainer.add_callback("on_train_epoch_end", lambda t: epoch_times.append(time.perf_counter() - t._run_t0))
    trainer.train()
    results = read_results(trainer.csv)
    epochs = [{k[len(PREFIX):]: v for k, v in row.items() if k.startswith(PREFIX)} for row in results]
    metrics, suffix = trainer.metrics, METRIC_SUFFIX[trainer.args.task]  # final validation of best.pt
    return {
        "seed": seed,
        "task": trainer.args.task,
        "mAP50": metrics[f"metrics/mAP50({suffix})"],
        "mAP50-95": metrics[f"metrics/mAP50-95({suffix})"],
        "s/epoch": float(np.mean(epoch_times)) if epoch_times else float("nan"),
        "pos/GT": epochs[-1]["pos_per_gt"],
        "epochs": epochs,
        "map_per_epoch": [row.get(f"metrics/mAP50-95({suffix})", float("nan")) for row in results],
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The data and training flags of the demo's fast recipe (shared with `benchmarks/accuracy.py`)."""
    p.add_argument("--images", type=int, default=400, help="generated images (80%% train, 20%% val)")
    p.add_argument("--imgsz", type=int, default=128, help="image size of the data and of training")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--batch", type=int, default=8, help="batch size")
    p.add_argument("--lr0", type=float, default=0.005, help="AdamW learning rate")
    p.add_argument("--model", help="model YAML (trained from scratch) or weights (default: yolo11n's of the task)")
    p.add_argument("--device", default="cpu", help="'cpu', '0', '0,1', ...")
    p.add_argument("--workers", type=int, default=0, help="dataloader workers")


def fast_recipe(a: argparse.Namespace) -> dict[str, Any]:
    """Training arguments of the demo's fast recipe, from the flags of `add_arguments`.

    A short from-scratch schedule tuned so that stock reaches mAP50 > 0.3 on 2 CPU cores in about 4 minutes: AdamW,
    one warmup epoch, no mosaic (it slows early convergence on 128-px images). Not Ultralytics' default recipe.
    """
    model = a.model or TASK_MODELS[getattr(a, "task", "detect")]
    return dict(model=model, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device, workers=a.workers,
                pretrained=False, optimizer="AdamW", lr0=a.lr0, warmup_epochs=1, mosaic=0.0, close_mosaic=0)
