"""``python -m ultralytics_fss.merge_dota``: tile predictions back to full images, DOTA Task files, DOTA's metric.

The command line of :func:`ultralytics_fss.large_images.merge_dota`. Exit status: 0 on success, 2 on bad arguments or
input (the message names the file, line or argument; OUT is left unchanged).

Examples:
    Command line::

        python -m ultralytics_fss.merge_dota DOTA-tiles --model runs/obb/train/weights/best.pt --split val \
            --out val-merged
        python -m ultralytics_fss.merge_dota DOTA-tiles --pred-dir runs/obb/predict/labels --format obb --out merged

    Python::

        >>> from ultralytics_fss.large_images import merge_dota
        >>> result = merge_dota("DOTA-tiles", "val-merged", model="best.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ultralytics.utils import LOGGER

from ultralytics_fss.large_images import MergeError, merge_dota
from ultralytics_fss.large_images.merge_back.merge_dota import (
    DEFAULT_CONF,
    DEFAULT_SPLIT,
    PREFIX,
    add_predict_arguments,
    predict_arguments,
)
from ultralytics_fss.large_images.merge_back.nms import FORMAT_COLUMNS, NMS_IOU

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.merge_dota``."""
    p = argparse.ArgumentParser(
        prog="python -m ultralytics_fss.merge_dota",
        description="Merge YOLO predictions on tile_dota tiles back to full images: class-wise NMS, DOTA Task1/Task2 "
        "files and the evaluation server's zip, and DOTA's metric (VOC07 AP50) when the split has labels.",
    )
    p.add_argument("dst", type=Path, help="output folder of python -m ultralytics_fss.tile_dota (with manifest.csv)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="YOLO weights (detect or obb) to run over the split's tiles")
    src.add_argument("--pred-dir", type=Path, help="folder of per-tile predictions (save_txt=True save_conf=True)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the Task files, zip and dota_eval.json")
    p.add_argument("--split", default=DEFAULT_SPLIT, help=f"split to merge (default: {DEFAULT_SPLIT})")
    p.add_argument(
        "--format",
        choices=tuple(FORMAT_COLUMNS),
        help="prediction format (default: the model's task, or the tiler's format, obb for 'both')",
    )
    p.add_argument("--conf", type=float, default=DEFAULT_CONF, help=f"confidence threshold (default: {DEFAULT_CONF})")
    p.add_argument(
        "--iou", type=float, help=f"merge NMS IoU (default: obb {NMS_IOU['obb']}, detect {NMS_IOU['detect']})"
    )
    p.add_argument(
        "--labels", type=Path, help="DOTA label folder to score against (default: the split's source labels)"
    )
    add_predict_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exits 0 on success, 2 on bad arguments or input.

    Args:
        argv (list[str] | None): Arguments; None: ``sys.argv[1:]``.

    Returns:
        (int): The exit status.
    """
    a = build_parser().parse_args(argv)
    try:
        merge_dota(
            a.dst,
            a.out,
            model=a.model,
            pred_dir=a.pred_dir,
            split=a.split,
            format=a.format,
            conf=a.conf,
            iou=a.iou,
            labels=a.labels,
            **predict_arguments(a),
        )
    except MergeError as e:
        LOGGER.error(f"{PREFIX}{e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
