"""``python -m ultralytics_fss.tile_dota``: tile a DOTA-format dataset into an Ultralytics YOLO dataset.

The command line of :func:`ultralytics_fss.large_images.tile_dota` (the pipeline lives in
:mod:`ultralytics_fss.large_images`). Exit status: 0 when every image is tiled, 1 when some failed, 2 on bad arguments,
130 when interrupted (Ctrl-C, SIGTERM).

Examples:
    Command line::

        python -m ultralytics_fss.tile_dota DOTA-v1.5 DOTA-v1.5-tiles --crop 1024 --stride 800 --rates 0.5 1.0
        python -m ultralytics_fss.tile_dota tests/data/dota-examples runs/dota-tiles --crop 256 --stride 200
        yolo detect train data=DOTA-v1.5-tiles/data.yaml

    Python (import from the package; the names below are re-exported here for older code)::

        >>> from ultralytics_fss.large_images import tile_dota
        >>> summary = tile_dota("DOTA-v1.5", "DOTA-v1.5-tiles", workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ultralytics.utils import LOGGER

from ultralytics_fss.large_images import TileSummary, TilingError, TilingInterrupted, tile_dota
from ultralytics_fss.large_images.dota import DEFAULT_VERSION, DOTA_CATEGORIES
from ultralytics_fss.large_images.tiling.config import DEFAULTS, EXTS, FORMATS, KEEP_DROP, STRIDE_HELP
from ultralytics_fss.large_images.tiling.summary import PREFIX

__all__ = ["TileSummary", "TilingError", "TilingInterrupted", "build_parser", "main", "tile_dota"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.tile_dota``; defaults come from ``TileConfig``."""
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m ultralytics_fss.tile_dota",
        description="Tile a DOTA-format dataset (official, Ultralytics or flat layout) into an Ultralytics YOLO "
        "dataset with data.yaml and manifest.csv. Rerun to resume; use --shard K/N to split the work.",
    )
    p.add_argument("src", type=Path, help="DOTA source root")
    p.add_argument("dst", type=Path, help="output root")
    p.add_argument("--splits", nargs="+", help="splits to tile (default: train val, plus test when present)")
    p.add_argument("--crop", type=int, default=d.crop, help=f"tile side in pixels (default: {d.crop})")
    p.add_argument("--stride", type=int, help=f"step between tiles in pixels (default: {STRIDE_HELP})")
    p.add_argument(
        "--rates", type=float, nargs="+", default=list(d.rates), help="image scale factors, e.g. 0.5 1.0 1.5"
    )
    p.add_argument(
        "--iof", type=float, default=d.iof, help=f"min intersection/object area to keep an object (default: {d.iof})"
    )
    p.add_argument("--format", choices=FORMATS, default=d.format, help="label format")
    p.add_argument(
        "--version",
        choices=tuple(DOTA_CATEGORIES),
        default=DEFAULT_VERSION,
        help=f"DOTA class list (default: {DEFAULT_VERSION})",
    )
    p.add_argument("--names", help="class-list file (one per line, or YAML names:) or 'auto'; overrides --version")
    p.add_argument("--difficult", choices=KEEP_DROP, default=d.difficult, help="objects flagged difficult")
    p.add_argument("--empty", choices=KEEP_DROP, default=d.empty, help="tiles without objects")
    p.add_argument("--ext", choices=EXTS, default=d.ext, help="tile format (default: the source's, PNG for DOTA)")
    p.add_argument("--keep-16bit", action="store_true", help="keep 16-bit images 16-bit (PNG) instead of value >> 8")
    p.add_argument("--workers", type=int, help="worker processes (default: CPU count, limited by memory)")
    p.add_argument("--overwrite", action="store_true", help="delete earlier tiler output in DST first")
    p.add_argument("--shard", help="K/N: tile only the K-th of N deterministic slices of the images")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exits 0 when every image is tiled, 1 when some failed, 2 on bad arguments, 130 when interrupted.

    Args:
        argv (list[str] | None): Arguments; None: ``sys.argv[1:]``.

    Returns:
        (int): The exit status (also passed to ``sys.exit`` when run as a script).
    """
    a = build_parser().parse_args(argv)
    try:
        summary = tile_dota(
            a.src,
            a.dst,
            splits=a.splits,
            crop=a.crop,
            stride=a.stride,
            rates=a.rates,
            iof=a.iof,
            format=a.format,
            version=a.version,
            names=a.names,
            difficult=a.difficult,
            empty=a.empty,
            ext=a.ext,
            keep_16bit=a.keep_16bit,
            workers=a.workers,
            overwrite=a.overwrite,
            shard=a.shard,
        )
    except TilingError as e:
        LOGGER.error(f"{PREFIX}{e}")
        return 2
    except KeyboardInterrupt:  # TilingInterrupted: summary already printed
        return 130
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
