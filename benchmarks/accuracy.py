"""Stock TAL vs FSS variants under Ultralytics' default recipe, on two generated dense datasets, paired by seed.

    python benchmarks/accuracy.py --jobs 2                      # the README study: 2 datasets x 3 seeds x 3 runs
    python benchmarks/accuracy.py --datasets shapes --seeds 0 --variants stock paper fss box-wt tal-target radius rescue
    python benchmarks/accuracy.py --recipe fast --epochs 20     # the demo's tuned recipe, as an extra column only
    python benchmarks/accuracy.py --device 0 --jobs 1           # with a GPU

Recipe `default` (the basis of every default): only data, model (yolo11n.yaml from scratch), epochs (40), imgsz,
batch (16) and seed are set; optimizer, learning rate, warm-up, mosaic, loss gains... stay at Ultralytics' defaults
(`optimizer=auto` picks AdamW at a small learning rate for runs this short). `device` and `workers` are set for the
hardware only. Recipe `fast` is the demo's (AdamW lr 0.005, no mosaic; `ultralytics_fss.evidence.runs.fast_recipe`).

Datasets (generated offline by `ultralytics_fss.synthetic.make_dataset`, the same every time):
    shapes    500 images of 160 px (400 train), 6-21 overlapping discs/squares/crosses each, 3 classes; imgsz 160
    textures  300 images of 160-320 px (240 train), 8-29 overlapping 8-40 px texture patches each on a cluttered
              background, 8 classes told apart by texture only; imgsz 256

Variants (all share data, recipe and seed; `fss_*` keys in `ultralytics_fss.train.cfg.FSS_KEYS`):
    stock       Ultralytics' DetectionTrainer (TaskAlignedAssigner, its loss)
    fss         FSSTrainer with the package defaults: box-wt with TAL-scaled soft targets (s / max s * max IoU per
                GT), i.e. Ultralytics' TAL loss on FSS's positives and Eq. (8) weights
    paper       Eq. (9) literally: box and DFL weighted by w_i, normaliser = number of positives, IoU soft target
    paper-tal   paper with TAL-scaled soft targets (s / max s * max IoU per GT) only
    box-wt      box and DFL weighted by w_i * IoU_i, normaliser sum w_i * IoU_i (Ultralytics' quality weighting)
    radius      box-wt with candidates within 2.5 strides of the GT centre too (YOLOX SimOTA's region)
    rescue      box-wt with `fss_rescue=True` (a GT that lost its positives in conflicts takes a free anchor)
    fss-rescue  fss with `fss_rescue=True`
    sel         paper selection only: no prior (Eq. 4), no weights

Runs are deterministic. Each run's result is saved as JSON under --project/results (an interrupted study resumes
where it stopped); the tables are rebuilt from all saved results: final mAP50-95 of `best.pt` per dataset, variant
and seed with the paired difference to stock, and the per-epoch assignment statistics (`fss/*`, stock included).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss import FSSTrainer  # noqa: E402
from ultralytics_fss.evidence.runs import add_arguments, fast_recipe, train_run  # noqa: E402
from ultralytics_fss.synthetic import make_dataset  # noqa: E402

DATASETS = {  # make_dataset arguments, and the training imgsz
    "shapes": (dict(images=500, imgsz=160, objects=(6, 22), seed=1234), 160),
    "textures": (dict(images=300, imgsz=160, objects=(8, 30), seed=4321, kind="textures"), 256),
}
BOX_WT = dict(fss_box="w_target", fss_norm="target", fss_target="iou", fss_radius=0.0)
VARIANTS = {  # None: the stock trainer
    "stock": None,
    "fss": {},
    "paper": dict(fss_box="w", fss_norm="npos", fss_target="iou", fss_radius=0.0),
    "paper-tal": dict(fss_box="w", fss_norm="npos", fss_target="tal", fss_radius=0.0),
    "box-wt": BOX_WT,
    "radius": {**BOX_WT, "fss_radius": 2.5},
    "rescue": {**BOX_WT, "fss_rescue": True},
    "fss-rescue": {"fss_rescue": True},
    "sel": dict(fss_box="w", fss_norm="npos", fss_target="iou", fss_radius=0.0, fss_prior=False, fss_weights=False),
}
DEFAULT_VARIANTS = ["stock", "paper", "fss"]


def recipe(a: argparse.Namespace, imgsz: int) -> dict:
    """Training arguments of one run besides data, seed and the variant's `fss_*` keys."""
    if a.recipe == "fast":
        return {**fast_recipe(a), "imgsz": imgsz}
    return dict(model=a.model, epochs=a.epochs, imgsz=imgsz, batch=a.batch, device=a.device, workers=a.workers)


def run_one(a: argparse.Namespace, dataset: str, variant: str, seed: int) -> Path:
    """Train one (dataset, variant, seed) run in this process and save its result as JSON; return the JSON path."""
    make, imgsz = DATASETS[dataset]
    project = Path(a.project).resolve() / dataset
    data = project / "data" / "data.yaml"
    extra = VARIANTS[variant]
    cls = DetectionTrainer if extra is None else FSSTrainer
    row = train_run(variant, cls, data, project, seed, **recipe(a, imgsz), **(extra or {}))
    out = result_path(a, dataset, variant, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**row, "dataset": dataset, "fss": extra, "recipe": a.recipe}))
    return out


def result_path(a: argparse.Namespace, dataset: str, variant: str, seed: int) -> Path:
    """Where the JSON result of one run is saved."""
    return Path(a.project).resolve() / "results" / f"{dataset}-{variant}-seed{seed}.json"


def run_in_subprocess(a: argparse.Namespace, argv: list[str], dataset: str, variant: str, seed: int) -> None:
    """Run `run_one` in a fresh process, `--jobs` of them at once, each with its share of the CPU threads."""
    threads = max(1, (os.cpu_count() or 1) // a.jobs)
    log = Path(a.project).resolve() / "logs" / f"{dataset}-{variant}-seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, *argv, "--one", dataset, variant, str(seed)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    LOGGER.info(f"{dataset} {variant} seed {seed}: {'done' if rc == 0 else f'FAILED (exit {rc}), see {log}'}")


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per variant with each seed's mAP50-95, mean +- std, and the paired difference to stock."""
    seeds = sorted({r["seed"] for r in rows})
    get = {(r["run"], r["seed"]): r for r in rows}
    cols = " | ".join(f"seed {s}" for s in seeds)
    lines = [f"| variant | {cols} | mean +- std | vs stock, per seed (points) |", "|" + "---|" * (len(seeds) + 3)]
    for name in [v for v in VARIANTS if any(r["run"] == v for r in rows)]:
        maps = [get[(name, s)]["mAP50-95"] if (name, s) in get else None for s in seeds]
        cells = [f"{m:.3f}" if m is not None else "-" for m in maps]
        done = [m for m in maps if m is not None]
        diffs = [100 * (get[(name, s)]["mAP50-95"] - get[("stock", s)]["mAP50-95"])
                 for s in seeds if (name, s) in get and ("stock", s) in get]  # fmt: skip
        diff = ", ".join(f"{d:+.1f}" for d in diffs) + f" (mean {np.mean(diffs):+.1f})" if name != "stock" else "-"
        std = np.std(done, ddof=1) if len(done) > 1 else 0.0
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(done):.3f} +- {std:.3f} | {diff} |")
    return "\n".join(lines)


STAT_KEYS = ("pos_per_gt", "no_pos_share", "k_mean", "target_mean", "w_min", "w_max")


def stats_table(rows: list[dict], epochs: tuple[int, ...]) -> str:
    """Markdown: the assignment statistics of each run at the given epochs (1-based), seed by seed."""
    lines = ["| run | seed | epoch | " + " | ".join(STAT_KEYS) + " |", "|" + "---|" * (len(STAT_KEYS) + 3)]
    for r in rows:
        for e in epochs:
            if e <= len(r["epochs"]):
                s = r["epochs"][e - 1]
                lines.append(f"| {r['run']} | {r['seed']} | {e} | "
                             + " | ".join(f"{s[k]:.3g}" if k in s else "-" for k in STAT_KEYS) + " |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Build the datasets, train every missing (dataset, variant, seed) run, print and save the tables."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(p)
    p.set_defaults(epochs=40, batch=16, workers=1)
    p.add_argument("--recipe", choices=["default", "fast"], default="default")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--project", default="runs/fss-accuracy")
    p.add_argument("--one", nargs=3, metavar=("DATASET", "VARIANT", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        run_one(a, a.one[0], a.one[1], int(a.one[2]))
        return
    project = Path(a.project).resolve()
    for name in a.datasets:
        if not (project / name / "data" / "data.yaml").exists():
            make_dataset(project / name / "data", **DATASETS[name][0])
    todo = [(d, v, s) for d in a.datasets for s in a.seeds for v in a.variants
            if not result_path(a, d, v, s).exists()]  # fmt: skip; seed-major: an interrupted study keeps pairs
    if a.jobs > 1:
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(lambda job: run_in_subprocess(a, argv, *job), todo))
    else:
        for job in todo:
            run_one(a, *job)

    report = []
    for name in a.datasets:
        rows = [json.loads(f.read_text()) for f in sorted((project / "results").glob(f"{name}-*.json"))]
        rows = [r for r in rows if r["run"] in a.variants and r["seed"] in a.seeds]
        if not rows:
            continue
        report += [f"### {name} ({a.recipe} recipe, {a.epochs} epochs, mAP50-95 of best.pt)", summary_table(rows), ""]
        epochs = tuple(sorted({1, 10, a.epochs}))
        report += [f"Assignment statistics, epochs {epochs}", stats_table(rows, epochs), ""]
        with open(project / f"{name}_stats.csv", "w", newline="") as f:
            per_epoch = [{"run": r["run"], "seed": r["seed"], "epoch": i + 1, **e}
                         for r in rows for i, e in enumerate(r["epochs"])]  # fmt: skip
            keys = sorted({k for s in per_epoch for k in s}, key=lambda k: (k not in ("run", "seed", "epoch"), k))
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(per_epoch)
    (project / "accuracy.md").write_text("\n".join(report))
    LOGGER.info("\n" + "\n".join(report) + f"\nSaved to {project}")


if __name__ == "__main__":
    main()
