"""The ground truths of one picture: YOLO label rows of each task, read, checked and letterboxed.

Rows as Ultralytics' label files hold them, normalised to the image: `class cx cy w h` (detect), `class x1 y1 x2 y2 x3
y3 x4 y4` (obb: the four corners, as `tile_dota --format obb` writes them), `class x1 y1 x2 y2 x3 y3 ...` (segment:
the outline, three points or more) and `class cx cy w h` followed by K keypoints `x y [visibility]` (pose). As
Ultralytics' dataset does (`ultralytics.data.utils.verify_image_label`), the box of a polygon is its bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ultralytics.utils.ops import segments2boxes

ROW_FORMATS = {  # what a row of each task holds, for error messages
    "detect": "class cx cy w h",
    "obb": "class x1 y1 x2 y2 x3 y3 x4 y4",
    "segment": "class x1 y1 x2 y2 x3 y3 ... (3 points or more)",
    "pose": "class cx cy w h, then {k} keypoints of {d} values",
}


@dataclass(frozen=True)
class GTLabels:
    """The ground truths of one image, in one unit: normalised to the image (as read), or pixels (`letterboxed`).

    Attributes:
        cls (np.ndarray): (n,) float32 classes.
        boxes (np.ndarray): (n, 4) float32 xywh; for obb and segment the bounds of the polygon.
        polygons (list[np.ndarray] | None): n (k, 2) float32 polygons: the 4 corners of each rotated box (obb), each
            object's outline (segment); None for detect and pose.
        keypoints (np.ndarray | None): (n, K, 2 or 3) float32 keypoints (x, y [, visibility]) for pose, else None.
    """

    cls: np.ndarray
    boxes: np.ndarray
    polygons: list[np.ndarray] | None = None
    keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of ground truths."""
        return len(self.cls)


def from_rows(rows: Sequence[Sequence[float]], task: str, kpt_shape: Sequence[int] | None = None) -> GTLabels:
    """Ground truths from YOLO label rows of `task` (see the module docstring).

    Args:
        rows (Sequence[Sequence[float]]): One sequence of numbers per object (an (n, cols) array works too).
        task (str): `detect`, `obb`, `segment` or `pose`.
        kpt_shape (Sequence[int], optional): (K, ndim) keypoints of the pose model.

    Raises:
        ValueError: If a row does not have the task's length (names the row and the format expected).
    """
    rows = [np.asarray(r, dtype=np.float32).reshape(-1) for r in rows]
    for i, row in enumerate(rows):
        if not _row_fits(len(row), task, kpt_shape):
            raise _row_error(f"row {i + 1}", task, kpt_shape, " ".join(f"{v:g}" for v in row))
    cls = np.array([r[0] for r in rows], dtype=np.float32)
    if task in {"obb", "segment"}:
        polygons = [r[1:].reshape(-1, 2) for r in rows]
        boxes = segments2boxes(polygons).astype(np.float32) if rows else np.zeros((0, 4), np.float32)
        return GTLabels(cls, boxes, polygons)
    boxes = np.array([r[1:5] for r in rows], dtype=np.float32).reshape(-1, 4)
    keypoints = np.array([r[5:] for r in rows], dtype=np.float32).reshape(-1, *kpt_shape) if task == "pose" else None
    return GTLabels(cls, boxes, keypoints=keypoints)


def _row_fits(length: int, task: str, kpt_shape: Sequence[int] | None) -> bool:
    """Whether a row of `length` numbers is a label row of `task`."""
    if task == "obb":
        return length == 9
    if task == "segment":
        return length >= 7 and length % 2 == 1
    if task == "pose":
        return length == 5 + kpt_shape[0] * kpt_shape[1]
    return length == 5


def _row_error(place: str, task: str, kpt_shape: Sequence[int] | None, got: str) -> ValueError:
    """The error for a row at `place` (`file:line`, `row i`) that is not a `task` row; `got` is what it holds."""
    fmt = ROW_FORMATS[task].format(k=kpt_shape[0], d=kpt_shape[1]) if task == "pose" else ROW_FORMATS[task]
    return ValueError(f"{place}: expected '{fmt}' (YOLO {task} label), got {got!r}")


def read_labels(path: str | Path, task: str = "detect", kpt_shape: Sequence[int] | None = None) -> GTLabels:
    """Ground truths from a YOLO label file of `task` (blank lines skipped).

    Raises:
        ValueError: If a line is not a row of the task (names the file and line, and the format expected).
    """
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in line.split()]
        except ValueError:
            row = []
        if not _row_fits(len(row), task, kpt_shape):
            raise _row_error(f"{path}:{n}", task, kpt_shape, line.strip())
        rows.append(row)
    return from_rows(rows, task, kpt_shape)


def from_dataset_label(label: dict, task: str) -> GTLabels:
    """Ground truths from one entry of an Ultralytics `YOLODataset.labels` (normalised xywh `bboxes`, `segments`:
    polygons or the corners of rotated boxes, `keypoints`)."""
    polygons = [np.asarray(s, np.float32) for s in label["segments"]] if task in {"obb", "segment"} else None
    keypoints = label.get("keypoints") if task == "pose" else None
    boxes = np.asarray(label["bboxes"], np.float32).reshape(-1, 4)
    return GTLabels(np.asarray(label["cls"], np.float32).reshape(-1), boxes, polygons, keypoints)


def checked(gt: GTLabels, nc: int) -> GTLabels:
    """`gt`, checked against a model of `nc` classes.

    Raises:
        ValueError: If there is no ground truth, or a class outside [0, nc).
    """
    if not len(gt):
        raise ValueError("the image has no ground truth to assign (empty labels)")
    if gt.cls.min() < 0 or gt.cls.max() >= nc:
        raise ValueError(f"label classes {sorted(set(gt.cls.astype(int)))} outside the model's {nc} classes")
    return gt


def letterboxed(image: np.ndarray, gt: GTLabels, imgsz: int) -> tuple[np.ndarray, GTLabels]:
    """Resize and pad a BGR image to `imgsz` x `imgsz` as Ultralytics' `LetterBox(auto=False)` does, and map its
    normalised ground truths to pixels of the result.

    Returns:
        image (np.ndarray): (imgsz, imgsz, 3) uint8 BGR.
        gt (GTLabels): The ground truths in pixels of that image.
    """
    from ultralytics.data.augment import LetterBox

    h, w = image.shape[:2]
    r = min(imgsz / h, imgsz / w)
    new_w, new_h = round(w * r), round(h * r)
    left, top = round((imgsz - new_w) / 2 - 0.1), round((imgsz - new_h) / 2 - 0.1)  # LetterBox's own rounding
    out = LetterBox((imgsz, imgsz), auto=False)(image=image)

    def points(xy: np.ndarray) -> np.ndarray:
        """(..., 2+) normalised points (extra columns kept) to pixels."""
        xy = np.array(xy, dtype=np.float32)
        xy[..., :2] = xy[..., :2] * [w * r, h * r] + [left, top]
        return xy

    boxes = (gt.boxes * [w, h, w, h] * r + [left, top, 0, 0]).astype(np.float32)
    polygons = None if gt.polygons is None else [points(p) for p in gt.polygons]
    keypoints = None if gt.keypoints is None else points(gt.keypoints)
    return out, GTLabels(gt.cls, boxes, polygons, keypoints)
