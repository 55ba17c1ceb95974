"""``merge_dota``: tile predictions back to full images, DOTA submission files, and DOTA's metric when labels exist.

Stages: read the tiler's index of the split (:mod:`.tile_predictions`), read or make the tile predictions and map
them to image pixels, merge per image with class-wise NMS (:mod:`.nms`), write the Task files and the server's zip,
score them (:mod:`.metric`) when the split has DOTA labels. Everything is read and checked before anything is written,
and OUT is filled from a temporary folder only on success.

Output in OUT::

    Task1_{class}.txt   obb:    image score x1 y1 x2 y2 x3 y3 x4 y4   (one file per class, DOTA's official names)
    Task2_{class}.txt   detect: image score xmin ymin xmax ymax
    Task1.zip / Task2.zip   the class files at the archive root, as the DOTA evaluation server takes them
    dota_eval.json      {"mAP": float, "AP": {class: float}} when the split has labels
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ultralytics.utils import LOGGER, colorstr

from ..errors import MergeError
from ..files import list_files, unwritable
from ..tiling.config import label_formats
from ..tiling.output import TileOutput
from .metric import TASKS, GroundTruth, evaluate_task_files, read_ground_truth, task_file
from .nms import FORMAT_COLUMNS, NMS_IOU, Detections, merge_image
from .tile_predictions import TileIndex, model_format, predict_tiles, read_prediction_dir

PREFIX = colorstr("merge_dota: ")
EVAL_JSON = "dota_eval.json"
DEFAULT_CONF = 0.001  # keep low-score boxes: AP integrates over all of them (Ultralytics' val default)
DEFAULT_MAX_DET = 1000  # per tile; DOTA tiles hold up to ~1000 small vehicles, Ultralytics' 300 would cut them
DEFAULT_BATCH = 16  # tiles per forward pass, for the command lines and predict_tiled
DEFAULT_SPLIT = "val"


@dataclass
class MergeResult:
    """What :func:`merge_dota` wrote and measured.

    Attributes:
        out (Path): Output folder.
        task (str): ``Task1`` (obb) or ``Task2`` (detect).
        images (int): Images of the split.
        detections (int): Detections written, after the merge.
        metrics (dict | None): ``{"mAP", "AP", "objects"}`` (see :func:`.metric.evaluate_task_files`); None without
            labels.
    """

    out: Path
    task: str
    images: int
    detections: int
    metrics: dict | None = None


def merge_dota(
    dst: str | Path,
    out: str | Path,
    *,
    model: str | Path | None = None,
    pred_dir: str | Path | None = None,
    split: str = DEFAULT_SPLIT,
    format: str | None = None,
    conf: float = DEFAULT_CONF,
    iou: float | None = None,
    labels: str | Path | None = None,
    **predict_args,
) -> MergeResult:
    """Merge tile predictions of one split of a ``tile_dota`` output back to full images, write and score them.

    Args:
        dst (str | Path): The tiler's output folder (``manifest.csv`` in it; ``DST/obb`` of a ``both`` DST is read as
            DST with format obb).
        out (str | Path): Output folder (created; files of an earlier run with the same names are replaced).
        model (str | Path | None): YOLO weights to run over the split's tiles (detect or obb).
        pred_dir (str | Path | None): Or a folder of per-tile YOLO txt predictions (``save_txt=True save_conf=True``).
        split (str): Split to merge.
        format (str | None): ``detect`` or ``obb``; None: the model's task, else the tiler's format (``both``: obb).
        conf (float): Drop detections below this confidence (also passed to the model).
        iou (float | None): NMS threshold of the merge; None: ``NMS_IOU`` (obb 0.1 as the devkit, detect 0.5).
        labels (str | Path | None): Folder of DOTA label files to score against; None: the split's source labels
            recorded by the tiler (no score when it has none).
        **predict_args (Any): Passed to ``YOLO.predict`` with ``model`` (imgsz, batch, device, max_det, half...).

    Returns:
        (MergeResult): What was written and the metric.

    Raises:
        MergeError: Bad arguments or input (missing manifest, unknown tile, box outside its tile, empty folder...);
            OUT is then left as it was.

    Examples:
        >>> from ultralytics_fss.large_images import merge_dota
        >>> r = merge_dota("DOTA-tiles", "runs/dota-val", model="best.pt", split="val")  # doctest: +SKIP
        >>> r.metrics["mAP"]  # doctest: +SKIP
    """
    out = check_merge_args(model, pred_dir, out)
    dst, root_format = TileOutput.dst_of(Path(dst))  # DST/obb of a ``--format both`` DST: same tiles, one manifest
    if root_format is not None:
        format = format or root_format
    index = TileIndex.load(dst, split)
    yolo = None
    if model is not None:
        from ultralytics import YOLO

        yolo = YOLO(model)
        fmt = _check_format(format, model_format(yolo), f"--model {model}")
        if len(yolo.names) != len(index.names):
            raise MergeError(f"--model {model} has {len(yolo.names)} classes, {index.dst} has {len(index.names)}")
    else:
        written = label_formats(index.format)
        fmt = format or ("obb" if "obb" in written else written[0])  # obb (Task1) when the tiler wrote it
    if fmt not in FORMAT_COLUMNS:
        raise MergeError(f"--format must be detect or obb, got {fmt!r}")
    gt = split_ground_truth(index, labels)
    if yolo is not None:
        predict_args = {"imgsz": index.crop, "max_det": DEFAULT_MAX_DET, **predict_args}
        per_image = predict_tiles(yolo, index, fmt, conf=conf, **predict_args)
    else:
        per_image = read_prediction_dir(pred_dir, index, fmt)
    merged = {im: merge_image(d.select(d.scores >= conf), fmt, index.sizes[im], iou) for im, d in per_image.items()}
    result = _write(out, merged, index.names, fmt, gt)
    log_result(result, index, fmt, iou, conf)
    return result


def check_merge_args(model, pred_dir, out: str | Path) -> Path:
    """The checks every merge makes before reading anything: exactly one prediction source, OUT a folder or absent,
    and writable (`files.unwritable`).

    Raises:
        MergeError: Naming the argument.
    """
    if (model is None) == (pred_dir is None):
        raise MergeError("give exactly one of --model (weights) and --pred-dir (a folder of tile predictions)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MergeError(f"--out {out}: exists and is not a folder")
    if why := unwritable(out):
        raise MergeError(f"--out {out}: cannot write there: {why}")
    return out


def add_predict_arguments(p) -> None:
    """The ``--model`` options of the merge command lines (``merge_dota``, ``merge_tiles``): imgsz, batch, device,
    max-det, in their own argparse group of `p`."""
    g = p.add_argument_group("with --model")
    g.add_argument("--imgsz", type=int, help="inference size (default: the tile side)")
    g.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default: {DEFAULT_BATCH})")
    g.add_argument("--device", help="device, e.g. cpu, 0 (default: Ultralytics' choice)")
    g.add_argument(
        "--max-det", type=int, default=DEFAULT_MAX_DET, help=f"detections per tile (default: {DEFAULT_MAX_DET})"
    )


def predict_arguments(a) -> dict:
    """The ``YOLO.predict`` arguments the options of `add_predict_arguments` give (none without ``--model``)."""
    if not a.model:
        return {}
    return {
        k: v
        for k, v in {"imgsz": a.imgsz, "batch": a.batch, "device": a.device, "max_det": a.max_det}.items()
        if v is not None
    }


def _check_format(asked: str | None, actual: str, source: str) -> str:
    """The format of a model's predictions, refusing a contradicting ``--format``."""
    if asked is not None and asked != actual:
        raise MergeError(f"--format {asked} contradicts {source}, which predicts {actual}")
    return actual


def split_ground_truth(index: TileIndex, labels: str | Path | None) -> dict[str, GroundTruth] | None:
    """The split's DOTA labels, by image stem (missing files: no objects); None when the split has no labels."""
    if labels is None:
        labels = index.output.source_labels(index.split)
        if labels is None:
            LOGGER.info(f"{PREFIX}no DOTA labels recorded for split {index.split!r}: writing results without scores")
            return None
    folder = Path(labels)
    if not folder.is_dir():
        raise MergeError(f"--labels {folder}: not a folder of DOTA label files")
    files = list_files(folder, (".txt",))
    found = read_ground_truth({im: files[im] for im in index.sizes if im in files}, index.names)
    empty = GroundTruth(np.zeros((0, 8)), np.zeros(0, np.int64), np.zeros(0, bool))
    return {im: found.get(im, empty) for im in index.sizes}


def task_lines(merged: dict[str, Detections], c: int) -> str:
    """One class's Task-file text: ``image score coords...`` per detection, images in order, scores descending.

    Args:
        merged (dict[str, Detections]): Merged detections per image stem.
        c (int): Class index.

    Returns:
        (str): The lines (coordinates to 0.01 px, scores to 6 significant digits), newline-terminated.
    """
    lines = []
    for image, d in merged.items():
        for score, box in zip(d.scores[d.cls == c].tolist(), d.boxes[d.cls == c].tolist()):
            lines.append(f"{image} {score:.6g} " + " ".join(f"{v:.2f}" for v in box) + "\n")
    return "".join(lines)


def _write(
    out: Path, merged: dict[str, Detections], names: tuple[str, ...], fmt: str, gt: dict[str, GroundTruth] | None
) -> MergeResult:
    """Write Task files, zip and metric into a temporary folder beside OUT, then move them into OUT."""
    task = TASKS[fmt]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        files = []
        for c, name in enumerate(names):
            files.append(task_file(tmp, task, name))
            files[-1].write_text(task_lines(merged, c), encoding="utf-8")
        with zipfile.ZipFile(tmp / f"{task}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, arcname=f.name)  # at the archive root, as the evaluation server wants
        metrics = None
        if gt is not None:
            metrics = evaluate_task_files(tmp, task, names, gt)  # scored from the files as written
            report = {"mAP": metrics["mAP"], "AP": metrics["AP"]}
            if not math.isnan(metrics["mAP"]):
                (tmp / EVAL_JSON).write_text(json.dumps(report, indent=1), encoding="utf-8")
        if out.is_dir():
            for f in sorted(tmp.iterdir()):
                os.replace(f, out / f.name)  # each file appears whole
            tmp.rmdir()
        else:
            os.replace(tmp, out)  # the whole folder appears at once
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n = sum(len(d) for d in merged.values())
    return MergeResult(out=out, task=task, images=len(merged), detections=n, metrics=metrics)


def log_result(r: MergeResult, index: TileIndex, fmt: str, iou: float | None, conf: float) -> None:
    """Print, with labels, the per-class AP table (Ultralytics' validation style), then the closing line
    (`merge_line`)."""
    if r.metrics is not None:
        log_ap_table(r.metrics, PREFIX, r.out / EVAL_JSON, r.task)
    LOGGER.info(merge_line(PREFIX, index, r.images, r.detections, fmt, iou, conf, r.out))


def merge_line(
    prefix: str, index: TileIndex, images: int, detections: int, fmt: str, iou: float | None, conf: float, out: Path
) -> str:
    """The closing line of a merge: what was merged, how many detections it kept and under which thresholds (the
    confidence threshold says why the same model gives far fewer detections through `predict_tiled`, whose default
    is Ultralytics' predict default, than through a merge, whose default is for scoring)."""
    return (f"{prefix}{len(index.tiles)} tiles of {images} images ({index.split}) -> {detections} {fmt} detections "
            f"with confidence >= {conf}, after class-wise NMS at IoU {NMS_IOU[fmt] if iou is None else iou} -> {out}")


def log_ap_table(m: dict, prefix: str, path: Path, task: str = "Task1") -> None:
    """DOTA's metric as Ultralytics' validation prints a table: all classes, then each class with its AP50.

    Args:
        m (dict): ``{"mAP", "AP", "objects"}`` (:func:`.metric.evaluate_task_files`).
        prefix (str): Log prefix of the calling tool.
        path (Path): Where the metric was written.
        task (str): ``Task1`` (obb) or ``Task2`` (detect), for the last line.
    """
    if math.isnan(m["mAP"]):
        LOGGER.warning(f"{prefix}no non-difficult object in the labels of the split: nothing to score")
        return
    LOGGER.info(f"{'class':>22}{'objects':>11}{'AP50 (VOC07)':>15}")
    LOGGER.info(f"{'all':>22}{sum(m['objects'].values()):>11}{m['mAP']:>15.4f}")
    for name, n in m["objects"].items():
        LOGGER.info(f"{name:>22}{n:>11}{m['AP'][name]:>15.4f}" if n else f"{name:>22}{0:>11}{'-':>15}")
    LOGGER.info(
        f"{prefix}DOTA {task} metric (VOC07 11-point AP at IoU 0.5, difficult objects ignored); mAP over the "
        f"{len(m['AP'])} classes with objects in these images -> {path}"
    )
