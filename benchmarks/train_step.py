"""Per-iteration training time of FSSTrainer vs Ultralytics' stock DetectionTrainer.

    python benchmarks/train_step.py                              # yolo11n.yaml, 640 px, batch 8, 12 iters (~4 min)
    python benchmarks/train_step.py --imgsz 320 --iters 6        # quick check
    python benchmarks/train_step.py --batch 16 --iters 30 --device 0

Method:
    One generated dataset (`ultralytics_fss.synthetic.make_dataset`, images of side --imgsz, enough training images for
    --iters batches) in a temporary directory. Each run builds its trainer from scratch (--model YAML, same seed and
    arguments, plots=False, val=False, epochs=1, workers=0) and times every training iteration from the
    `on_train_batch_start` callback to `on_train_batch_end` (forward, loss with label assignment, backward, and the
    optimizer step when gradient accumulation calls for one, identically for both trainers; data loading excluded).
    After --iters iterations the run is stopped (so no validation runs). The first 2 iterations are warm-up and
    dropped. Runs alternate (stock, fss, stock, fss, ... for --rounds rounds) so that load drift on a shared machine
    hits both alike; each trainer's figure is the median over all its timed iterations.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ["YOLO_OFFLINE"] = "1"  # nothing can be downloaded here; set before ultralytics is imported

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss import FSSTrainer  # noqa: E402
from ultralytics_fss.synthetic import make_dataset  # noqa: E402

TRAINERS = {"stock": DetectionTrainer, "fss": FSSTrainer}
WARMUP = 2  # iterations dropped from each run
TARGET = 1.0  # max FSS overhead, percent (issue 8; the paper reports +2.1 to +3.1%)
BOOTSTRAP = 2000  # resamples for the 95% interval of the overhead


def overhead_interval(stock: list[float], fss: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Overhead of FSS in percent, (median ratio - 1) * 100, with a 95% bootstrap interval.

    Each trainer's iteration times are resampled with replacement, independently, `BOOTSTRAP` times; the interval is
    the 2.5th to 97.5th percentile of the resampled ratios of medians.
    """
    rng = np.random.default_rng(seed)
    st, fs = np.asarray(stock), np.asarray(fss)
    ratios = [np.median(rng.choice(fs, fs.size)) / np.median(rng.choice(st, st.size)) for _ in range(BOOTSTRAP)]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return (np.median(fs) / np.median(st) - 1) * 100, (low - 1) * 100, (high - 1) * 100


class _Done(Exception):
    """Raised from a callback to stop a run once its iterations are timed."""


def time_run(trainer_cls: type, data: Path, project: Path, name: str, iters: int, **args) -> list[float]:
    """Train `iters` iterations with `trainer_cls` and return the time (ms) of each iteration after the warm-up.

    Args:
        trainer_cls (type): `DetectionTrainer` or a subclass.
        data (Path): Dataset YAML.
        project (Path): Directory for the run's outputs.
        name (str): Run name.
        iters (int): Iterations to run, warm-up included.
        **args: Further training overrides (model, imgsz, batch, device).

    Returns:
        (list[float]): Milliseconds per iteration, iterations `WARMUP`..`iters - 1`.
    """
    times, t0 = [], [0.0]
    trainer = trainer_cls(overrides=dict(data=str(data), project=str(project), name=name, exist_ok=True, epochs=1,
                                         plots=False, val=False, workers=0, pretrained=False, seed=0, **args))

    def start(_) -> None:
        t0[0] = time.perf_counter()

    def end(t) -> None:
        if t.device.type == "cuda":
            import torch

            torch.cuda.synchronize(t.device)
        times.append((time.perf_counter() - t0[0]) * 1e3)
        if len(times) >= iters:
            raise _Done

    trainer.add_callback("on_train_batch_start", start)
    trainer.add_callback("on_train_batch_end", end)
    try:
        trainer.train()
    except _Done:
        pass
    if len(times) < iters:
        raise RuntimeError(f"{name}: only {len(times)} of {iters} iterations ran; the epoch is too short")
    return times[WARMUP:]


def main(argv: list[str] | None = None) -> str:
    """Parse arguments, time both trainers alternately, print and return the Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="yolo11n.yaml", help="model YAML, trained from scratch")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=12, help=f"iterations per run, the first {WARMUP} being warm-up")
    p.add_argument("--rounds", type=int, default=2, help="runs per trainer, alternating stock / fss")
    p.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    a = p.parse_args(argv)
    if a.iters <= WARMUP:
        p.error(f"--iters must exceed the {WARMUP} warm-up iterations")

    times = {name: [] for name in TRAINERS}
    with tempfile.TemporaryDirectory(prefix="fss-train-step-") as tmp:
        # make_dataset keeps images // 5 for validation: write enough for iters batches (+1 spare) of training images.
        images = math.ceil((a.iters + 1) * a.batch * 5 / 4) + 1
        data = make_dataset(Path(tmp) / "data", images=images, imgsz=a.imgsz, seed=0)
        for r in range(a.rounds):
            for name, cls in TRAINERS.items():
                LOGGER.info(f"\n=== {name}, round {r + 1}/{a.rounds} ===")
                ms = time_run(cls, data, Path(tmp) / "runs", f"{name}{r}", a.iters,
                              model=a.model, imgsz=a.imgsz, batch=a.batch, device=a.device)
                LOGGER.info(f"{name} round {r + 1}: median {statistics.median(ms):.1f} ms/iter over {len(ms)}")
                times[name] += ms

    med = {name: statistics.median(t) for name, t in times.items()}
    overhead, low, high = overhead_interval(times["stock"], times["fss"])
    verdict = "met" if high <= TARGET else "met by the median only" if overhead <= TARGET else "NOT met"
    lines = ["| trainer | median ms/iter | ratio to stock |", "|---|---:|---:|"]
    lines += [f"| {name} | {med[name]:.1f} | {med[name] / med['stock']:.3f} |" for name in TRAINERS]
    table = "\n".join(lines)
    print(f"\n{a.model}, imgsz {a.imgsz}, batch {a.batch}, device {a.device}: {a.rounds} runs per trainer x "
          f"{a.iters - WARMUP} timed iterations (after {WARMUP} warm-up)\n\n{table}\n\n"
          f"FSS overhead: {overhead:+.1f}% (95% interval {low:+.1f}% to {high:+.1f}%, width {high - low:.1f} points; "
          f"target <= {TARGET:.0f}%: {verdict})")
    return table


if __name__ == "__main__":
    main()
