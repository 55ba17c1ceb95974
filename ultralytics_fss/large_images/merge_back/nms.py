"""Merge tile detections back onto their full image: map to image pixels, then class-wise NMS (numpy, shapely, torch).

Axes: N detections. Boxes are ``(x0, y0, x1, y1)`` pixels (detect, ``(N, 4)``) or four corners ``(x1, y1, ..., x4,
y4)`` pixels (obb, ``(N, 8)``), float64.

The defaults follow the DOTA devkit's ``ResultMerge_multi_process.py``: polygon NMS at IoU 0.1 for oriented boxes.
For axis-aligned boxes the devkit uses 0.3, which removes real objects where rotated objects lie side by side (their
hulls overlap); ``NMS_IOU["detect"]`` is 0.5, measured on the DOTA samples (see docs/large-images.md, "DOTA merge-back").

Reference:
    DOTA devkit, ``ResultMerge_multi_process.py`` (``poly2origpoly``, ``py_cpu_nms_poly_fast``, ``nms_thresh``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import torch
import torchvision

from ..geometry import make_polygons

FORMAT_COLUMNS = {"detect": 4, "obb": 8}  # box columns per detection: xyxy, or four corners
NMS_IOU = {"obb": 0.1, "detect": 0.5}  # obb: the devkit's ResultMerge; detect: measured, see the module docstring
_EPS = 1e-9  # guards the IoU of degenerate (zero-area) polygons against 0 / 0


@dataclass(frozen=True)
class Detections:
    """Detections of one image (or tile), one row each.

    Attributes:
        boxes (np.ndarray): Pixels, shape (N, 4) xyxy (detect) or (N, 8) corners (obb), float64.
        scores (np.ndarray): Confidences, shape (N,), float64.
        cls (np.ndarray): Class indices, shape (N,), int64.
    """

    boxes: np.ndarray
    scores: np.ndarray
    cls: np.ndarray

    @classmethod
    def empty(cls, fmt: str) -> Detections:
        """No detections, in the shapes of ``fmt`` (``detect`` or ``obb``)."""
        return cls(np.zeros((0, FORMAT_COLUMNS[fmt])), np.zeros(0), np.zeros(0, np.int64))

    def __len__(self) -> int:
        """Number of detections."""
        return len(self.scores)

    def select(self, index: np.ndarray) -> Detections:
        """The rows ``index`` (integer indices or a boolean mask)."""
        return Detections(self.boxes[index], self.scores[index], self.cls[index])

    @staticmethod
    def concat(parts: list[Detections], fmt: str) -> Detections:
        """All rows of ``parts`` in order; no parts give :meth:`empty` of ``fmt``."""
        if not parts:
            return Detections.empty(fmt)
        return Detections(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("boxes", "scores", "cls")))


def tile_to_image(boxes: np.ndarray, offset: tuple[int, int], scale: tuple[float, float]) -> np.ndarray:
    """Map tile pixels to full-image pixels: add the tile's offset (scaled pixels), then divide by the scale.

    Args:
        boxes (np.ndarray): Boxes in tile pixels, shape (N, 2k) with alternating x, y (xyxy or corners), float.
        offset (tuple[int, int]): Tile's top-left corner ``(left, top)`` in the rescaled image, pixels.
        scale (tuple[float, float]): Per-axis factors ``(sx, sy)`` from the original to the rescaled image
            (``scaled_size / original size``; the rate up to the rounding of the size).

    Returns:
        (np.ndarray): Boxes in original-image pixels, shape (N, 2k), float64 (a new array).

    Examples:
        >>> tile_to_image(np.array([[10.0, 20.0, 30.0, 40.0]]), (800, 0), (0.5, 0.5)).tolist()
        [[1620.0, 40.0, 1660.0, 80.0]]
    """
    k = boxes.shape[1] // 2
    return (np.asarray(boxes, np.float64) + np.tile(offset, k)) / np.tile(scale, k)  # (N, 2k)


def polygon_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact IoU of polygon pairs (shapely); bow-tie corner orders are read as the hull of their corners.

    Args:
        a (np.ndarray): Polygons (shapely, shape (P,), object) or corners, shape (P, 8).
        b (np.ndarray): The same for the other member of each pair, shape (P,) or (P, 8).

    Returns:
        (np.ndarray): IoU of each pair, shape (P,), float64.
    """
    ga = a if a.dtype == object else make_polygons(a)[0]  # (P,)
    gb = b if b.dtype == object else make_polygons(b)[0]  # (P,)
    inter = shapely.area(shapely.intersection(ga, gb))  # (P,)
    return inter / np.maximum(shapely.area(ga) + shapely.area(gb) - inter, _EPS)


def polygon_overlaps(ga: np.ndarray, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every intersecting pair between two polygon sets; pairs that do not touch (IoU 0) are left out.

    A spatial index (shapely's STRtree) finds the candidate pairs, so the cost grows with the overlaps, not N x M.

    Args:
        ga (np.ndarray): Polygons, shape (N,), object.
        gb (np.ndarray): Polygons, shape (M,), object.

    Returns:
        i (np.ndarray): Index into ``ga`` of each pair, shape (P,), int64.
        j (np.ndarray): Index into ``gb``, shape (P,), int64.
        iou (np.ndarray): IoU, shape (P,), float64.
    """
    if not len(ga) or not len(gb):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i, j = shapely.STRtree(gb).query(ga, predicate="intersects")  # (P,), (P,)
    return i.astype(np.int64), j.astype(np.int64), polygon_iou_pairs(ga[i], gb[j])


def nms_polygons(polys: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS with exact polygon IoU, as the devkit's ``py_cpu_nms_poly_fast`` (without its polyiou build).

    Greedy NMS is sequential by definition (a suppressed box suppresses nothing); the loop runs once per box over
    a precomputed sparse list of overlapping pairs, so it costs O(N + pairs).

    Args:
        polys (np.ndarray): Corners, shape (N, 8), float.
        scores (np.ndarray): Confidences, shape (N,), float.
        iou (float): Suppress a box whose IoU with a kept, higher-scored box is above this.

    Returns:
        (np.ndarray): Indices of the kept boxes, by descending score (ties: input order), shape (K,), int64.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")  # (N,)
    geoms = make_polygons(polys[order])[0]  # (N,) in score order
    i, j, ov = polygon_overlaps(geoms, geoms)  # (P,)
    hit = (i < j) & (ov > iou)  # i outranks j and overlaps it enough to suppress it
    i, j = i[hit], j[hit]
    by_i = np.argsort(i, kind="stable")
    i, j = i[by_i], j[by_i]
    starts = np.searchsorted(i, np.arange(len(order) + 1))  # (N + 1,) CSR row pointers
    suppressed = np.zeros(len(order), bool)
    keep = []
    for k in range(len(order)):
        if not suppressed[k]:
            keep.append(k)
            suppressed[j[starts[k] : starts[k + 1]]] = True
    return order[np.asarray(keep, np.int64)]


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS of axis-aligned boxes with ``torchvision.ops.nms``, as Ultralytics' ``non_max_suppression`` runs it.

    (Ultralytics' pure-torch fallback ``TorchNMS.nms`` gives the same result but loops in Python: 49 s instead of a
    fraction of a second for the 30,000 boxes of a crowded full DOTA image.)

    Args:
        boxes (np.ndarray): Boxes xyxy, shape (N, 4), float.
        scores (np.ndarray): Confidences, shape (N,), float.
        iou (float): Suppression threshold.

    Returns:
        (np.ndarray): Indices of the kept boxes, by descending score, shape (K,), int64.
    """
    keep = torchvision.ops.nms(
        torch.as_tensor(boxes, dtype=torch.float64), torch.as_tensor(scores, dtype=torch.float64), iou
    )
    return keep.numpy().astype(np.int64)


def classwise_nms(dets: Detections, fmt: str, iou: float | None = None) -> Detections:
    """Class-wise NMS of one image's detections: boxes of different classes never suppress each other.

    Classes are separated as Ultralytics' ``non_max_suppression`` does, by shifting each class far along x (by more
    than the extent of all boxes), so one NMS call serves all classes.

    Args:
        dets (Detections): Detections of one image in image pixels.
        fmt (str): ``detect`` (box IoU) or ``obb`` (polygon IoU).
        iou (float | None): Suppression threshold; None: ``NMS_IOU[fmt]``.

    Returns:
        (Detections): The kept detections, by descending score.
    """
    if not len(dets):
        return dets
    iou = NMS_IOU[fmt] if iou is None else iou
    span = float(np.abs(dets.boxes).max()) * 2 + 1  # wider than any box: shifted classes cannot overlap
    shifted = dets.boxes.copy()
    shifted[:, 0::2] += dets.cls[:, None] * span  # x columns only
    keep = nms_polygons(shifted, dets.scores, iou) if fmt == "obb" else nms_boxes(shifted, dets.scores, iou)
    return dets.select(keep)


def merge_image(dets: Detections, fmt: str, size: tuple[int, int], iou: float | None = None) -> Detections:
    """Merge one image's tile detections: clip detect boxes to the image, then class-wise NMS.

    Tiles at the right and bottom edges are zero-padded past the image, so an axis-aligned box may reach into the
    padding; it is clipped as Ultralytics clips boxes to an image. Oriented boxes are kept as predicted (their corners
    may leave the image, as in Ultralytics' own OBB results and the devkit's merge).

    Args:
        dets (Detections): The image's detections from all its tiles, image pixels.
        fmt (str): ``detect`` or ``obb``.
        size (tuple[int, int]): Image ``(width, height)``, pixels.
        iou (float | None): NMS threshold; None: ``NMS_IOU[fmt]``.

    Returns:
        (Detections): The merged detections, by descending score.
    """
    if fmt == "detect" and len(dets):
        w, h = size
        dets = Detections(np.clip(dets.boxes, 0, [w, h, w, h]), dets.scores, dets.cls)
    return classwise_nms(dets, fmt, iou)
