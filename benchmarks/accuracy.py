"""Stock TAL vs FSS variants under Ultralytics' default recipe, on two generated dense datasets, paired by seed.

    python benchmarks/accuracy.py --jobs 2                      # the docs' study: 2 datasets x 3 seeds x 3 variants
    python benchmarks/accuracy.py --datasets shapes --seeds 0 --variants tal paper paper-tal box-wt radius rescue fss
    python benchmarks/accuracy.py --recipe fast --epochs 20     # the demo's tuned recipe, as an extra column only
    python benchmarks/accuracy.py --device 0                    # with a GPU
    python benchmarks/accuracy.py --model yolo26n.yaml --variants tal fss fss-o2o --project runs/fss-accuracy-26
    python benchmarks/accuracy.py --variants table4 --jobs 2    # the paper's Table 4 settings, u and q, on both sets

A thin call of `python -m ultralytics_fss.compare` (`ultralytics_fss.evidence.compare.run_all`) per dataset: every
(variant, seed) run trains with identical data, arguments and seed, is scored with COCO metrics (pycocotools) and
saved under --project/{dataset}/results; an interrupted study resumes where it stopped.

Recipe `default` (the basis of every default): only data, model (yolo11n.yaml from scratch), epochs (40), imgsz,
batch (16) and seed are set; optimizer, learning rate, warm-up, mosaic, loss gains... stay at Ultralytics' defaults
(`optimizer=auto` picks AdamW at a small learning rate for runs this short). `device` and `workers` are set for the
hardware only. Recipe `fast` is the demo's (AdamW lr 0.005, no mosaic; `ultralytics_fss.evidence.runs.fast_recipe`).

Datasets (generated offline by `ultralytics_fss.synthetic.make_dataset`, the same every time):
    shapes    500 images of 160 px (400 train), 6-21 overlapping discs/squares/crosses each, 3 classes; imgsz 160
    textures  300 images of 160-320 px (240 train), 8-29 overlapping 8-40 px texture patches each on a cluttered
              background, 8 classes told apart by texture only; imgsz 256

Variants (`fss_*` keys in `ultralytics_fss.train.cfg.FSS_KEYS`):
    tal         Ultralytics' DetectionTrainer (TaskAlignedAssigner, its loss): the stock reference
    fss         FSSTrainer with the package defaults: Ultralytics' TAL loss (TAL-scaled soft targets s / max s *
                max IoU per GT, box terms weighted by w * t, normaliser sum w * t) on FSS's positives and weights
    paper       Eq. (9) literally: box and DFL weighted by w_i, normaliser = number of positives, IoU soft target
    paper-tal   paper with TAL-scaled soft targets only
    box-wt      box and DFL weighted by w_i * IoU_i, normaliser sum w_i * IoU_i, IoU soft target
    radius      box-wt with candidates within 2.5 strides of the GT centre too (YOLOX SimOTA's region)
    rescue      box-wt with `fss_rescue=True` (a GT that lost its positives in conflicts takes a free anchor)
    fss-rescue  fss with `fss_rescue=True`
    fss-o2o     fss with `fss_o2o=fss` (end-to-end heads: FSS at k = 1 on the one-to-one branch too)
    a1-b10, a1-b8, a0.5-b8, a0.5-b4   the paper's Table 4 (alpha, beta) settings besides the default (0.5, 6)
    u1, u4, q5, q15                   u and q around the defaults (2 and 10); `--variants table4` runs them all
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss.evidence.compare import STAT_KEYS, run_all, summary_table  # noqa: E402
from ultralytics_fss.evidence.runs import add_arguments, fast_recipe  # noqa: E402
from ultralytics_fss.synthetic import make_dataset  # noqa: E402

DATASETS = {  # make_dataset arguments, and the training imgsz
    "shapes": (dict(images=500, imgsz=160, objects=(6, 22), seed=1234), 160),
    "textures": (dict(images=300, imgsz=160, objects=(8, 30), seed=4321, kind="textures"), 256),
}
PAPER = "fss_box=w,fss_norm=npos,fss_target=iou"
BOX_WT = "fss_box=w_target,fss_norm=target,fss_target=iou"
VARIANTS = {  # name: `compare` variant spec
    "tal": "tal",
    "fss": "fss",
    "paper": f"paper:{PAPER}",
    "paper-tal": "paper-tal:fss_box=w,fss_norm=npos,fss_target=tal",
    "box-wt": f"box-wt:{BOX_WT}",
    "radius": f"radius:{BOX_WT},fss_radius=2.5",
    "rescue": f"rescue:{BOX_WT},fss_rescue=True",
    "fss-rescue": "fss-rescue:fss_rescue=True",
    "fss-o2o": "fss-o2o:fss_o2o=fss",
    # the paper's Table 4 (alpha, beta) settings, and u, q around the defaults (alpha 0.5, beta 6, u 2, q 10)
    "a1-b10": "a1-b10:fss_alpha=1.0,fss_beta=10.0",
    "a1-b8": "a1-b8:fss_alpha=1.0,fss_beta=8.0",
    "a0.5-b8": "a0.5-b8:fss_alpha=0.5,fss_beta=8.0",
    "a0.5-b4": "a0.5-b4:fss_alpha=0.5,fss_beta=4.0",
    "u1": "u1:fss_u=1.0",
    "u4": "u4:fss_u=4.0",
    "q5": "q5:fss_q=5",
    "q15": "q15:fss_q=15",
}
TABLE4 = ["tal", "fss", "a1-b10", "a1-b8", "a0.5-b8", "a0.5-b4", "u1", "u4", "q5", "q15"]  # fss = (0.5, 6), u 2, q 10
DEFAULT_VARIANTS = ["tal", "paper", "fss"]


def stats_table(rows: list[dict], epochs: tuple[int, ...]) -> str:
    """Markdown: the assignment statistics of each run at the given epochs (1-based)."""
    lines = ["| variant | seed | epoch | " + " | ".join(STAT_KEYS) + " |", "|" + "---|" * (len(STAT_KEYS) + 3)]
    for r in rows:
        for e in epochs:
            if e <= len(r["epochs"]):
                s = r["epochs"][e - 1]
                lines.append(f"| {r['variant']} | {r['seed']} | {e} | "
                             + " | ".join(f"{s[k]:.3g}" if k in s else "-" for k in STAT_KEYS) + " |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Build the datasets, train what is missing, print and save the tables; return them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(p)
    p.set_defaults(epochs=40, batch=16, workers=1)
    p.add_argument("--recipe", choices=["default", "fast"], default="default")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=[*VARIANTS, "table4"])
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--project", default="runs/fss-accuracy")
    a = p.parse_args(argv)
    a.variants = [v for name in a.variants for v in (TABLE4 if name == "table4" else [name])]
    project = Path(a.project).resolve()
    report = []
    for name in a.datasets:
        make, imgsz = DATASETS[name]
        data = make_dataset(project / name / "data", **make)  # the same every time; reused when present
        if a.recipe == "fast":
            args = {**fast_recipe(a), "imgsz": imgsz}
        else:
            args = dict(model=a.model or "yolo11n.yaml", epochs=a.epochs, imgsz=imgsz, batch=a.batch, device=a.device,
                        workers=a.workers)
        rows = run_all(project / name, str(data), [VARIANTS[v] for v in a.variants], a.seeds, args, jobs=a.jobs)
        epochs = tuple(sorted({1, 10, a.epochs}))
        report += [f"### {name} ({a.recipe} recipe, {a.epochs} epochs, best.pt)", "", "mAP50-95 (Ultralytics)",
                   summary_table(rows, "mAP50-95"), "", "COCO AP (pycocotools)", summary_table(rows, "AP"), "",
                   f"Assignment statistics, epochs {epochs}", stats_table(rows, epochs), ""]  # fmt: skip
        stock = [r["mAP50-95"] for r in rows if r["variant"] == "tal"]
        if len(stock) > 1:
            report += [f"Stock seed-to-seed spread (max - min mAP50-95): {100 * np.ptp(stock):.1f} points", ""]
    text = "\n".join(report)
    (project / "accuracy.md").write_text(text)
    LOGGER.info("\n" + text + f"\nSaved to {project}")
    return text


if __name__ == "__main__":
    main()
