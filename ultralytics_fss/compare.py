"""``python -m ultralytics_fss.compare``: assignment variants x seeds on your data, paired by seed, with COCO metrics.

The command line of :mod:`ultralytics_fss.evidence.compare`. Extra ``key=value`` arguments are Ultralytics train
arguments, passed to every run. Rerun the same command to resume; a run is reused only when everything that
determines its result is the same (`ultralytics_fss.evidence.identity`), otherwise it trains into a new folder.

Examples:
    python -m ultralytics_fss.compare --data data.yaml --model yolo11n.yaml --variants tal fss maxiou atss simota gfl \\
        --seeds 0 1 2 --epochs 100 --project runs/compare
    python -m ultralytics_fss.compare --data data.yaml --variants tal fss "q5:fss_q=5" --seeds 0 1 --epochs 50 \\
        --project runs/q lr0=0.005 mosaic=0.5
    python -m ultralytics_fss.compare --data data.yaml --variants tal fss --seeds 0 1 2 --ray auto  # a Ray cluster
"""

from __future__ import annotations

from pathlib import Path

from ultralytics_fss.large_images.files import unwritable
from ultralytics_fss.evidence.compare import BUILTIN, CommandLine, run_study


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, train what is missing, print the table, write summary.csv, summary.md and compare.png."""
    from ultralytics.cfg import smart_value
    from ultralytics.utils import DEFAULT_CFG_DICT

    p = CommandLine(prog="python -m ultralytics_fss.compare", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="dataset YAML")
    p.add_argument("--model", default="yolo11n.yaml", help="model YAML (from scratch) or weights")
    p.add_argument("--variants", nargs="+", default=["tal", "fss"],
                   help=f"built-in {sorted(BUILTIN)} or name:fss_key=value,...; the first is the reference")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per variant and seed")
    p.add_argument("--epochs", type=int, default=100, help="training epochs of every run")
    p.add_argument("--imgsz", type=int, default=640, help="training image size")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--device", default="cpu", help="device of every run, e.g. cpu, 0")
    p.add_argument("--devices", help="comma-separated GPUs: one run per GPU at a time (e.g. 0,1,2,3)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once on --device (CPU)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each (variant, seed) as a Ray task: on the cluster at ADDRESS (e.g. auto, "
        "ray://head:10001), or without ADDRESS on Ray's default (RAY_ADDRESS, else a new local "
        "instance); the project folder must be on a filesystem the nodes share",
    )
    p.add_argument("--cpus-per-run", type=int, default=1,
                   help="with --ray on a cluster without GPUs: CPUs per run (with GPUs: one GPU per run)")
    p.add_argument("--project", default="runs/compare", help="output folder: runs, summary.csv, summary.md")
    p.add_argument("extra", nargs="*", help="further Ultralytics train arguments, key=value")
    a = p.parse_args(argv)
    if a.ray and "=" in a.ray:  # `--ray lr0=0.01`: a train argument, not a Ray address (those have no "=")
        a.extra, a.ray = [a.ray, *a.extra], ""
    for flag, value, low in (("--epochs", a.epochs, 1), ("--imgsz", a.imgsz, 32), ("--batch", a.batch, 1),
                             ("--jobs", a.jobs, 1), ("--cpus-per-run", a.cpus_per_run, 1)):
        if value < low:
            p.error(f"{flag} {value}: expected an integer >= {low}")
    if why := unwritable(a.project):
        p.error(f"--project {a.project}: cannot write there: {why}")
    if a.ray is not None and (a.devices or a.jobs > 1):
        p.error("--ray schedules the runs itself: give it without --jobs and --devices")
    train_args = dict(model=a.model, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device)
    for item in a.extra:
        key, eq, value = item.partition("=")
        if not eq or key not in DEFAULT_CFG_DICT or key.startswith("fss_"):
            p.error(f"{item!r} is not an Ultralytics train argument key=value (fss_* keys go in a variant)")
        train_args[key] = smart_value(value)
    devices = a.devices.split(",") if a.devices else None
    return run_study(p, a.data, a.variants, a.seeds, train_args, a.project, jobs=a.jobs, devices=devices, ray=a.ray,
                     cpus_per_run=a.cpus_per_run)


if __name__ == "__main__":
    main()
