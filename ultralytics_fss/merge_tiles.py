"""``python -m ultralytics_fss.merge_tiles``: tile predictions of a ``tile`` output back to full images, scored.

The command line of :func:`ultralytics_fss.large_images.merge_tiles`. Writes ``OUT/labels/{image}.txt`` (Ultralytics txt
with confidences, normalised to the full image), ``OUT/predictions.json`` (COCO results) and, where the source split has
labels, ``OUT/coco_metrics.json`` (detect and segment tiles: COCO's twelve numbers, pycocotools) or
``OUT/dota_eval.json`` (obb tiles: DOTA's VOC07 metric). Exit status: 0 on success, 2 on bad arguments or input (the
message names the file, line or argument; OUT is left unchanged).

Examples:
    python -m ultralytics_fss.merge_tiles xView-tiles --model runs/detect/train/weights/best.pt --split val --out merged
    python -m ultralytics_fss.merge_tiles tiles --pred-dir runs/detect/predict/labels --out merged
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ultralytics.utils import LOGGER

from ultralytics_fss.large_images import MergeError, merge_tiles
from ultralytics_fss.large_images.merge_back.merge_dota import (
    DEFAULT_CONF,
    DEFAULT_SPLIT,
    add_predict_arguments,
    predict_arguments,
)
from ultralytics_fss.large_images.merge_back.merge_tiles import PREFIX
from ultralytics_fss.large_images.merge_back.nms import NMS_IOU

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.merge_tiles``."""
    p = argparse.ArgumentParser(prog="python -m ultralytics_fss.merge_tiles", description=__doc__.split("\n")[0])
    p.add_argument("dst", type=Path, help="output folder of python -m ultralytics_fss.tile (with manifest.csv)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="YOLO weights to run over the split's tiles (detect/segment, or obb)")
    src.add_argument("--pred-dir", type=Path, help="folder of per-tile predictions (save_txt=True save_conf=True)")
    p.add_argument("--out", type=Path, required=True, help="output folder (labels/, predictions.json, metrics)")
    p.add_argument("--split", default=DEFAULT_SPLIT, help=f"split to merge (default: {DEFAULT_SPLIT})")
    p.add_argument("--conf", type=float, default=DEFAULT_CONF, help=f"confidence threshold (default: {DEFAULT_CONF})")
    p.add_argument("--iou", type=float, help=f"merge NMS IoU (default: obb {NMS_IOU['obb']}, else {NMS_IOU['detect']})")
    add_predict_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exits 0 on success, 2 on bad arguments or input."""
    a = build_parser().parse_args(argv)
    try:
        merge_tiles(
            a.dst,
            a.out,
            model=a.model,
            pred_dir=a.pred_dir,
            split=a.split,
            conf=a.conf,
            iou=a.iou,
            **predict_arguments(a),
        )
    except MergeError as e:
        LOGGER.error(f"{PREFIX}{e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
