"""``python -m ultralytics_fss.compare``: assignment variants x seeds on your data, paired by seed, with COCO metrics.

The command line of :mod:`ultralytics_fss.evidence.compare`. Extra ``key=value`` arguments are Ultralytics train
arguments, passed to every run.

Examples:
    python -m ultralytics_fss.compare --data data.yaml --model yolo11n.yaml --variants tal fss maxiou atss simota \\
        --seeds 0 1 2 --epochs 100 --project runs/compare
    python -m ultralytics_fss.compare --data data.yaml --variants tal fss "q5:fss_q=5" --seeds 0 1 --epochs 50 \\
        --project runs/q lr0=0.005 mosaic=0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.evidence.compare import BUILTIN, parse_variant, plot_compare, run_all, summary_table


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, train what is missing, print the table, write summary.csv and compare.png."""
    from ultralytics.cfg import smart_value
    from ultralytics.utils import DEFAULT_CFG_DICT

    p = argparse.ArgumentParser(prog="python -m ultralytics_fss.compare", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("--data", required=True, help="dataset YAML")
    p.add_argument("--model", default="yolo11n.yaml", help="model YAML (from scratch) or weights")
    p.add_argument("--variants", nargs="+", default=["tal", "fss"],
                   help=f"built-in {sorted(BUILTIN)} or name:fss_key=value,...; the first is the reference")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--devices", help="comma-separated GPUs: one run per GPU at a time (e.g. 0,1,2,3)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once on --device (CPU)")
    p.add_argument("--project", default="runs/compare")
    p.add_argument("extra", nargs="*", help="further Ultralytics train arguments, key=value")
    a = p.parse_args(argv)
    train_args = dict(model=a.model, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device)
    for item in a.extra:
        key, eq, value = item.partition("=")
        if not eq or key not in DEFAULT_CFG_DICT or key.startswith("fss_"):
            p.error(f"{item!r} is not an Ultralytics train argument key=value (fss_* keys go in a variant)")
        train_args[key] = smart_value(value)
    try:
        for v in a.variants:
            parse_variant(v)
    except ValueError as e:
        p.error(str(e))
    from ultralytics.nn.tasks import guess_model_task

    task = guess_model_task(a.model)
    if task not in {"detect", "obb", "segment", "pose"}:
        p.error(f"--model {a.model} is a {task} model; FSS trains detect, obb, segment and pose models")
    axis_aligned = {"maxiou", "atss", "simota"}
    baselines = [v for v in a.variants if (parse_variant(v)[1] or {}).get("fss_assigner") in axis_aligned]
    if task == "obb" and baselines:
        p.error(f"variants {baselines} assign axis-aligned boxes; --model {a.model} is an obb model")
    devices = a.devices.split(",") if a.devices else None
    rows = run_all(a.project, a.data, a.variants, a.seeds, train_args, jobs=a.jobs, devices=devices)
    project = Path(a.project).resolve()
    coco = task == "detect"
    table = (summary_table(rows, "AP") + "\n\n" if coco else "") + summary_table(rows, "mAP50-95")
    (project / "summary.md").write_text(table + "\n")
    plot_compare(rows, project / "compare.png")
    what = "COCO AP, then Ultralytics mAP50-95" if coco else f"Ultralytics mAP50-95 of the task ({task})"
    LOGGER.info(f"\n{colorstr('bold', what)}\n{table}")
    LOGGER.info(f"Saved summary.csv, summary.md, compare.png to {colorstr('bold', project)}")
    return project


if __name__ == "__main__":
    main()
