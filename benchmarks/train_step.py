"""Per-iteration training time of FSS vs Ultralytics' stock loss, paired iteration by iteration, with a profile.

    python benchmarks/train_step.py                           # yolo11n.yaml, 640 px, batch 8, 60 pairs (~10 min CPU)
    python benchmarks/train_step.py --imgsz 320 --pairs 20    # quick check
    python benchmarks/train_step.py --batch 16 --pairs 200 --device 0

Method:
    Two copies of the same model (--model YAML, same seed, so identical weights), one with Ultralytics' criterion
    (`DetectionModel.init_criterion`), one with FSS's (`build_fss_criterion`, package defaults), each with its own SGD
    optimizer as `DetectionTrainer` builds it. A pool of training batches comes from Ultralytics' own train
    dataloader and `preprocess_batch` (mosaic and all) on a generated dataset, and both models train on the same
    batches. One iteration = forward, loss (label assignment included), backward, optimizer step (AMP autocast on
    CUDA, as the trainer). Each pair of iterations times stock and FSS back to back on the same batch, alternating
    which goes first, so that load drift on a shared machine hits both alike; the first --warmup pairs are dropped.
    Overhead = median over pairs of (FSS time / stock time) - 1, with a 95% bootstrap interval over pairs.

    Profile: the assignment alone (the criterion's assigner call) and forward + loss (`model.loss`) are timed in
    every iteration, so the table also says what share of an iteration each takes, and where FSS's extra time goes.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

os.environ["YOLO_OFFLINE"] = "1"  # nothing can be downloaded here; set before ultralytics is imported

import torch  # noqa: E402
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils import DEFAULT_CFG_DICT, LOGGER  # noqa: E402
from ultralytics.utils.torch_utils import init_seeds  # noqa: E402

from ultralytics_fss import FSS_DEFAULTS, build_fss_criterion  # noqa: E402
from ultralytics_fss.synthetic import make_dataset  # noqa: E402
from ultralytics_fss.train.seam import main_branch  # noqa: E402

TARGET = 1.0  # max FSS overhead, percent (issue 8; the paper reports +2.1 to +3.1%)
BOOTSTRAP = 2000  # resamples for the 95% interval of the overhead


def overhead_interval(ratios: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Overhead in percent, (median of the paired ratios - 1) * 100, with a 95% bootstrap interval over pairs."""
    rng = np.random.default_rng(seed)
    r = np.asarray(ratios)
    boot = np.median(rng.choice(r, (BOOTSTRAP, r.size)), axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return (np.median(r) - 1) * 100, (low - 1) * 100, (high - 1) * 100


class Timed:
    """Wrap a callable and add the seconds of each call to `total` (synchronising CUDA around it)."""

    def __init__(self, fn, device: torch.device):
        self.fn, self.device, self.total = fn, device, 0.0

    def __call__(self, *args, **kwargs):
        sync(self.device)
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        sync(self.device)
        self.total += time.perf_counter() - t0
        return out


def sync(device: torch.device) -> None:
    """Wait for the device (CUDA) to finish its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """One model with one criterion and its optimizer: `step(batch)` trains one iteration and returns its timings."""

    def __init__(self, cfg: str, args, device: torch.device, fss: bool, trainer: DetectionTrainer):
        init_seeds(0)
        self.model = DetectionModel(cfg, nc=trainer.data["nc"], verbose=False).to(device)
        self.model.args = args
        self.model.names = trainer.data["names"]
        criterion = build_fss_criterion(self.model) if fss else self.model.init_criterion()
        self.model.criterion = criterion
        assigner = main_branch(criterion).assigner  # E2ELoss: the one-to-many branch's
        method = "assign" if fss else "forward"  # what each loss calls
        self.assign = Timed(getattr(assigner, method), device)
        setattr(assigner, method, self.assign)
        self.loss = Timed(self.model.loss, device)
        self.optimizer = trainer.build_optimizer(self.model, name="SGD", lr=0.01, momentum=0.937, decay=5e-4)
        self.device = device

    def step(self, batch: dict) -> tuple[float, float, float]:
        """Train one iteration; return (iteration, forward + loss, assignment) seconds."""
        self.assign.total = self.loss.total = 0.0
        sync(self.device)
        t0 = time.perf_counter()
        autocast = torch.autocast("cuda") if self.device.type == "cuda" else nullcontext()
        with autocast:
            loss, _ = self.loss(batch)
        loss.sum().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        sync(self.device)
        return time.perf_counter() - t0, self.loss.total, self.assign.total


def main(argv: list[str] | None = None) -> str:
    """Parse arguments, time both criteria pair by pair, print and return the Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="yolo11n.yaml", help="model YAML, trained from scratch")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--pairs", type=int, default=60, help="timed pairs of iterations (stock, FSS) after the warm-up")
    p.add_argument("--warmup", type=int, default=3, help="pairs dropped at the start")
    p.add_argument("--pool", type=int, default=8, help="distinct batches, cycled")
    p.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fss-train-step-") as tmp:
        images = math.ceil(a.pool * a.batch * 5 / 4) + 1  # make_dataset keeps images // 5 for validation
        data = make_dataset(Path(tmp) / "data", images=images, imgsz=a.imgsz, seed=0)
        trainer = DetectionTrainer(overrides=dict(model=a.model, data=str(data), imgsz=a.imgsz, batch=a.batch,
                                                  device=a.device, workers=0, project=tmp, plots=False))  # fmt: skip
        args = get_cfg({**DEFAULT_CFG_DICT, **FSS_DEFAULTS, "imgsz": a.imgsz, "batch": a.batch})
        runners = {name: Runner(a.model, args, trainer.device, name == "fss", trainer) for name in ("stock", "fss")}
        trainer.model = runners["stock"].model  # the dataloader reads its stride
        loader = trainer.get_dataloader(trainer.data["train"], a.batch, rank=-1, mode="train")
        batches = [trainer.preprocess_batch(b) for b in itertools.islice(itertools.cycle(loader), a.pool)]

        timings = {name: [] for name in runners}  # (iteration, loss, assignment) seconds per timed pair
        for i in range(a.warmup + a.pairs):
            batch = batches[i % len(batches)]
            order = ("stock", "fss") if i % 2 == 0 else ("fss", "stock")
            pair = {name: runners[name].step(batch) for name in order}
            if i >= a.warmup:
                for name in runners:
                    timings[name].append(pair[name])
            if (i + 1) % 10 == 0:
                LOGGER.info(f"pair {i + 1}/{a.warmup + a.pairs}: stock {pair['stock'][0] * 1e3:.0f} ms, "
                            f"fss {pair['fss'][0] * 1e3:.0f} ms")  # fmt: skip

    t = {name: np.asarray(v) * 1e3 for name, v in timings.items()}  # (pairs, 3) ms
    ratios = t["fss"][:, 0] / t["stock"][:, 0]
    overhead, low, high = overhead_interval(list(ratios))
    verdict = "met" if high <= TARGET else "met by the median only" if overhead <= TARGET else "NOT met"
    lines = ["| criterion | iteration ms | forward + loss ms | assignment ms | assignment share "
             "| forward + loss without assignment ms |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, v in t.items():
        it, loss, assign = np.median(v, axis=0)
        lines.append(f"| {name} | {it:.1f} | {loss:.1f} | {assign:.2f} | {assign / it:.2%} | {loss - assign:.1f} |")
    table = "\n".join(lines)
    extra = np.median(t["fss"] - t["stock"], axis=0)
    print(f"\n{a.model}, imgsz {a.imgsz}, batch {a.batch}, device {a.device}: {a.pairs} timed pairs "
          f"(after {a.warmup} warm-up), medians\n\n{table}\n\n"
          f"FSS overhead per iteration: {overhead:+.2f}% (95% interval {low:+.2f}% to {high:+.2f}%, "
          f"width {high - low:.2f} points; target <= {TARGET:.0f}%: {verdict})\n"
          f"Median paired difference FSS - stock: iteration {extra[0]:+.1f} ms, forward + loss {extra[1]:+.1f} ms, "
          f"assignment {extra[2]:+.2f} ms")  # fmt: skip
    return table


if __name__ == "__main__":
    main()
