"""The README's main job: stock TAL vs FSS on a generated dense, occluded small-object dataset, offline.

    python -m ultralytics_fss.demo                       # defaults: ~8 min on 2 CPU cores
    python -m ultralytics_fss.demo --task obb            # or segment, pose: rotated shapes labelled for the task
    python -m ultralytics_fss.demo --epochs 100 --images 4000 --imgsz 320 --batch 32 --seeds 0 1 2 --device 0  # GPU

Both runs share the data, the model YAML, every hyperparameter and the seed; only the trainer differs
(Ultralytics' trainer of the task vs `FSSTrainer`). The recipe is the demo's fast one (`ultralytics_fss.evidence.runs.fast_recipe`),
not Ultralytics' default. The table is printed and saved as Markdown and CSV.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.evidence.runs import add_arguments, fast_recipe, format_table, train_pair
from ultralytics_fss.synthetic import make_dataset


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, build the data, train both runs per seed, print and save the table; return its path."""
    p = argparse.ArgumentParser(prog="python -m ultralytics_fss.demo", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    add_arguments(p)
    p.add_argument("--task", default="detect", choices=("detect", "obb", "segment", "pose"), help="dense task")
    p.add_argument("--objects", type=int, nargs=2,
                   help="objects per image [low, high) (default 8 20; segment, pose: 4 10)")
    p.add_argument("--size", type=float, nargs=2,
                   help="object sides, fraction of the image (default 0.08 0.2; segment, pose: 0.15 0.3)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--project", default="runs/fss-demo", help="output directory")
    a = p.parse_args(argv)

    project = Path(a.project).resolve()
    larger = a.task in {"segment", "pose"}  # masks and keypoints of 10-px objects are not learnt in minutes
    objects, size = a.objects or ((4, 10) if larger else (8, 20)), a.size or ((0.15, 0.3) if larger else (0.08, 0.2))
    data = make_dataset(project / "data", images=a.images, imgsz=a.imgsz, seed=1234, task=a.task,
                        objects=tuple(objects), size=tuple(size))  # fmt: skip
    rows, recipe = [], fast_recipe(a)
    for seed in a.seeds:
        rows += train_pair(data, project, seed, task=a.task, **recipe)
    table = format_table(rows)
    title = (f"{colorstr('bold', 'Stock TAL vs FSS')} (task={a.task}, {recipe['model']}, {a.epochs} epochs, "
             f"{a.images} images)")
    LOGGER.info(f"\n{title}\n{table}")
    out = project / "results.md"
    out.write_text(table + "\n")
    with open(project / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "epochs"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    LOGGER.info(f"Table saved to {colorstr('bold', out)}")
    return out


if __name__ == "__main__":
    main()
