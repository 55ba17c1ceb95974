"""DOTA's own metric on full images: VOC07 11-point AP at IoU 0.5 per class, difficult objects ignored.

The same numbers as the DOTA devkit's ``dota_evaluation_task1.py`` (oriented boxes, polygon IoU) and
``dota_evaluation_task2.py`` (axis-aligned boxes, box IoU with the devkit's +1-pixel convention against each object's
axis-aligned hull, its corners truncated to integers as the devkit's ``parse_gt`` reads them), read from the same
``Task{1,2}_{class}.txt`` files. Their rules, in order, for each class:

1. Detections of all images are sorted by descending score (``np.argsort(-score)``, as the devkit, ties included).
2. Each detection takes the ground-truth object of its image and class with the highest IoU (the first on ties).
3. IoU > 0.5 (strictly): a difficult object makes the detection count neither way; otherwise the first detection of
   an object is a true positive, later ones are false positives (duplicates). IoU <= 0.5: a false positive.
4. Recall over the non-difficult objects, precision over the counted detections; AP = the mean over recall
   0, 0.1, ..., 1 of the best precision at that recall or above (VOC07, 11 points).

mAP is the mean over the classes with at least one non-difficult object in the evaluated images (the devkit averages
over its fixed class list, counting classes without objects as 0).

Reference:
    DOTA devkit ``dota_evaluation_task1.py`` / ``dota_evaluation_task2.py`` (``voc_eval``, ``voc_ap``); Everingham et
    al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010 (the 11-point AP of VOC2007).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from ..dota import read_label_file
from ..errors import MergeError
from ..geometry import make_polygons
from .nms import FORMAT_COLUMNS, Detections, polygon_overlaps

TASKS = {"obb": "Task1", "detect": "Task2"}  # DOTA's task per label format
TASK_COLUMNS = {task: FORMAT_COLUMNS[fmt] for fmt, task in TASKS.items()}  # box coordinates per Task-file row
IOU_THRESHOLD = 0.5  # DOTA (and VOC) matching threshold, "IoU > 0.5"
_RECALL_POINTS = np.arange(0.0, 1.1, 0.1)  # the devkit's 11 recall levels, float rounding included


@dataclass(frozen=True)
class GroundTruth:
    """Objects of one image.

    Attributes:
        polys (np.ndarray): Corners, shape (M, 8), float64 pixels.
        cls (np.ndarray): Class indices, shape (M,), int64 (-1: category outside the class list, never matched).
        difficult (np.ndarray): Difficult flags, shape (M,), bool.
    """

    polys: np.ndarray
    cls: np.ndarray
    difficult: np.ndarray


def read_ground_truth(label_files: dict[str, Path], names: tuple[str, ...]) -> dict[str, GroundTruth]:
    """Read the DOTA label files of the evaluated images.

    Args:
        label_files (dict[str, Path]): Image stem to its DOTA label file (``x1 y1 ... x4 y4 category difficult``).
        names (tuple[str, ...]): Category tokens in class order.

    Returns:
        (dict[str, GroundTruth]): Image stem to its objects, in the order of ``label_files``.
    """
    classes = {n: i for i, n in enumerate(names)}
    out = {}
    for stem, path in label_files.items():
        p = read_label_file(path, classes)
        out[stem] = GroundTruth(p.points.reshape(-1, 8), p.cls, p.difficult)
    return out


def hbb_ground_truth(polys: np.ndarray) -> np.ndarray:
    """Task2 ground truth: each polygon's axis-aligned hull, truncated to integers as the devkit reads it.

    Args:
        polys (np.ndarray): Corners, shape (M, 8), float.

    Returns:
        (np.ndarray): ``(xmin, ymin, xmax, ymax)``, shape (M, 4), float64.
    """
    xy = polys.reshape(-1, 4, 2)  # (M, 4, 2)
    return np.trunc(np.concatenate([xy.min(1), xy.max(1)], axis=1))  # (M, 4) int(float(v)) of the devkit


def box_iou_plus1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box pairs with the devkit's +1-pixel convention (a box covers ``x1 - x0 + 1`` pixels).

    Args:
        a (np.ndarray): Boxes xyxy, shape (P, 4), float.
        b (np.ndarray): Boxes xyxy, shape (P, 4), float.

    Returns:
        (np.ndarray): IoU of each pair, shape (P,), float64.
    """
    wh = np.maximum(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]) + 1.0, 0.0)  # (P, 2)
    inter = wh[:, 0] * wh[:, 1]

    def area(x: np.ndarray) -> np.ndarray:
        return (x[:, 2] - x[:, 0] + 1.0) * (x[:, 3] - x[:, 1] + 1.0)

    return inter / (area(a) + area(b) - inter)


def _best_overlap(det: np.ndarray, gt: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Highest IoU of each detection with the objects of one image and class, and which object (first on ties).

    Args:
        det (np.ndarray): Detections, shape (N, 8) corners (Task1) or (N, 4) xyxy (Task2).
        gt (np.ndarray): Objects, shape (M, 8) corners (Task1: polygons; Task2: their truncated hulls are used).
        task (str): ``Task1`` or ``Task2``.

    Returns:
        ovmax (np.ndarray): Best IoU, shape (N,), float64 (0 where no object touches the detection).
        jmax (np.ndarray): Index into ``gt`` of the best object, shape (N,), int64 (-1 where none touches).
    """
    if task == "Task1":
        i, j, iou = polygon_overlaps(make_polygons(det)[0], make_polygons(gt)[0])  # (P,) touching pairs only
    else:
        hbb = hbb_ground_truth(gt)  # (M, 4)
        i, j = shapely.STRtree(shapely.box(*hbb.T)).query(shapely.box(*det.T), predicate="intersects")  # (P,)
        iou = box_iou_plus1(det[i], hbb[j])  # boxes a pixel apart keep a small +1 IoU, never above 0.5
    ovmax, jmax = np.zeros(len(det)), np.full(len(det), -1, np.int64)
    if len(i):
        order = np.lexsort((j, -iou, i))  # per detection: highest IoU first, then the first object
        first = np.unique(i[order], return_index=True)[1]
        best = order[first]
        ovmax[i[best]], jmax[i[best]] = iou[best], j[best]
    return ovmax, jmax


def voc07_ap(tp: np.ndarray, fp: np.ndarray, npos: int) -> float:
    """VOC07 11-point AP of detections sorted by descending score.

    Args:
        tp (np.ndarray): True-positive flags, shape (N,), float or bool.
        fp (np.ndarray): False-positive flags, shape (N,) (a detection of a difficult object is neither).
        npos (int): Non-difficult objects, > 0.

    Returns:
        (float): AP in [0, 1].
    """
    if not len(tp):
        return 0.0
    tpc, fpc = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)  # (N,)
    rec = tpc / npos
    prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
    reached = rec[None, :] >= _RECALL_POINTS[:, None]  # (11, N)
    return float(np.where(reached, prec[None, :], 0.0).max(1).sum() / len(_RECALL_POINTS))


def evaluate_class(
    image_ids: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    gt: dict[str, GroundTruth],
    c: int,
    task: str,
    iou_threshold: float | tuple[float, ...] = IOU_THRESHOLD,
) -> tuple[float | list[float], int]:
    """AP of one class, the devkit's ``voc_eval`` (rules in the module docstring).

    Args:
        image_ids (np.ndarray): Image stem of each detection, shape (N,), str.
        scores (np.ndarray): Confidences, shape (N,), float.
        boxes (np.ndarray): Detections in image pixels, shape (N, 8) (Task1) or (N, 4) (Task2), float.
        gt (dict[str, GroundTruth]): Objects of every evaluated image.
        c (int): Class index.
        task (str): ``Task1`` or ``Task2``.
        iou_threshold (float | tuple[float, ...]): A match needs IoU above it (the devkit's 0.5); several thresholds
            give one AP each from the same overlaps, computed once.

    Returns:
        ap (float | list[float]): VOC07 AP (0 when the class has no detection), one per threshold when several.
        npos (int): Non-difficult objects of the class (AP is meaningless when 0).

    Raises:
        MergeError: A detection of an image that is not evaluated.
    """
    npos = int(sum(((g.cls == c) & ~g.difficult).sum() for g in gt.values()))
    order = np.argsort(-scores)  # the devkit's call: same order, ties included
    image_ids, boxes = image_ids[order], boxes[order]
    ovmax = np.zeros(len(order))  # (N,) best IoU
    best = np.full(len(order), -1, np.int64)  # (N,) best object, numbered across images; -1: none touches
    difficult = np.zeros(len(order), bool)  # (N,) whether the best object is difficult
    images, inverse = np.unique(image_ids, return_inverse=True)
    first_id = 0  # objects of class c are numbered image after image
    for k, image in enumerate(images.tolist()):  # per image: one spatial index over its objects of class c
        if image not in gt:
            raise MergeError(f"detection of image {image!r}, which is not among the {len(gt)} evaluated images")
        g, rows = gt[image], np.flatnonzero(inverse == k)  # (n,) this image's detections
        objects = np.flatnonzero(g.cls == c)  # (m,)
        if not len(objects):
            continue
        ov, jm = _best_overlap(boxes[rows], g.polys[objects], task)  # (n,), (n,)
        hit = jm >= 0
        ovmax[rows] = ov
        best[rows[hit]] = first_id + jm[hit]
        difficult[rows[hit]] = g.difficult[objects[jm[hit]]]
        first_id += len(objects)
    aps = []
    for threshold in np.atleast_1d(iou_threshold).tolist():  # the overlaps above serve every threshold
        matched = ovmax > threshold
        counted = matched & ~difficult  # a match with a difficult object counts neither way
        tp = np.zeros(len(order))
        hits = np.flatnonzero(counted)
        tp[hits[np.unique(best[hits], return_index=True)[1]]] = 1.0  # first (best-scored) detection of each object
        fp = (~matched | (counted & (tp == 0))).astype(np.float64)
        aps.append(voc07_ap(tp, fp, npos) if npos else 0.0)
    return (aps if np.ndim(iou_threshold) else aps[0]), npos


def task_file(folder: Path, task: str, name: str) -> Path:
    """One class's Task file in ``folder``, named as DOTA's evaluation server takes it: ``{task}_{name}.txt``."""
    return folder / f"{task}_{name}.txt"


def read_task_file(path: Path, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a ``Task{1,2}_{class}.txt`` file: ``image score coords...`` per line.

    Returns:
        image_ids (np.ndarray): Shape (N,), str.
        scores (np.ndarray): Shape (N,), float64.
        boxes (np.ndarray): Shape (N, 8) (Task1) or (N, 4) (Task2), float64.

    Raises:
        MergeError: A malformed line (file and line named).
    """
    width = TASK_COLUMNS[task] + 2  # image, score, coordinates
    ids, values = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        t = line.split()
        if not t:
            continue
        try:
            if len(t) != width:
                raise ValueError
            values.append([float(v) for v in t[1:]])
        except ValueError:
            raise MergeError(f"{path}:{n}: expected 'image score' and {width - 2} coordinates, got {line!r}") from None
        ids.append(t[0])
    a = np.array(values, dtype=np.float64).reshape(-1, width - 1)
    return np.array(ids, dtype=str), a[:, 0], a[:, 1:]


def evaluate_task_files(
    folder: Path, task: str, names: tuple[str, ...], gt: dict[str, GroundTruth], iou_threshold: float = IOU_THRESHOLD
) -> dict:
    """DOTA's metric from a folder of Task files (a missing class file counts as no detections).

    Args:
        folder (Path): Folder with ``{task}_{name}.txt`` files.
        task (str): ``Task1`` or ``Task2``.
        names (tuple[str, ...]): Category tokens in class order (the file names).
        gt (dict[str, GroundTruth]): Objects of every evaluated image.
        iou_threshold (float): A match needs IoU above it (the devkit's 0.5).

    Returns:
        (dict): ``{"mAP": float, "AP": {name: float}}`` over the classes with non-difficult objects (mAP is NaN when
            there are none), plus ``"objects": {name: int}`` (non-difficult objects per class, all classes).
    """
    return _evaluate_classes(_read_task_files(folder, task, names), task, names, gt, iou_threshold)


def _read_task_files(folder: Path, task: str, names: tuple[str, ...]) -> list[tuple]:
    """(image ids, scores, boxes) of each class's Task file in `folder`; a missing file is a class without
    detections."""
    per_class = []
    for name in names:
        path = task_file(folder, task, name)
        ids, scores, boxes = read_task_file(path, task) if path.is_file() else (np.zeros(0, str), np.zeros(0), None)
        per_class.append((ids, scores, np.zeros((0, TASK_COLUMNS[task])) if boxes is None else boxes))
    return per_class


def evaluate_detections(
    dets: dict[str, Detections],
    task: str,
    names: tuple[str, ...],
    gt: dict[str, GroundTruth],
    iou_threshold: float = IOU_THRESHOLD,
) -> dict:
    """DOTA's metric of in-memory detections (``merge_tiles``); the result of :func:`evaluate_task_files`.

    Args:
        dets (dict[str, Detections]): Image stem to its detections, boxes as a Task file's (corners or xyxy).
        task (str), names (tuple[str, ...]), gt (dict[str, GroundTruth]), iou_threshold (float): As for
            :func:`evaluate_task_files`.
    """
    ids = np.array([s for s, d in dets.items() for _ in range(len(d))], dtype=str)
    all_ = Detections.concat(list(dets.values()), "obb" if task == "Task1" else "detect")
    per_class = [(ids[all_.cls == c], all_.scores[all_.cls == c], all_.boxes[all_.cls == c]) for c in range(len(names))]
    return _evaluate_classes(per_class, task, names, gt, iou_threshold)


def _evaluate_classes(per_class: list[tuple], task: str, names: tuple[str, ...], gt: dict[str, GroundTruth],
                      iou_threshold: float = IOU_THRESHOLD) -> dict:  # fmt: skip
    """AP of each class from its (image ids, scores, boxes), mAP over the classes with objects."""
    ap, objects = {}, {}
    for c, (name, (ids, scores, boxes)) in enumerate(zip(names, per_class)):
        value, npos = evaluate_class(ids, scores, boxes, gt, c, task, iou_threshold)
        objects[name] = npos
        if npos:
            ap[name] = value
    return {"mAP": float(np.mean(list(ap.values()))) if ap else float("nan"), "AP": ap, "objects": objects}


AP50_95_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)  # COCO's ten IoU thresholds


def map50_95(folder: Path, task: str, names: tuple[str, ...], gt: dict[str, GroundTruth]) -> float:
    """The mean over COCO's ten IoU thresholds (0.5, 0.55, ..., 0.95) of DOTA's VOC07 mAP of a folder's Task files:
    each file read once and each detection's overlaps computed once (`evaluate_class` with several thresholds).

    Returns:
        (float): The mean mAP (NaN when no class has objects).
    """
    per_class = _read_task_files(folder, task, names)
    maps = [[] for _ in AP50_95_THRESHOLDS]
    for c, (ids, scores, boxes) in enumerate(per_class):
        aps, npos = evaluate_class(ids, scores, boxes, gt, c, task, tuple(AP50_95_THRESHOLDS.tolist()))
        for k, ap in enumerate(aps if npos else []):
            maps[k].append(ap)
    return float(np.mean([np.mean(m) for m in maps])) if maps[0] else float("nan")
