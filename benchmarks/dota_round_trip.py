"""Benchmark: the ground truth's round trip through ``tile_dota`` and ``merge_dota`` on the shipped DOTA samples.

The samples' labels are tiled, every tile label is written back as a prediction with confidence 1
(:func:`ultralytics_fss.large_images.merge_back.tile_predictions.labels_as_predictions`), merged back to the full images
with ``merge_dota --pred-dir`` at several NMS thresholds and scored with DOTA's metric. A perfect round trip keeps one
detection per object and scores 1.0; what falls short is an object no tile holds (the tiler's IoF threshold, 0.7) or a
true object removed by the merge's NMS. Prints a Markdown table (docs/large-images.md, "Round trip") and the overlap statistics
behind it.

All detections score 1, so NMS visits tied boxes in input order (``torchvision.ops.nms`` sorts stably on CPU): the
counts below depend on that tie rule, not only on the threshold.

Examples:
    python benchmarks/dota_round_trip.py                  # the docs' table (under a minute on CPU)
    python benchmarks/dota_round_trip.py --src path/to/DOTA/val --dir runs/round-trip
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "tests" / "data" / "dota-examples"
SPLIT = "train"  # a source folder without split folders is tiled as train

# (crop, stride, format, rates, NMS thresholds; None = the merge's default for the format)
SETTINGS = [
    (1024, 800, "obb", (1.0,), (None,)),
    (1024, 800, "obb", (0.5, 1.0), (None,)),
    (1024, 800, "detect", (1.0,), (0.3, 0.4, None, 0.6, 0.7)),
    (1024, 800, "detect", (0.5, 1.0), (0.3, None, 0.7)),
    (256, 200, "obb", (1.0,), (None,)),
    (256, 200, "obb", (0.5, 1.0), (None,)),
]
DEVKIT_IOU = {"obb": 0.1, "detect": 0.3}  # the devkit's ResultMerge thresholds


def fail(message: str) -> None:
    """Bad arguments: one line on stderr, exit status 2."""
    print(f"dota_round_trip: {message}", file=sys.stderr)
    sys.exit(2)


def round_trip(src: Path, work: Path, crop: int, stride: int, fmt: str, rates: tuple[float, ...],
               ious: tuple[float | None, ...]) -> list:  # fmt: skip
    """Tile ``src``, write the tile labels back as predictions with confidence 1, merge and score at each threshold.

    Args:
        src (Path): DOTA source folder (``images/``, ``labelTxt/``).
        work (Path): Working folder (tiles, predictions and merged files go under it).
        crop (int): Tile side, pixels.
        stride (int): Step between tiles, pixels.
        fmt (str): ``detect`` (Task2) or ``obb`` (Task1).
        rates (tuple[float, ...]): The tiler's rescaling rates.
        ious (tuple[float | None, ...]): NMS thresholds of the merge (None: its default for ``fmt``).

    Returns:
        (list[MergeResult]): One merge result per threshold, scored against the source labels.
    """
    from ultralytics_fss.large_images import merge_dota, tile_dota
    from ultralytics_fss.large_images.merge_back.tile_predictions import labels_as_predictions

    name = f"{fmt}-crop{crop}-stride{stride}-rates{'_'.join(f'{r:g}' for r in rates)}"
    dst, pred = work / name / "tiles", work / name / "pred"
    summary = tile_dota(src, dst, crop=crop, stride=stride, rates=rates, format=fmt, workers=1)
    if not summary.ok:
        raise RuntimeError(f"tile_dota failed on {src}: {summary.errors}")
    labels_as_predictions(dst / "labels" / SPLIT, pred, conf=1.0)
    return [merge_dota(dst, work / name / f"merged-iou{iou}", pred_dir=pred, split=SPLIT, iou=iou) for iou in ious]


def neighbour_overlaps(src: Path, names: tuple[str, ...]) -> tuple[int, int, float]:
    """How many objects have a same-class neighbour whose axis-aligned box overlaps theirs at box IoU > 0.3.

    The merge's detect NMS compares exactly these boxes (each object's axis-aligned hull) when every object is
    predicted once: an object loses to a tied neighbour at any threshold below their IoU.

    Args:
        src (Path): DOTA source folder; only label files with an image are counted (the tiled images).
        names (tuple[str, ...]): Class list of the tiler (objects of other categories are left out).

    Returns:
        objects (int): Objects counted (non-difficult or not, as the tiler keeps them).
        crowded (int): Objects with a same-class neighbour at box IoU > 0.3.
        largest (float): Largest box IoU between two same-class objects of one image.
    """
    import torch
    from torchvision.ops import box_iou

    from ultralytics_fss.large_images.merge_back.metric import read_ground_truth

    images = {p.stem for p in (src / "images").iterdir()}
    files = {p.stem: p for p in sorted((src / "labelTxt").glob("*.txt")) if p.stem in images}
    objects, crowded, largest = 0, 0, 0.0
    for g in read_ground_truth(files, names).values():
        keep = g.cls >= 0
        xy = g.polys[keep].reshape(-1, 4, 2)
        boxes = torch.as_tensor(np.concatenate([xy.min(1), xy.max(1)], 1))  # (M, 4) hulls
        cls = torch.as_tensor(g.cls[keep])
        iou = box_iou(boxes, boxes) * (cls[:, None] == cls[None, :])  # (M, M) same class only
        iou.fill_diagonal_(0)
        best = iou.max(1).values if len(iou) else torch.zeros(0)
        objects += len(best)
        crowded += int((best > 0.3).sum())
        largest = max(largest, float(best.max()) if len(best) else 0.0)
    return objects, crowded, largest


def main(argv: list[str] | None = None) -> None:
    """Run every setting, print the Markdown table and the overlap statistics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="DOTA source folder (default: the shipped samples)")
    p.add_argument("--dir", type=Path, help="working folder (default: a temporary one)")
    p.add_argument("--verbose", action="store_true", help="show the tiler's and the merge's own log")
    a = p.parse_args(argv)
    if not (a.src / "images").is_dir() or not (a.src / "labelTxt").is_dir():
        fail(f"--src {a.src}: not a DOTA folder (images/ and labelTxt/)")

    from ultralytics.utils import LOGGER

    from ultralytics_fss.large_images.merge_back.nms import NMS_IOU

    if not a.verbose:
        LOGGER.setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        for crop, stride, fmt, rates, ious in SETTINGS:
            for iou, r in zip(ious, round_trip(a.src, work, crop, stride, fmt, rates, ious)):
                rows.append((crop, stride, fmt, rates, NMS_IOU[fmt] if iou is None else iou, iou is None, r))
    scored = rows[0][-1].metrics["objects"]  # non-difficult objects of each class of the tiler's list, in order
    classes = sorted((c for c in scored if scored[c]), key=lambda c: -scored[c])
    total, crowded, largest = neighbour_overlaps(a.src, tuple(scored))

    counts = ", ".join(f"{scored[c]} {c}" for c in classes)
    print(f"\nRound trip of {a.src}: {total} objects ({sum(scored.values())} not difficult: {counts}), tile labels "
          "as predictions with confidence 1\n")  # fmt: skip
    print(f"| crop, stride | format | rates | NMS IoU | detections kept ({total} objects) | mAP | "
          + " | ".join(f"{c} AP" for c in classes) + " |")  # fmt: skip
    print("|---" * (6 + len(classes)) + "|")
    for crop, stride, fmt, rates, iou, default, r in rows:
        notes = [n for n, on in (("devkit", iou == DEVKIT_IOU[fmt]), ("default", default)) if on]
        label = f"{iou:g}" + (f" ({', '.join(notes)})" if notes else "")
        aps = " | ".join(f"{r.metrics['AP'][c]:.3f}" for c in classes)
        print(f"| {crop}, {stride} | {fmt} ({r.task}) | {', '.join(f'{x:g}' for x in rates)} | {label} | "
              f"{r.detections} | {r.metrics['mAP']:.3f} | {aps} |")  # fmt: skip

    print(f"\n{crowded} of {total} objects ({crowded / total:.0%}) have a same-class neighbour whose axis-aligned box "
          f"overlaps theirs at IoU > 0.3; the largest such IoU is {largest:.3f}.")  # fmt: skip
    for crop, _, fmt, rates, iou, _, r in rows:
        if fmt == "detect" and iou == DEVKIT_IOU[fmt]:
            print(f"detect, crop {crop}, rates {', '.join(f'{x:g}' for x in rates)}, NMS IoU {iou:g}: "
                  f"{total - r.detections} of the {total} objects removed ({r.detections} kept).")  # fmt: skip


if __name__ == "__main__":
    main()
