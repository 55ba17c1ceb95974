"""``merge_tiles``: tile predictions of a ``tile`` output (any Ultralytics YOLO dataset) back to full images, scored.

The stages of ``merge_dota`` on a YOLO source: read the tiler's index of the split (:mod:`.tile_predictions`), read or
make the tile predictions and map them to image pixels, merge per image with class-wise NMS (:mod:`.nms`: box NMS for
detect and segment sources, polygon NMS for obb), then write and score on the full images of the source dataset the
tiler recorded (``.tile_dota/source.json``). Everything is read and checked before anything is written; OUT receives
each file whole.

Output in OUT::

    labels/{image}.txt   Ultralytics txt with confidences, normalised to the full image (``save_txt=True
                         save_conf=True``): ``cls cx cy w h conf`` (detect, segment), ``cls x1 y1 ... x4 y4 conf`` (obb)
    predictions.json     COCO results: ``image_id``, ``file_name``, ``category_id``, ``bbox`` [x, y, w, h] pixels,
                         ``score`` (obb rows add ``poly``, the four corners); image ids as ``evaluate`` numbers them
    coco_metrics.json    detect, segment: COCO's twelve numbers (pycocotools, bbox), as ``evaluate`` writes them
    dota_eval.json       obb: DOTA's metric, VOC07 AP50 per class (``{"mAP", "AP"}``, as ``merge_dota``)

A segment source is merged and scored as boxes (each polygon's bounding box, as Ultralytics' detect datasets read
polygons): masks are not merged back.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ultralytics.utils import LOGGER, colorstr

from ...metrics.coco import coco_metrics, format_metrics
from ..errors import MergeError
from ..images import image_header
from ..yolo_labels import label_path, parse_yolo_label_text, resolve_yolo_dataset
from .merge_dota import (
    DEFAULT_CONF,
    DEFAULT_MAX_DET,
    DEFAULT_SPLIT,
    EVAL_JSON,
    check_merge_args,
    log_ap_table,
    merge_line,
)
from .metric import TASKS, GroundTruth, evaluate_detections
from .nms import Detections, merge_image
from .tile_predictions import TileIndex, predict_tiles, read_prediction_dir

PREFIX = colorstr("merge_tiles: ")
COCO_JSON, PREDICTIONS_JSON, LABELS = "coco_metrics.json", "predictions.json", "labels"
MERGE_FORMAT = {"detect": "detect", "segment": "detect", "obb": "obb"}  # how a tiler format's detections merge
MODEL_TASKS = {"detect": ("detect", "segment"), "segment": ("detect", "segment"), "obb": ("obb",)}  # per tiler format


@dataclass
class MergeTilesResult:
    """What :func:`merge_tiles` wrote and measured.

    Attributes:
        out (Path): Output folder.
        format (str): ``detect`` or ``obb``: how the detections were merged and scored.
        images (int): Images of the split with tiles.
        detections (int): Detections written, after the merge.
        metrics (dict | None): detect: COCO's twelve numbers by name; obb: ``{"mAP", "AP", "objects"}`` (DOTA's
            metric); None when the source split has no labels.
    """

    out: Path
    format: str
    images: int
    detections: int
    metrics: dict | None = None


def merge_tiles(
    dst: str | Path,
    out: str | Path,
    *,
    model=None,
    pred_dir: str | Path | None = None,
    split: str = DEFAULT_SPLIT,
    conf: float = DEFAULT_CONF,
    iou: float | None = None,
    **predict_args,
) -> MergeTilesResult:
    """Merge the tile predictions of one split of a ``tile`` output back to its full images, write and score them.

    Args:
        dst (str | Path): The output folder of ``python -m ultralytics_fss.tile`` (``manifest.csv`` in it).
        out (str | Path): Output folder (created; files of an earlier run with the same names are replaced, the
            ``labels`` folder whole).
        model (str | Path | ultralytics.YOLO | None): Weights (or a loaded model) to run over the split's tiles: detect
            or segment (boxes) for detect and segment tiles, obb for obb tiles.
        pred_dir (str | Path | None): Or a folder of per-tile YOLO txt predictions (``save_txt=True save_conf=True``;
            polygon rows of a segment model are read as their boxes).
        split (str): Split to merge.
        conf (float): Drop detections below this confidence (also passed to the model).
        iou (float | None): NMS threshold of the merge; None: ``NMS_IOU`` (obb 0.1, detect 0.5).
        **predict_args (Any): Passed to ``YOLO.predict`` with ``model`` (imgsz, batch, device, max_det, half...).

    Returns:
        (MergeTilesResult): What was written and the metric.

    Raises:
        MergeError: Bad arguments or input (a DST that ``tile`` did not make, an unknown tile, a malformed prediction
            or source label line, named with file and line); OUT is then left as it was.

    Examples:
        >>> from ultralytics_fss.large_images import merge_tiles
        >>> r = merge_tiles("xView-tiles", "runs/xview-val", model="best.pt", split="val")  # doctest: +SKIP
        >>> r.metrics["AP"]  # doctest: +SKIP
    """
    out = check_merge_args(model, pred_dir, out)
    index = TileIndex.load(dst, split)
    data = (index.output.read_source() or {}).get("data")
    if data is None:
        raise MergeError(
            f"{index.dst} was tiled from a DOTA source (python -m ultralytics_fss.tile_dota): merge it "
            "with python -m ultralytics_fss.merge_dota"
        )
    fmt = MERGE_FORMAT[index.format]
    if model is not None:
        per_image = _predict(model, index, fmt, conf, predict_args)
    else:
        per_image = read_prediction_dir(pred_dir, index, "segment" if index.format == "segment" else fmt)
    images = source_images(Path(data), split, index)
    merged = {}
    for im, d in per_image.items():
        d = d.select(d.scores >= conf)
        merged[im] = merge_image(d.select(larger_first(d, fmt)), fmt, index.sizes[im], iou)
    rows = coco_results(merged, images, fmt)
    metrics = score(merged, rows, images, index, fmt)
    result = _write(out, merged, rows, index, fmt, metrics)
    _log(result, index, iou, conf)
    return result


def _predict(model, index: TileIndex, fmt: str, conf: float, predict_args: dict) -> dict[str, Detections]:
    """Run ``model`` over the split's tiles (checked against the tiler's format and class count)."""
    from ultralytics import YOLO

    yolo = model if isinstance(model, YOLO) else YOLO(model)
    if yolo.task not in MODEL_TASKS[index.format]:
        raise MergeError(
            f"--model {model}: task {yolo.task!r}; {index.format} tiles take a "
            f"{' or '.join(MODEL_TASKS[index.format])} model"
        )
    if len(yolo.names) != len(index.names):
        raise MergeError(f"--model {model} has {len(yolo.names)} classes, {index.dst} has {len(index.names)}")
    predict_args = {"imgsz": index.crop, "max_det": DEFAULT_MAX_DET, **predict_args}
    return predict_tiles(yolo, index, fmt, conf=conf, **predict_args)


def larger_first(d: Detections, fmt: str) -> np.ndarray:
    """Row order putting larger boxes first (stable): the merge's NMS, stable in score, then keeps the larger of two
    equally scored overlapping boxes, i.e. an object seen whole in one tile over its part cut by a neighbour's edge."""
    if fmt == "obb":
        x, y = d.boxes[:, 0::2], d.boxes[:, 1::2]
        area = 0.5 * np.abs((x * np.roll(y, -1, 1)).sum(1) - (y * np.roll(x, -1, 1)).sum(1))  # shoelace
    else:
        area = (d.boxes[:, 2] - d.boxes[:, 0]) * (d.boxes[:, 3] - d.boxes[:, 1])
    return np.argsort(-area, kind="stable")


@dataclass(frozen=True)
class SourceImage:
    """One full image of the source split.

    Attributes:
        id (int): COCO image id: 1.. in the split's file order, as ``evaluate`` numbers them.
        path (Path): Image file.
        size (tuple[int, int]): ``(width, height)``, pixels.
    """

    id: int
    path: Path
    size: tuple[int, int]


def source_images(data: Path, split: str, index: TileIndex) -> dict[str, SourceImage]:
    """The full images of the source split, by stem, listed as the tiler listed them (`resolve_yolo_dataset`: the
    file order `evaluate` numbers them in).

    Raises:
        MergeError: When the recorded dataset YAML no longer resolves, lacks the split or an image that was tiled.
    """
    try:
        files = resolve_yolo_dataset(data, (split,))[1].get(split)
    except (FileNotFoundError, RuntimeError, OSError, SyntaxError) as e:
        raise MergeError(f"{data} (the source recorded by the tiler): {str(e).splitlines()[0]}") from None
    if files is None:
        raise MergeError(f"{data} (the source recorded by the tiler): no {split!r} split")
    images = {}
    for i, f in enumerate(files, start=1):
        size = index.sizes.get(f.stem) or image_header(f)[:2]
        images[f.stem] = SourceImage(i, f, tuple(size))
    missing = sorted(set(index.sizes) - set(images))
    if missing:
        raise MergeError(f"{data}: split {split!r} no longer lists the tiled image(s) {missing[:5]}")
    return images


def source_objects(images: dict[str, SourceImage], task: str, nc: int) -> dict[str, tuple] | None:
    """Each image's labelled objects as pixel polygons and classes, read as the tiler read them; None without labels.

    Raises:
        MergeError: For a malformed label line (file and line named): the score would silently miss that object.
    """
    found, objects = 0, {}
    for stem, im in images.items():
        label = label_path(im.path)
        if not label.is_file():
            objects[stem] = ([], np.zeros(0, np.int64))
            continue
        found += 1
        parsed = parse_yolo_label_text(label.read_text(encoding="utf-8", errors="replace"), label, task, *im.size, nc)
        if parsed.problems:
            raise MergeError(f"{parsed.problems[0]} (fix the source label to score against it)")
        objects[stem] = (parsed.polygons, parsed.cls)
    return objects if found else None


def score(
    merged: dict[str, Detections], rows: list[dict], images: dict[str, SourceImage], index: TileIndex, fmt: str
) -> dict | None:
    """COCO's twelve numbers (detect: of the COCO results `rows`) or DOTA's metric (obb: of `merged`) on the whole
    source split."""
    objects = source_objects(images, index.format, len(index.names))
    if objects is None:
        LOGGER.info(f"{PREFIX}split {index.split!r} of the source has no label files: writing results without scores")
        return None
    if fmt == "obb":
        gt = {s: GroundTruth(np.array(p).reshape(-1, 8), c, np.zeros(len(c), bool)) for s, (p, c) in objects.items()}
        empty = Detections.empty(fmt)
        return evaluate_detections({s: merged.get(s, empty) for s in images}, TASKS[fmt], index.names, gt)

    return coco_metrics(coco_ground_truth(images, objects, index.names), rows)


def coco_ground_truth(images: dict[str, SourceImage], objects: dict[str, tuple], names: tuple[str, ...]) -> dict:
    """COCO ground truth of the split (as ``evidence.coco.ground_truth`` builds it): each object's bounding box."""
    coco_images, annotations = [], []
    for stem, im in images.items():
        coco_images.append(dict(id=im.id, file_name=im.path.name, width=im.size[0], height=im.size[1]))
        for poly, c in zip(*objects[stem]):
            (x1, y1), (x2, y2) = poly.min(0), poly.max(0)
            box = [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=im.id,
                    category_id=int(c),
                    bbox=box,
                    area=box[2] * box[3],
                    iscrowd=0,
                )
            )
    categories = [dict(id=i, name=n) for i, n in enumerate(names)]
    return dict(images=coco_images, annotations=annotations, categories=categories)


def coco_results(merged: dict[str, Detections], images: dict[str, SourceImage], fmt: str) -> list[dict]:
    """COCO results rows of the merged detections (``bbox`` of an obb row: its corners' bounds, with ``poly``)."""
    rows = []
    for stem, d in merged.items():
        im = images[stem]
        corners = d.boxes.reshape(len(d), -1, 2)  # (N, 2 | 4, 2)
        lo, hi = corners.min(1), corners.max(1)
        for k in range(len(d)):
            box = [round(float(v), 3) for v in (*lo[k], *(hi[k] - lo[k]))]  # x, y, w, h
            row = dict(
                image_id=im.id,
                file_name=im.path.name,
                category_id=int(d.cls[k]),
                bbox=box,
                score=round(float(d.scores[k]), 5),
            )
            if fmt == "obb":
                row["poly"] = [round(float(v), 3) for v in d.boxes[k]]
            rows.append(row)
    return rows


def label_lines(d: Detections, size: tuple[int, int], fmt: str) -> str:
    """One image's detections as Ultralytics txt rows with confidences, normalised to the image (6 significant
    digits, as ``Results.save_txt`` writes them)."""
    w, h = size
    if fmt == "obb":
        coords = d.boxes / np.tile([w, h], 4)
    else:
        x1, y1, x2, y2 = d.boxes.T
        coords = np.stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], 1)
    return "".join(
        f"{c} " + " ".join(f"{v:.6g}" for v in row) + f" {s:.6g}\n"
        for c, row, s in zip(d.cls.tolist(), coords.tolist(), d.scores.tolist())
    )


def _write(
    out: Path, merged: dict[str, Detections], rows: list[dict], index: TileIndex, fmt: str, metrics: dict | None
) -> MergeTilesResult:
    """Write labels, predictions and metrics into a temporary folder beside OUT, then move them into OUT."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / LABELS).mkdir()
        for stem, d in merged.items():
            if len(d):  # no file for an image without detections, as Ultralytics' save_txt
                (tmp / LABELS / f"{stem}.txt").write_text(label_lines(d, index.sizes[stem], fmt), encoding="utf-8")
        (tmp / PREDICTIONS_JSON).write_text(json.dumps(rows), encoding="utf-8")
        if metrics is not None and fmt == "obb" and not math.isnan(metrics["mAP"]):
            (tmp / EVAL_JSON).write_text(json.dumps({"mAP": metrics["mAP"], "AP": metrics["AP"]}, indent=1))
        elif metrics is not None and fmt == "detect":
            (tmp / COCO_JSON).write_text(json.dumps(metrics), encoding="utf-8")
        if not out.is_dir():
            os.replace(tmp, out)  # the whole folder appears at once
        else:
            old = out / f".{LABELS}.old"
            shutil.rmtree(old, ignore_errors=True)
            if (out / LABELS).is_dir():
                os.replace(out / LABELS, old)
            for f in sorted(tmp.iterdir()):
                os.replace(f, out / f.name)  # each file (and the labels folder) appears whole
            shutil.rmtree(old, ignore_errors=True)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return MergeTilesResult(out, fmt, len(merged), sum(len(d) for d in merged.values()), metrics)


def _log(r: MergeTilesResult, index: TileIndex, iou: float | None, conf: float) -> None:
    """Print the score (COCO's twelve numbers, or DOTA's per-class AP table), then the closing line
    (`merge_line`)."""
    if r.metrics is not None and r.format == "obb":
        log_ap_table(r.metrics, PREFIX, r.out / EVAL_JSON)
    elif r.metrics is not None:
        LOGGER.info(
            f"{PREFIX}COCO metrics on the full images (pycocotools, bbox) -> {r.out / COCO_JSON}\n"
            f"{format_metrics(r.metrics)}"
        )
    LOGGER.info(merge_line(PREFIX, index, r.images, r.detections, r.format, iou, conf, r.out))
