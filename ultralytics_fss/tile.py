"""``python -m ultralytics_fss.tile``: tile an Ultralytics YOLO dataset of large images.

The command line of :func:`ultralytics_fss.large_images.tiling.pipeline.tile_yolo`: the DOTA path's windows, clipping,
IoF rule, output state, restart records and manifest, on any dataset YAML Ultralytics accepts. Exit status: 0 when every
image is tiled, 1 when some failed, 2 on bad arguments, 130 when interrupted.

Examples:
    python -m ultralytics_fss.tile xView.yaml xView-tiles --task detect --crop 1024 --stride 800
    python -m ultralytics_fss.tile data.yaml tiles --task segment --crop 640 --rates 0.5 1.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ultralytics.utils import LOGGER

from ultralytics_fss.large_images.errors import TilingError
from ultralytics_fss.large_images.tiling.config import DEFAULTS, EXTS, KEEP_DROP, STRIDE_HELP
from ultralytics_fss.large_images.tiling.pipeline import tile_yolo
from ultralytics_fss.large_images.tiling.summary import YOLO_PREFIX

TASKS = ("detect", "obb", "segment")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.tile``; defaults come from ``TileConfig``."""
    d = DEFAULTS
    p = argparse.ArgumentParser(prog="python -m ultralytics_fss.tile", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, help="dataset YAML (folders, image-list files or lists of either)")
    p.add_argument("dst", type=Path, help="output root")
    p.add_argument("--task", choices=TASKS, default="detect", help="label format read and written")
    p.add_argument("--splits", nargs="+", help="splits to tile (default: those the YAML names of train val test)")
    p.add_argument("--crop", type=int, default=d.crop, help=f"tile side in pixels (default: {d.crop})")
    p.add_argument("--stride", type=int, help=f"step between tiles in pixels (default: {STRIDE_HELP})")
    p.add_argument("--rates", type=float, nargs="+", default=list(d.rates), help="image scale factors")
    p.add_argument("--iof", type=float, default=d.iof, help=f"min intersection/object area (default: {d.iof})")
    p.add_argument("--empty", choices=KEEP_DROP, default=d.empty, help="tiles without objects")
    p.add_argument("--ext", choices=EXTS, default=d.ext, help="tile format (default: the source's)")
    p.add_argument("--workers", type=int, help="worker processes (default: CPU count, limited by memory)")
    p.add_argument("--overwrite", action="store_true", help="delete earlier tiler output in DST first")
    p.add_argument("--shard", help="K/N: tile only the K-th of N deterministic slices of the images")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the exit status as the module docstring says."""
    a = build_parser().parse_args(argv)
    try:
        summary = tile_yolo(
            a.data,
            a.dst,
            task=a.task,
            splits=a.splits,
            crop=a.crop,
            stride=a.stride,
            rates=a.rates,
            iof=a.iof,
            empty=a.empty,
            ext=a.ext,
            workers=a.workers,
            overwrite=a.overwrite,
            shard=a.shard,
        )
    except TilingError as e:
        LOGGER.error(f"{YOLO_PREFIX}{e}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
