"""Stock TAL vs FSS, and the paper's ablation, on the demo data over several seeds, paired by seed.

    python benchmarks/accuracy.py                                   # 3 seeds x 6 variants (~75 min, 2 CPU cores)
    python benchmarks/accuracy.py --seeds 0 --variants stock fss    # one pair
    python benchmarks/accuracy.py --epochs 100 --images 4000 --imgsz 320 --device 0   # with a GPU

Variants (all share data, schedule and seed; see `ultralytics_fss.train.cfg.FSS_KEYS`):
    stock       Ultralytics' DetectionTrainer (TaskAlignedAssigner)
    sel         FSS selection only: dynamic k from plain IoU (Eq. 4), weights off
    sel+prior   + Gaussian prior in the dynamic k (Eq. 7)
    fss         + Eq. 8 weights = the paper's method, normaliser `target`
    fss-npos    the paper's method with the paper's normaliser (number of positives, the package default)
    fss-rescue  fss + `fss_rescue=True` (a GT that lost all its positives in conflicts takes its best free anchor)
    fss-o2o     fss + `fss_o2o=fss`, for end-to-end heads (compare with `fss` using --model yolo26n.yaml)

Prints a table of final mAP50 / mAP50-95 per variant and seed, the mean, and the paired difference to stock; and a
per-epoch table of assignment statistics (positives per GT, mean/max k, mean soft target, weight min/mean/max, share
of GTs without a positive). Both are also written as Markdown and CSV under --project.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss import FSSTrainer  # noqa: E402
from ultralytics_fss.evidence.runs import add_arguments, fast_recipe, train_run  # noqa: E402
from ultralytics_fss.synthetic import make_dataset  # noqa: E402

VARIANTS = {
    "stock": (DetectionTrainer, {}),
    "sel": (FSSTrainer, dict(fss_prior=False, fss_weights=False)),
    "sel+prior": (FSSTrainer, dict(fss_weights=False)),
    "fss": (FSSTrainer, dict(fss_norm="target")),
    "fss-npos": (FSSTrainer, dict(fss_norm="npos")),
    "fss-rescue": (FSSTrainer, dict(fss_rescue=True)),  # opt-in: no GT left without a positive by conflicts
    "fss-o2o": (FSSTrainer, dict(fss_o2o="fss")),  # end-to-end heads: FSS with k = 1 on the one-to-one branch
}
DEFAULT_VARIANTS = ["stock", "sel", "sel+prior", "fss", "fss-npos", "fss-rescue"]


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per variant with each seed's mAP50-95, the mean, and the mean paired difference to stock."""
    seeds = sorted({r["seed"] for r in rows})
    get = {(r["run"], r["seed"]): r for r in rows}
    cols = " | ".join(f"seed {s} mAP50 / 50-95" for s in seeds)
    head = f"| variant | {cols} | mean mAP50-95 | vs stock (paired) |"
    lines = [head, "|" + "---|" * (len(seeds) + 3)]
    for name in dict.fromkeys(r["run"] for r in rows):
        cells, maps, diffs = [], [], []
        for s in seeds:
            r = get.get((name, s))
            cells.append(f"{r['mAP50']:.3f} / {r['mAP50-95']:.3f}" if r else "-")
            if r:
                maps.append(r["mAP50-95"])
                if (base := get.get(("stock", s))) is not None:
                    diffs.append(r["mAP50-95"] - base["mAP50-95"])
        diff = " ".join(f"{d:+.3f}" for d in diffs) if name != "stock" and diffs else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(maps):.3f} | {diff} |")
    return "\n".join(lines)


def stats_rows(rows: list[dict]) -> list[dict]:
    """One row per (variant, seed, epoch) with the `fss/*` statistics of that epoch."""
    return [{"run": r["run"], "seed": r["seed"], "epoch": i + 1, **e} for r in rows for i, e in enumerate(r["epochs"])]


def main(argv: list[str] | None = None) -> None:
    """Train every (variant, seed) pair and print / save the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--project", default="runs/fss-accuracy")
    a = p.parse_args(argv)
    project = Path(a.project).resolve()
    data = make_dataset(project / "data", images=a.images, imgsz=a.imgsz, seed=1234)
    rows = []
    for seed in a.seeds:  # seed-major order: an interrupted run still has complete pairs
        for name in a.variants:
            trainer_cls, extra = VARIANTS[name]
            rows.append(train_run(name, trainer_cls, data, project, seed, **fast_recipe(a), **extra))
            table = summary_table(rows)
            (project / "accuracy.md").write_text(table + "\n")
    stats = stats_rows(rows)
    keys = sorted({k for s in stats for k in s}, key=lambda k: (k not in ("run", "seed", "epoch"), k))
    with open(project / "assignment_stats.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(stats)
    last = [s for s in stats if s["epoch"] in (1, a.epochs // 2, a.epochs)]
    stat_keys = [k for k in keys if k not in ("run", "seed", "epoch")]
    lines = ["| run | seed | epoch | " + " | ".join(stat_keys) + " |", "|" + "---|" * (len(stat_keys) + 3)]
    for s in last:
        lines.append(f"| {s['run']} | {s['seed']} | {s['epoch']} | "
                     + " | ".join(f"{s[k]:.3g}" if k in s else "-" for k in stat_keys) + " |")
    (project / "assignment_stats.md").write_text("\n".join(lines) + "\n")
    LOGGER.info(f"\nFinal accuracy ({a.model}, {a.epochs} epochs, {a.images} images)\n{table}")
    LOGGER.info("\nAssignment statistics (first, middle, last epoch)\n" + "\n".join(lines))
    LOGGER.info(f"Saved to {project}")


if __name__ == "__main__":
    main()
