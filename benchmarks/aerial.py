"""The paper's DOTA study (its Table 6) on the generated aerial benchmark: generate, tile, train each assigner, merge
back and score on the full images, in one command.

    python benchmarks/aerial.py --dir runs/aerial --task obb --jobs 2     # oriented boxes, DOTA's Task1 on full images
    python benchmarks/aerial.py --dir runs/aerial --task detect --jobs 2  # horizontal boxes, Task2
    python benchmarks/aerial.py --dir runs/aerial --task obb --variants tal fss --seeds 0  # a first check

The benchmark (`ultralytics_fss.synthetic.make_aerial`) is written in DOTA's own format and tiled by `tile_dota`
exactly as DOTA is (`--crop`, `--stride`; `--format obb` or `detect`); each (variant, seed) run trains with
Ultralytics' default recipe (only data, model, epochs, imgsz, batch and seed set) through the comparison engine, which
resumes and scores every run on the full images as well as on the tiles (`python -m ultralytics_fss.compare`). The
summary lands in `DIR/{task}/study/summary.md`. Both tasks compare the rows of the paper's Table 6: `tal`, `fss`,
`atss`, `simota`, `maxiou` (on oriented boxes the baselines' oriented versions, `assign/rotated.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ultralytics.utils import LOGGER  # noqa: E402

from ultralytics_fss.evidence.compare import run_all, summary_text  # noqa: E402
from ultralytics_fss.large_images import tile_dota  # noqa: E402
from ultralytics_fss.synthetic import make_aerial  # noqa: E402

MODELS = {"obb": "yolo11n-obb.yaml", "detect": "yolo11n.yaml"}


def main(argv: list[str] | None = None) -> str:
    """Generate (or reuse) the benchmark, tile it, run the study; return its summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", default="runs/aerial", help="working folder (benchmark, tiles, runs)")
    p.add_argument("--task", choices=tuple(MODELS), default="obb", help="oriented (Task1) or horizontal (Task2) boxes")
    p.add_argument("--images", type=int, default=8, help="canvases (25%% val)")
    p.add_argument("--side", type=int, default=2048, help="canvas side, pixels")
    p.add_argument("--crop", type=int, default=512, help="tile side, pixels")
    p.add_argument("--stride", type=int, default=400, help="step between tiles, pixels")
    p.add_argument("--variants", nargs="+", default=["tal", "fss", "atss", "simota", "maxiou"],
                   help="compare variants (the paper's Table 6 rows)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="runs at once (Ultralytics trains on one CPU thread per run)")
    a = p.parse_args(argv)
    root = Path(a.dir)
    source = make_aerial(root / f"aerial-{a.images}img-{a.side}px", images=a.images, side=a.side)
    tiles = root / f"tiles-{a.task}-{a.crop}-{a.stride}"
    tile_dota(source, tiles, crop=a.crop, stride=a.stride, format=a.task, workers=a.workers)
    args = dict(model=MODELS[a.task], epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device,
                workers=a.workers)  # fmt: skip
    rows = run_all(root / a.task / "study", str(tiles / "data.yaml"), a.variants, a.seeds, args, jobs=a.jobs)
    text = summary_text(rows)
    LOGGER.info(f"\n{text}\nSaved to {root / a.task / 'study'}")
    return text


if __name__ == "__main__":
    main()
