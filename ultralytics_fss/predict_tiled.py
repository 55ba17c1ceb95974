"""``python -m ultralytics_fss.predict_tiled``: predict on large images tile by tile, merged into full-image results.

The command line of :func:`ultralytics_fss.large_images.predict_tiled`: the tiler's windows cut in memory, predicted in
batches, merged with ``merge_dota``'s code. Exit status: 0 when every image is predicted, 1 when some image of a
folder failed (each is named; the others are predicted and saved), 2 on bad arguments or input (nothing predicted).

Examples:
    Command line::

        python -m ultralytics_fss.predict_tiled --model best.pt --source P0706.png --crop 1024 --stride 800 --save
        python -m ultralytics_fss.predict_tiled --model best.pt --source DOTA/test/images --rates 0.5 1.0 --save-txt

    Python::

        >>> from ultralytics_fss.large_images import predict_tiled
        >>> results = predict_tiled("best.pt", "P0706.png")  # doctest: +SKIP
        >>> results[0].plot()  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys

from ultralytics.utils import LOGGER

from ultralytics_fss.large_images import MergeError, predict_tiled
from ultralytics_fss.large_images.merge_back.merge_dota import DEFAULT_BATCH, DEFAULT_MAX_DET
from ultralytics_fss.large_images.merge_back.nms import NMS_IOU
from ultralytics_fss.large_images.merge_back.predict_tiled import DEFAULT_CONF, DEFAULT_NAME, DEFAULT_PROJECT, PREFIX
from ultralytics_fss.large_images.tiling.config import DEFAULTS, STRIDE_HELP

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.predict_tiled``; tiling defaults are the tiler's."""
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m ultralytics_fss.predict_tiled",
        description="Predict on large images with a YOLO detect or obb model: tiles cut in memory with tile_dota's "
        "windows, predicted in batches, merged back (class-wise NMS) into one result per image.",
    )
    p.add_argument("--model", required=True, help="YOLO weights (detect or obb)")
    p.add_argument(
        "--source",
        required=True,
        help="an image, a folder of images, an image-list .txt file or a dataset YAML (with --split)",
    )
    p.add_argument("--split", default="val", help="split of a dataset YAML --source (default: val)")
    p.add_argument("--crop", type=int, default=d.crop, help=f"tile side in pixels (default: {d.crop})")
    p.add_argument("--stride", type=int, help=f"step between tiles in pixels (default: {STRIDE_HELP})")
    p.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=list(d.rates),
        help=f"image scale factors (default: {' '.join(map(str, d.rates))})",
    )
    p.add_argument("--conf", type=float, default=DEFAULT_CONF, help=f"confidence threshold (default: {DEFAULT_CONF})")
    p.add_argument(
        "--iou", type=float, help=f"merge NMS IoU (default: obb {NMS_IOU['obb']}, detect {NMS_IOU['detect']})"
    )
    p.add_argument("--imgsz", type=int, help="inference size (default: the tile side)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default: {DEFAULT_BATCH})")
    p.add_argument(
        "--max-det", type=int, default=DEFAULT_MAX_DET, help=f"detections per tile (default: {DEFAULT_MAX_DET})"
    )
    p.add_argument("--device", help="device, e.g. cpu, 0 (default: Ultralytics' choice)")
    p.add_argument("--save", action="store_true", help="save annotated images")
    p.add_argument("--save-txt", action="store_true", help="save labels/{image}.txt with confidences")
    p.add_argument("--project", default=DEFAULT_PROJECT, help="parent folder of the save folder")
    p.add_argument("--name", default=DEFAULT_NAME, help="save folder name (incremented when it exists)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exits 0 when every image is predicted, 1 when some image of a folder failed, 2 on bad arguments
    or input.

    Args:
        argv (list[str] | None): Arguments; None: ``sys.argv[1:]``.

    Returns:
        (int): The exit status.
    """
    a = build_parser().parse_args(argv)
    extra = {"device": a.device} if a.device else {}
    try:
        results = predict_tiled(
            a.model,
            a.source,
            crop=a.crop,
            stride=a.stride,
            rates=a.rates,
            conf=a.conf,
            iou=a.iou,
            batch=a.batch,
            imgsz=a.imgsz,
            max_det=a.max_det,
            save=a.save,
            save_txt=a.save_txt,
            project=a.project,
            name=a.name,
            split=a.split,
            **extra,
        )
    except MergeError as e:
        LOGGER.error(f"{PREFIX}{e}")
        return 2
    return 0 if results.ok else 1


if __name__ == "__main__":
    sys.exit(main())
