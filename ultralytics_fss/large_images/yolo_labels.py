"""Ultralytics YOLO-format sources for the tiler: a dataset YAML resolved by Ultralytics' own
checks, and label files of detect, obb and segment datasets parsed into pixel polygons (pure: text in, arrays and
messages out), as `labels.py` does for DOTA.

Label lines, coordinates normalised to [0, 1] by the image's width and height:
    detect   ``cls cx cy w h`` (or a polygon ``cls x1 y1 ... xn yn``, which Ultralytics turns into its bounding box)
    obb      ``cls x1 y1 x2 y2 x3 y3 x4 y4``
    segment  ``cls x1 y1 ... xn yn`` (n >= 3; a ``cls cx cy w h`` line is the box's four corners)

A malformed line (wrong count, non-numeric or non-finite value, coordinates outside [0, 1], a class outside the
dataset's names) is skipped and reported with its file and line, as the DOTA parser does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

TASKS = ("detect", "obb", "segment")
TOLERANCE = 1e-6  # normalised coordinates within [-tol, 1 + tol] count as inside (float text round-off)


@dataclass
class ParsedPolygons:
    """Objects of one YOLO label file, as pixel polygons.

    Attributes:
        polygons (list[np.ndarray]): One (K, 2) float64 array of pixel corners per object (K = 4 for boxes).
        cls (np.ndarray): Class indices, shape (N,), int64.
        lines (np.ndarray): 1-based line number of each object, shape (N,), int64.
        problems (list[str]): One message per malformed line, naming file and line.
    """

    polygons: list[np.ndarray]
    cls: np.ndarray
    lines: np.ndarray
    problems: list[str] = field(default_factory=list)


def box_corners(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """The four corners of an axis-aligned box given by centre and size, clockwise from top-left, shape (4, 2)."""
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def parse_yolo_label_text(text: str, source: str | Path, task: str, width: int, height: int, nc: int) -> ParsedPolygons:
    """Parse the text of an Ultralytics YOLO label file of `task` for an image of `width` x `height` pixels.

    Args:
        text (str): File contents.
        source (str | Path): File name used in messages.
        task (str): "detect", "obb" or "segment".
        width (int), height (int): The image's size in pixels (the coordinates are normalised by it).
        nc (int): Number of classes in the dataset (a class index must be in 0..nc-1).

    Returns:
        (ParsedPolygons): The objects and the problems found.

    Raises:
        ValueError: For an unknown task.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r}: expected one of {TASKS}")
    fast = _parse_clean(text, task, width, height, nc)
    return fast if fast is not None else _parse_lines(text, source, task, width, height, nc)


def _parse_clean(text: str, task: str, width: int, height: int, nc: int) -> ParsedPolygons | None:
    """`parse_yolo_label_text` of a file whose lines all hold the same number of values and are all valid, in array
    operations (a large-image label file holds thousands of lines); None for any other file, which `_parse_lines`
    reads line by line with its messages. Both give the same result on a clean file (tested)."""
    numbered = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)]
    numbered = [(n, t) for n, t in numbered if t]
    if not numbered or len({len(t) for _, t in numbered}) > 1:
        return None if numbered else ParsedPolygons([], np.zeros(0, np.int64), np.zeros(0, np.int64))
    try:
        a = np.array([t for _, t in numbered], dtype=np.float64)  # (N, 1 + values)
    except ValueError:
        return None
    c, coords = a[:, 0], a[:, 1:]
    k = coords.shape[1]
    if task == "obb" and k != 8 or k < 4 or (k != 4 and k % 2) or not np.isfinite(a).all():
        return None
    if ((c != np.round(c)) | (c < 0) | (c >= nc)).any():
        return None
    if k == 4 and task != "obb":
        cx, cy, w, h = coords.T
        if ((w <= 0) | (h <= 0)).any():
            return None
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                            np.stack([x1, y2], 1)], 1)  # (N, 4, 2) clockwise from top-left, as `box_corners`
    else:
        corners = coords.reshape(len(a), -1, 2)  # (N, K, 2)
    if ((corners < -TOLERANCE) | (corners > 1 + TOLERANCE)).any():
        return None
    corners = corners.clip(0, 1)
    if task == "detect" and k != 4:  # polygons in a detect dataset: their bounding boxes, as Ultralytics
        lo, hi = corners.min(1), corners.max(1)
        centre, size = (lo + hi) / 2, hi - lo  # the arithmetic of `box_corners`, so both paths agree to the bit
        lo, hi = centre - size / 2, centre + size / 2
        corners = np.stack([lo, np.stack([hi[:, 0], lo[:, 1]], 1), hi, np.stack([lo[:, 0], hi[:, 1]], 1)], 1)
    pixels = corners * np.array([width, height], dtype=np.float64)
    return ParsedPolygons(list(pixels), c.astype(np.int64), np.array([n for n, _ in numbered], dtype=np.int64))


def _parse_lines(text: str, source: str | Path, task: str, width: int, height: int, nc: int) -> ParsedPolygons:
    """`parse_yolo_label_text` line by line: every malformed line skipped and reported with its file and line."""
    polygons, classes, lines, problems = [], [], [], []
    scale = np.array([width, height], dtype=np.float64)
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{source}:{n}"
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            problems.append(f"{where}: non-numeric value {bad!r} in {line.strip()!r}")
            continue
        if not np.isfinite(values).all():
            problems.append(f"{where}: non-finite value in {line.strip()!r}")
            continue
        c, coords = values[0], values[1:]
        if not (c.is_integer() and 0 <= c < nc):
            problems.append(f"{where}: class {tokens[0]!r} is not an index of the dataset's {nc} classes")
            continue
        expected = {"obb": "9 values (cls x1 y1 x2 y2 x3 y3 x4 y4)"}.get(
            task, "5 values (cls cx cy w h) or a polygon (cls x1 y1 ... xn yn, n >= 3)")
        if task == "obb" and len(coords) != 8 or len(coords) < 4 or (len(coords) != 4 and len(coords) % 2):
            problems.append(f"{where}: {len(values)} values, expected {expected}, in {line.strip()!r}")
            continue
        if len(coords) == 4 and task != "obb":
            cx, cy, w, h = coords
            if w <= 0 or h <= 0:
                problems.append(f"{where}: box without area (w={w:g}, h={h:g}) in {line.strip()!r}")
                continue
            corners = box_corners(cx, cy, w, h)
        else:
            corners = np.array(coords, dtype=np.float64).reshape(-1, 2)
        if ((corners < -TOLERANCE) | (corners > 1 + TOLERANCE)).any():
            problems.append(f"{where}: coordinates outside [0, 1] (normalised by the image size) in {line.strip()!r}")
            continue
        corners = corners.clip(0, 1)
        if task == "detect" and len(coords) != 4:
            lo, hi = corners.min(0), corners.max(0)  # a polygon in a detect dataset: its bounding box, as Ultralytics
            corners = box_corners(*(lo + hi) / 2, *(hi - lo))
        polygons.append(corners * scale)
        classes.append(int(c))
        lines.append(n)
    return ParsedPolygons(polygons, np.array(classes, dtype=np.int64), np.array(lines, dtype=np.int64), problems)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def resolve_yolo_dataset(data: str | Path, splits: tuple[str, ...] = ("train", "val")) -> tuple[list[str], dict]:
    """Resolve a dataset YAML with Ultralytics' own check (`check_det_dataset`: folders, image-list files, lists of
    either, paths relative to `path`) and list each split's images as Ultralytics' datasets do (`get_img_files`).

    Args:
        data (str | Path): The dataset YAML.
        splits (tuple[str, ...]): The splits to list; a split the YAML does not name is left out.

    Returns:
        names (list[str]): Class names in index order.
        images (dict[str, list[Path]]): Each split's image files, sorted, with their label files next to them
            (`label_path`).

    Raises:
        FileNotFoundError | RuntimeError: As Ultralytics raises them, for a YAML that does not resolve or a split
            without images.
    """
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data), autodownload=False)
    names = [info["names"][i] for i in range(len(info["names"]))]
    return names, {split: list_images(info[split]) for split in splits if info.get(split)}


def list_images(source: str | Path | list) -> list[Path]:
    """The image files of a split entry as Ultralytics' datasets list them (`BaseDataset.get_img_files`): a folder, an
    image-list ``.txt`` file (paths relative to its folder), or a list of either.

    Raises:
        FileNotFoundError: As Ultralytics raises it, for a missing source or one without images.
    """
    from ultralytics.data.base import BaseDataset

    lister = SimpleNamespace(prefix="", fraction=1.0)  # what `get_img_files` reads of its dataset
    return [Path(p) for p in BaseDataset.get_img_files(lister, source if isinstance(source, list) else str(source))]


def label_path(image: str | Path) -> Path:
    """The label file of an image, as Ultralytics finds it (`img2label_paths`: the last `images` folder becomes
    `labels`, the suffix `.txt`)."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([str(image)])[0])
