"""The paper's Tables 2-5 and the YOLO26 rows on the demo data and the demo's fast recipe, one command per table.

    python benchmarks/paper_tables.py table2 --jobs 2          # Tables 2 and 3: tal fss maxiou atss simota gfl sel
    python benchmarks/paper_tables.py table5 --jobs 2          # Table 5's strategies: tal fss atss gfl paa dw
    python benchmarks/paper_tables.py table4 --jobs 2          # Table 4: (alpha, beta), u, q beside the defaults
    python benchmarks/paper_tables.py yolo26 --jobs 2          # yolo26n.yaml: tal fss fss-o2o
    python benchmarks/paper_tables.py table5 --keep            # ... and store the summary in benchmarks/results/table5

The data is the demo's (`python -m ultralytics_fss.demo`: 400 generated images of 128 px, 8-20 objects of 8-20% of
the side each, 3 classes), the recipe its fast one (`ultralytics_fss.evidence.runs.fast_recipe`: yolo11n from
scratch, 20 epochs, batch 8, AdamW lr 0.005, one warm-up epoch, no mosaic), 3 seeds; every variant shares FSS's
default loss keys, so rows differ by their assignment only (`gfl` by its QFL loss too). All tables train into one
project (default `runs/paper-tables`), so a run two tables share (`tal`, `fss` of a seed) trains once; `compare`
resumes, so an interrupted table continues where it stopped. Each call writes that table's `summary.csv`/`summary.md`
into the project; `--keep` copies them to `benchmarks/results/{table}` (`benchmarks/tables.py keep`, with the planned
grid, so a table whose runs are not all done says which are missing), from where `benchmarks/tables.py readme`
makes the docs' tables.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts: accuracy.py's variants, tables.py

from accuracy import TABLE4, VARIANTS  # noqa: E402
from tables import RESULTS, keep  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss.evidence.compare import run_all  # noqa: E402
from ultralytics_fss.evidence.runs import add_arguments, fast_recipe  # noqa: E402
from ultralytics_fss.synthetic import DEMO_SEED, dataset_name, make_dataset  # noqa: E402

TABLES = {  # name: (model or None for yolo11n, variants)
    "table2": (None, ["tal", "fss", "maxiou", "atss", "simota", "gfl", "sel"]),
    "table5": (None, ["tal", "fss", "atss", "gfl", "paa", "dw"]),
    "table4": (None, list(TABLE4)),
    "yolo26": ("yolo26n.yaml", ["tal", "fss", "fss-o2o"]),
}
DEMO_DATA = dict(objects=(8, 20), size=(0.08, 0.2), seed=DEMO_SEED, task="detect")  # the demo's (+ images, imgsz)


def main(argv: list[str] | None = None) -> list[dict]:
    """Make the demo data, train the table's missing runs, optionally keep its summary; return its result rows."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("table", choices=list(TABLES))
    add_arguments(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--project", default="runs/paper-tables")
    p.add_argument("--keep", action="store_true", help="store the summary in benchmarks/results/TABLE")
    p.add_argument("--results", type=Path, default=RESULTS, help="where --keep stores it")
    a = p.parse_args(argv)
    model, variants = TABLES[a.table]
    a.model = a.model or model
    project = Path(a.project).resolve()
    spec = dict(images=a.images, imgsz=a.imgsz, **DEMO_DATA)
    data = make_dataset(project / "data" / dataset_name(**spec), **spec)  # the same every time; reused when present
    specs = [VARIANTS.get(v, v) for v in variants]  # accuracy.py's specs; built-in names stay as they are
    rows = run_all(project, str(data), specs, a.seeds, fast_recipe(a), jobs=a.jobs)
    LOGGER.info(f"{a.table}: {len(rows)} runs, summary in {project / 'summary.md'}")
    if a.keep:
        flags = [f for f in (argv if argv is not None else sys.argv[1:]) if f != "--keep"]
        command = shlex.join(["python", "benchmarks/paper_tables.py", *flags])
        out = keep(project, a.table, command, a.results, variants, sorted({0, 1, 2, *a.seeds}))  # 3 seeds or more
        LOGGER.info(f"kept {out}")
    return rows


if __name__ == "__main__":
    main()
