"""The main job of the README's quick start: stock TAL vs FSS on a generated dense, occluded small-object dataset, offline.

    python -m ultralytics_fss.demo                       # defaults: ~5 min on 2 quiet CPU cores
    python -m ultralytics_fss.demo --task obb            # or segment, pose: rotated shapes labelled for the task
    python -m ultralytics_fss.demo --epochs 100 --images 4000 --imgsz 320 --batch 32 --seeds 0 1 2 --device 0  # GPU

A call of the comparison engine (`python -m ultralytics_fss.compare`, variants `tal` and `fss`) on data generated
into a folder named by what made it (`PROJECT/data/{task}-shapes-{images}img-{imgsz}px-...`): both runs share the
data, the model YAML, every hyperparameter and the seed; only the trainer differs (Ultralytics' trainer of the task
vs `FSSTrainer`). The recipe is the demo's fast one (`ultralytics_fss.evidence.runs.fast_recipe`), not Ultralytics'
default. Runs done before with the same arguments are reused, others are kept; the tables are printed and saved.
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.large_images.files import unwritable
from ultralytics_fss.evidence.compare import CommandLine, run_study
from ultralytics_fss.evidence.runs import add_arguments, fast_recipe
from ultralytics_fss.synthetic import DEMO_SEED, dataset_name, make_dataset

DATA_SEED = DEMO_SEED  # the demo's dataset is the same every time
QUIET = ("The documented time for the defaults (4.6 minutes, docs/index.md) was measured on 2 quiet CPU cores: other "
         "work on the machine stretches it.")
REPRODUCIBILITY = (
    "Reproducibility: the data are the same everywhere and every run is seeded and deterministic, so the same command "
    "gives the same numbers on the same machine, or on one with the same CPU model and core count and the same torch "
    "and ultralytics versions. Elsewhere floating-point sums round differently (Ultralytics trains on min(8, cores - "
    "1) CPU threads), 20 short epochs amplify that, and each number moves by a few points, FSS's and stock's "
    "independently: one seed shows no difference between them; --seeds 0 1 2 gives a paired 95% interval."
)


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, build (or reuse) the data, train what is missing per seed, print and save the tables.

    Returns:
        (Path): The project folder (`summary.md`, `summary.csv`, `compare.png`, and each study under `summaries/`).
    """
    p = CommandLine(prog="python -m ultralytics_fss.demo", description=__doc__.split("\n")[0])
    add_arguments(p)
    p.add_argument("--task", default="detect", choices=("detect", "obb", "segment", "pose"), help="dense task")
    p.add_argument("--objects", type=int, nargs=2,
                   help="objects per image [low, high) (default 8 20; segment, pose: 4 10)")
    p.add_argument("--size", type=float, nargs=2,
                   help="object sides, fraction of the image (default 0.08 0.2; segment, pose: 0.15 0.3)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one TAL run and one FSS run per seed")
    p.add_argument("--project", default="runs/fss-demo", help="output directory")
    a = p.parse_args(argv)
    if why := unwritable(a.project):
        p.error(f"--project {a.project}: cannot write there: {why}")

    larger = a.task in {"segment", "pose"}  # masks and keypoints of 10-px objects are not learnt in minutes
    objects, size = a.objects or ((4, 10) if larger else (8, 20)), a.size or ((0.15, 0.3) if larger else (0.08, 0.2))
    spec = dict(images=a.images, imgsz=a.imgsz, objects=tuple(objects), size=tuple(size), seed=DATA_SEED, task=a.task)
    for flag, value, low in (("--epochs", a.epochs, 1), ("--batch", a.batch, 1)):
        if value < low:
            p.error(f"{flag} {value}: expected an integer >= {low}")
    try:
        data = make_dataset(Path(a.project) / "data" / dataset_name(**spec), **spec)
    except (ValueError, FileExistsError) as e:
        p.error(str(e))  # names the argument: images=0 is out of range...
    recipe = fast_recipe(a)
    LOGGER.info(
        f"{colorstr('bold', 'Stock TAL vs FSS')} (task={a.task}, {recipe['model']}, {a.epochs} epochs, "
        f"{a.images} images: {data.parent})"
    )
    return run_study(p, str(data), ["tal", "fss"], a.seeds, recipe, a.project, notes=(QUIET, REPRODUCIBILITY))


if __name__ == "__main__":
    main()
