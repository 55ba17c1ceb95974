"""A generated dense, occluded small-object detection dataset: the demo's, the tests', the examples' and the
benchmarks' data, made offline in seconds.

Examples:
    >>> from ultralytics_fss.synthetic import make_dataset
    >>> data_yaml = make_dataset("datasets/shapes", images=400, imgsz=128)  # 80% train, 20% val
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from ultralytics.utils import TQDM, YAML, colorstr

CLASSES = ("disc", "square", "cross")  # shapes that differ in outline, so only the label assignment is under test
COLORS = ((40, 200, 240), (230, 90, 60), (90, 220, 90), (200, 80, 220), (240, 240, 70))


def _draw(img: np.ndarray, cls: int, cx: float, cy: float, w: float, h: float, color) -> None:
    """Draw one object of class `cls` with box centre (cx, cy) and size (w, h), pixels."""
    x1, y1, x2, y2 = int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)
    if cls == 0:
        cv2.ellipse(img, (int(cx), int(cy)), (max(int(w / 2), 1), max(int(h / 2), 1)), 0, 0, 360, color, -1)
    elif cls == 1:
        cv2.rectangle(img, (x1, y1), (x2, y2), color, -1)
        cv2.rectangle(img, (x1, y1), (x2, y2), (20, 20, 20), 1)
    else:  # a cross: a bar in each direction
        t = max(int(min(w, h) / 4), 1)
        cv2.rectangle(img, (x1, int(cy) - t), (x2, int(cy) + t), color, -1)
        cv2.rectangle(img, (int(cx) - t, y1), (int(cx) + t, y2), color, -1)


def make_image(
    rng: np.random.Generator, imgsz: int, objects: tuple[int, int], size: tuple[float, float] = (0.08, 0.2)
) -> tuple[np.ndarray, np.ndarray]:
    """Return one image and its YOLO labels (n, 5): class, normalised xywh.

    Objects are small (`size`: 8-20% of the image side by default), packed in clusters so that many overlap, and
    drawn in a random order so later ones occlude earlier ones; boxes stay the full, amodal extent, as in crowded
    scenes.
    """
    img = rng.integers(60, 120, (imgsz, imgsz, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    n = int(rng.integers(*objects))
    centres = rng.uniform(0.1, 0.9, (max(n // 4, 1), 2)) * imgsz  # cluster centres
    labels = []
    for _ in range(n):
        cx, cy = centres[rng.integers(len(centres))] + rng.normal(0, 0.08 * imgsz, 2)
        w, h = rng.uniform(*size, 2) * imgsz
        cx, cy = np.clip(cx, w / 2, imgsz - w / 2), np.clip(cy, h / 2, imgsz - h / 2)
        cls = int(rng.integers(len(CLASSES)))
        _draw(img, cls, cx, cy, w, h, COLORS[int(rng.integers(len(COLORS)))])
        labels.append((cls, cx / imgsz, cy / imgsz, w / imgsz, h / imgsz))
    return img, np.array(labels, dtype=np.float32).reshape(-1, 5)


def make_dataset(
    root: str | Path, images: int = 400, imgsz: int = 128, objects=(8, 20), size=(0.08, 0.2), seed: int = 0
) -> Path:
    """Write a dense, occluded detection dataset (80% train, 20% val) and return its data.yaml.

    Args:
        root (str | Path): Output directory (created; existing files of the same names are overwritten).
        images (int): Number of images in total.
        imgsz (int): Image side, pixels.
        objects (tuple[int, int]): Range of objects per image [low, high).
        size (tuple[float, float]): Range of object sides, as a fraction of the image side.
        seed (int): Random seed; the same seed writes the same dataset.

    Returns:
        (Path): The dataset's data.yaml.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_val = max(images // 5, 1)
    for i in TQDM(range(images), desc=f"{colorstr('synthetic data:')} {root}"):
        split = "val" if i < n_val else "train"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        img, labels = make_image(rng, imgsz, objects, size)
        cv2.imwrite(str(root / "images" / split / f"{i:05d}.png"), img)
        np.savetxt(root / "labels" / split / f"{i:05d}.txt", labels, fmt="%d %.6f %.6f %.6f %.6f")
    data = root / "data.yaml"
    YAML.save(data, {"path": str(root.resolve()), "train": "images/train", "val": "images/val",
                     "names": dict(enumerate(CLASSES))})
    return data
