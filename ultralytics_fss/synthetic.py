"""Generated dense, occluded small-object detection datasets, made offline in seconds.

Two kinds:
    shapes    flat discs, squares and crosses on a blurred-noise background (the demo's, the tests', the examples'
              and the benchmarks' data);
    textures  eight classes told apart by their texture only (stripes, checks, dots, rings...), 8-40 px objects on
              images of 160-320 px whose background is cluttered with fragments of the same textures.

With `task` = obb, segment or pose, the shapes are drawn rotated and labelled for that task: the four corners of each
object's rotated box (obb), its outline polygon (segment), or its box and four keypoints, the left-, top-, right- and
bottom-most points of its outline (pose, `kpt_shape` [4, 3]).

Examples:
    >>> from ultralytics_fss.synthetic import make_dataset
    >>> data_yaml = make_dataset("datasets/shapes", images=400, imgsz=128)  # 80% train, 20% val
    >>> data_yaml = make_dataset("datasets/textures", images=400, kind="textures")
    >>> data_yaml = make_dataset("datasets/shapes-obb", images=400, task="obb")
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from ultralytics.utils import TQDM, YAML, colorstr

CLASSES = ("disc", "square", "cross")  # shapes that differ in outline, so only the label assignment is under test
TEXTURES = ("hstripes", "vstripes", "checks", "dots", "rings", "speckle", "grid", "waves")  # flip-invariant classes
COLORS = ((40, 200, 240), (230, 90, 60), (90, 220, 90), (200, 80, 220), (240, 240, 70))
TASKS = ("detect", "obb", "segment", "pose")
DEMO_SEED = 1234  # the seed of the demo's dataset (and of the paper-table benchmarks on it): the same every time
KPT_SHAPE, FLIP_IDX = [4, 3], [2, 1, 0, 3]  # pose keypoints: left-, top-, right-, bottom-most; a flip swaps 0 and 2


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


def outline(cls: int, cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """(K, 2) outline polygon, pixels, of a shape of class `cls` with box (cx, cy, w, h) rotated by `angle` degrees."""
    if cls == 0:
        pts = cv2.ellipse2Poly((0, 0), (1000, 1000), 0, 0, 360, 15).astype(np.float64) / 2000  # unit disc, 25 points
    elif cls == 1:
        pts = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    else:  # a cross: bars a quarter of the shorter side thick
        t = min(w, h) / 4
        a, b = t / w, t / h
        pts = np.array(
            [
                [-0.5, -b],
                [-a, -b],
                [-a, -0.5],
                [a, -0.5],
                [a, -b],
                [0.5, -b],
                [0.5, b],
                [a, b],
                [a, 0.5],
                [-a, 0.5],
                [-a, b],
                [-0.5, b],
            ]
        )
    r = np.deg2rad(angle)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return (pts * (w, h)) @ rot.T + (cx, cy)


def make_task_image(
    rng: np.random.Generator, imgsz: int, objects: tuple[int, int], size: tuple[float, float], task: str
) -> tuple[np.ndarray, list[str]]:
    """Return one image of rotated shapes and its label lines for `task` (obb, segment or pose), normalised.

    Objects are placed as in `make_image` (clusters, later ones occluding earlier ones, amodal labels), each rotated
    by a random angle and kept inside the image.
    """
    img = rng.integers(60, 120, (imgsz, imgsz, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    n = int(rng.integers(*objects))
    centres = rng.uniform(0.1, 0.9, (max(n // 4, 1), 2)) * imgsz
    lines = []
    for _ in range(n):
        w, h = rng.uniform(*size, 2) * imgsz
        half = np.hypot(w, h) / 2  # the rotated shape stays inside the image
        cx, cy = np.clip(centres[rng.integers(len(centres))] + rng.normal(0, 0.08 * imgsz, 2), half, imgsz - half)
        cls, angle = int(rng.integers(len(CLASSES))), float(rng.uniform(0, 180))
        poly = outline(cls, cx, cy, w, h, angle)
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], COLORS[int(rng.integers(len(COLORS)))])
        if task == "obb":
            points = outline(1, cx, cy, w, h, angle)  # the rotated box's corners
        elif task == "segment":
            points = poly
        else:  # pose: box, then the left-, top-, right- and bottom-most outline points, visible
            (x1, y1), (x2, y2) = poly.min(0), poly.max(0)
            kpts = poly[[poly[:, 0].argmin(), poly[:, 1].argmin(), poly[:, 0].argmax(), poly[:, 1].argmax()]]
            box = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / imgsz
            kpt = np.concatenate([kpts / imgsz, np.full((4, 1), 2.0)], 1).reshape(-1)
            lines.append(" ".join([str(cls), *(f"{v:.6f}" for v in box), *(f"{v:.6f}" for v in kpt)]))
            continue
        lines.append(" ".join([str(cls), *(f"{v:.6f}" for v in (points / imgsz).reshape(-1))]))
    return img, lines


def _texture(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Return an (h, w) float texture in [0, 1] of class `cls` (see `TEXTURES`), random period and phase."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(3.0, 7.0)
    y, x = y + rng.uniform(0, period), x + rng.uniform(0, period)
    wave = lambda v: np.sin(2 * np.pi * v / period) > 0  # noqa: E731
    if cls == 0:
        t = wave(y)
    elif cls == 1:
        t = wave(x)
    elif cls == 2:
        t = wave(x) ^ wave(y)
    elif cls == 3:
        t = (np.mod(x, period) - period / 2) ** 2 + (np.mod(y, period) - period / 2) ** 2 < (period / 3.5) ** 2
    elif cls == 4:
        t = wave(np.hypot(x - x.mean(), y - y.mean()))
    elif cls == 5:
        t = rng.random((h, w)) > 0.5
    elif cls == 6:
        t = (np.mod(x, period) < 1.5) | (np.mod(y, period) < 1.5)
    else:
        t = wave(y + 2.0 * np.sin(2 * np.pi * x / (3 * period)))
    return t.astype(np.float32)


def make_textured_image(
    rng: np.random.Generator, imgsz: tuple[int, int], objects: tuple[int, int], size: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return one image with sides in [imgsz[0], imgsz[1]] px and its YOLO labels (n, 5): class, normalised xywh.

    Objects of `size` px (sides) are texture patches (`TEXTURES`) in two random colours, rectangular or elliptic,
    packed in clusters so that many overlap; the background is smooth noise with untextured-class clutter and
    fragments of the same textures (smaller than any object), so that texture, not colour or outline, tells objects
    apart.
    """
    h, w = (int(v) for v in rng.integers(imgsz[0], imgsz[1] + 1, 2))
    img = cv2.resize(rng.integers(50, 170, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), (w, h))
    img = np.clip(img.astype(np.int16) + rng.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(5, 15))):  # clutter: small texture fragments, never labelled
        fh, fw = (int(v) for v in rng.integers(3, max(int(size[0]), 4), 2))
        fy, fx = int(rng.integers(0, h - fh)), int(rng.integers(0, w - fw))
        t = _texture(rng, int(rng.integers(len(TEXTURES))), fh, fw)[..., None]
        img[fy : fy + fh, fx : fx + fw] = (t * rng.integers(0, 256, 3) + (1 - t) * rng.integers(0, 256, 3)).astype(
            np.uint8
        )
    n = int(rng.integers(*objects))
    centres = rng.uniform(0.15, 0.85, (max(n // 5, 1), 2)) * (w, h)  # cluster centres
    labels = []
    for _ in range(n):
        bw, bh = rng.uniform(*size, 2)
        cx, cy = centres[rng.integers(len(centres))] + rng.normal(0, 0.07 * min(h, w), 2)
        x1, y1 = int(np.clip(cx - bw / 2, 0, w - bw)), int(np.clip(cy - bh / 2, 0, h - bh))
        x2, y2 = x1 + int(round(bw)), y1 + int(round(bh))
        cls = int(rng.integers(len(TEXTURES)))
        t = _texture(rng, cls, y2 - y1, x2 - x1)[..., None]
        patch = t * rng.integers(140, 256, 3) + (1 - t) * rng.integers(0, 90, 3)  # (bh, bw, 3) high contrast
        mask = np.ones((y2 - y1, x2 - x1), np.uint8)
        if rng.random() < 0.5:  # elliptic object
            mask[:] = 0
            cv2.ellipse(mask, ((x2 - x1) // 2, (y2 - y1) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, 1, -1)
        roi = img[y1:y2, x1:x2]
        roi[mask > 0] = patch[mask > 0].astype(np.uint8)
        labels.append((cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h))
    return img, np.array(labels, dtype=np.float32).reshape(-1, 5)


def dataset_name(
    images: int,
    imgsz: int,
    objects=(8, 20),
    size=(0.08, 0.2),
    seed: int = 0,
    kind: str = "shapes",
    task: str = "detect",
) -> str:
    """A folder name that says what made a dataset, e.g. `detect-shapes-400img-128px-obj8-20-size0.08-0.2-seed1234`
    (the demo generates into such folders, so that datasets of other arguments never share files)."""
    return f"{task}-{kind}-{images}img-{imgsz}px-obj{objects[0]}-{objects[1]}-size{size[0]:g}-{size[1]:g}-seed{seed}"


def make_dataset(
    root: str | Path,
    images: int = 400,
    imgsz: int = 128,
    objects=(8, 20),
    size=(0.08, 0.2),
    seed: int = 0,
    kind: str = "shapes",
    task: str = "detect",
) -> Path:
    """Write a dense, occluded dataset (80% train, 20% val) for `task` and return its data.yaml.

    The dataset is generated into a hidden sibling folder and renamed into place once complete, with a record of its
    arguments (`make_dataset.json`): a second call with the same arguments returns the existing data.yaml, and a
    folder holding anything else (another dataset, an interrupted one, other files) is never written into.

    Args:
        root (str | Path): Output directory: absent or empty, or a dataset this function made with the same arguments.
        images (int): Number of images in total, at least 2 (one for val).
        imgsz (int): Image side, pixels, at least 32.
        objects (tuple[int, int]): Range of objects per image [low, high), 1 <= low < high.
        size (tuple[float, float]): Range of object sides, as a fraction of the image side (`shapes`), in (0, 1].
        seed (int): Random seed; the same seed writes the same dataset.
        kind (str): `shapes`, or `textures`: images of `imgsz`-2*`imgsz` px (sides drawn independently), objects of
            8-40 px (`size` ignored).
        task (str): `detect`, or `obb`, `segment`, `pose` (rotated shapes, `kind="shapes"` only).

    Returns:
        (Path): The dataset's data.yaml.

    Raises:
        ValueError: For an argument out of range (named).
        FileExistsError: When `root` holds anything but this very dataset.
    """
    if kind not in {"shapes", "textures"}:
        raise ValueError(f"kind={kind!r} is not a dataset kind; expected 'shapes' or 'textures'")
    if task not in TASKS or (task != "detect" and kind != "shapes"):
        raise ValueError(f"task={task!r} with kind={kind!r}: expected a task of {TASKS} (obb, segment, pose: shapes)")
    for name, value, ok, want in [
        ("images", images, images >= 2, "an integer >= 2 (20% val, at least 1)"),
        ("imgsz", imgsz, imgsz >= 32, "an integer >= 32"),
        ("objects", objects, 1 <= objects[0] < objects[1], "LOW HIGH with 1 <= LOW < HIGH"),
        ("size", size, 0 < size[0] <= size[1] <= 1, "LOW HIGH with 0 < LOW <= HIGH <= 1"),
    ]:
        if not ok:
            raise ValueError(f"{name}={value} is out of range; expected {want}")
    root = Path(root)
    params = dict(images=images, imgsz=imgsz, objects=list(objects), size=list(size), seed=seed, kind=kind, task=task)
    record = root / "make_dataset.json"
    if record.is_file() and json.loads(record.read_text()) == params:
        return root / "data.yaml"  # this very dataset, complete
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = f"a dataset made with {json.loads(record.read_text())}" if record.is_file() else "other files"
        raise FileExistsError(f"{root} holds {what}; give make_dataset an empty or new folder")
    partial = root.parent / f".{root.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted call
    rng = np.random.default_rng(seed)
    n_val = max(images // 5, 1)
    for i in TQDM(range(images), desc=f"{colorstr('synthetic data:')} {root}"):
        split = "val" if i < n_val else "train"
        (partial / "images" / split).mkdir(parents=True, exist_ok=True)
        (partial / "labels" / split).mkdir(parents=True, exist_ok=True)
        label_file = partial / "labels" / split / f"{i:05d}.txt"
        if task != "detect":
            img, lines = make_task_image(rng, imgsz, objects, size, task)
            label_file.write_text("".join(f"{line}\n" for line in lines))
        else:
            if kind == "shapes":
                img, labels = make_image(rng, imgsz, objects, size)
            else:
                img, labels = make_textured_image(rng, (imgsz, 2 * imgsz), objects, (8.0, 40.0))
            np.savetxt(label_file, labels, fmt="%d %.6f %.6f %.6f %.6f")
        cv2.imwrite(str(partial / "images" / split / f"{i:05d}.png"), img)
    spec = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASSES if kind == "shapes" else TEXTURES)),
    }
    if task == "pose":
        spec.update(kpt_shape=KPT_SHAPE, flip_idx=FLIP_IDX)
    YAML.save(partial / "data.yaml", spec)
    (partial / "make_dataset.json").write_text(json.dumps(params))
    if root.is_dir():
        root.rmdir()  # empty, checked above
    partial.rename(root)
    return root / "data.yaml"


# ------------------------------------------------------------------------------------------------------ aerial scenes
# DOTA category token: (long side in px, short / long side); the size imbalance DOTA has (a car is a tenth of a tank
# farm's tank) and its elongated vehicles and ships.
AERIAL_CLASSES: dict[str, tuple[tuple[int, int], tuple[float, float]]] = {
    "small-vehicle": ((8, 14), (0.45, 0.6)),
    "large-vehicle": ((18, 36), (0.3, 0.45)),
    "ship": ((14, 40), (0.25, 0.4)),
    "storage-tank": ((20, 48), (1.0, 1.0)),
}
AERIAL_CELL = 256  # each cell of a canvas holds at most one structure: a parking lot, a harbour, a tank farm, a road
DIFFICULT_SIDE = 10  # px: DOTA flags objects this small (long side), or mostly hidden, as difficult


def _rotated_box(cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    """(4, 2) corners of a box of `length` along `angle` (radians) and `width` across it, from the rear left."""
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    half_l, half_w = along * length / 2, across * width / 2
    c = np.array([cx, cy])
    return np.stack([c - half_l - half_w, c + half_l - half_w, c + half_l + half_w, c - half_l + half_w])


def _draw_object(img: np.ndarray, name: str, box: np.ndarray, rng: np.random.Generator) -> None:
    """Draw one object into `img` (BGR): a vehicle with a darker windscreen, a ship with a pointed bow, a tank as a
    ringed disc."""
    colour = tuple(int(v) for v in rng.integers(40, 250, 3))
    if name == "storage-tank":
        centre, radius = box.mean(0), np.linalg.norm(box[1] - box[0]) / 2
        cv2.circle(img, tuple(np.round(centre).astype(int)), int(radius), (200, 200, 205), -1, cv2.LINE_AA)
        cv2.circle(img, tuple(np.round(centre).astype(int)), int(radius), (90, 90, 95), 1, cv2.LINE_AA)
        return
    if name == "ship":  # the bow: the front edge's midpoint pushed forward by a fifth of the length
        bow = (box[1] + box[2]) / 2 + (box[1] - box[0]) * 0.2
        hull = np.stack([box[0], box[1] - (box[1] - box[0]) * 0.2, bow, box[2] - (box[2] - box[3]) * 0.2, box[3]])
        cv2.fillPoly(img, [np.round(hull).astype(np.int32)], colour, cv2.LINE_AA)
        return
    cv2.fillPoly(img, [np.round(box).astype(np.int32)], colour, cv2.LINE_AA)
    screen = box[0] + (box[1] - box[0]) * 0.6, box[3] + (box[2] - box[3]) * 0.6
    cv2.line(img, tuple(np.round(screen[0]).astype(int)), tuple(np.round(screen[1]).astype(int)), (30, 30, 30), 1)


def _objects_of_structure(rng: np.random.Generator, kind: str, x0: int, y0: int) -> tuple[list, tuple | None]:
    """The objects of one structure in the cell at (x0, y0): boxes of touching vehicles in rows (a parking lot), ships
    side by side along a quay (a harbour), tanks in a packed grid (a tank farm) or vehicles along a road.

    Returns:
        objects (list[tuple[str, np.ndarray]]): (category, (4, 2) corners) of each object.
        ground (tuple | None): (polygon, BGR colour) painted under the objects: a harbour's water, a road; or None.
    """
    cell, out, ground = AERIAL_CELL, [], None
    angle = float(rng.uniform(0, np.pi))
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    origin = np.array([x0, y0]) + cell / 2
    if kind == "harbour":
        ground = (_rotated_box(*origin, cell * 0.9, cell * 0.7, angle), (95, 75, 45))  # water, dark blue-grey
    elif kind == "road":
        ground = (_rotated_box(*origin, cell * 1.2, 24, angle), (110, 110, 115))
    if kind in {"parking", "harbour"}:
        name = "ship" if kind == "harbour" else "small-vehicle"
        (lo, hi), (a_lo, a_hi) = AERIAL_CLASSES[name]
        rows, cols = (int(rng.integers(1, 3)), int(rng.integers(4, 9))) if kind == "harbour" else \
            (int(rng.integers(2, 6)), int(rng.integers(6, 14)))  # fmt: skip
        for r in range(rows):
            big = kind == "parking" and rng.random() < 0.25  # a row of lorries and buses
            row_name = "large-vehicle" if big else name
            (rlo, rhi), (ra_lo, ra_hi) = AERIAL_CLASSES[row_name]
            length = float(rng.uniform(rlo, rhi))
            gap = float(rng.uniform(0.5, 3.0))  # touching, or nearly
            for c in range(cols):
                if rng.random() < 0.15:
                    continue  # an empty slot
                width = length * float(rng.uniform(ra_lo, ra_hi))
                offset = (c - cols / 2) * (width + gap) * along + (r - rows / 2) * (length + 3 * gap) * across
                cx, cy = origin + offset
                heading = angle + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0.0) + float(rng.normal(0, 0.03))
                out.append((row_name, _rotated_box(cx, cy, length, width, heading)))
    elif kind == "tanks":
        (lo, hi), _ = AERIAL_CLASSES["storage-tank"]
        side, n = float(rng.uniform(lo, hi)), int(rng.integers(2, 5))
        for i in range(n):
            for j in range(n):
                cx, cy = origin + (np.array([i, j]) - n / 2) * (side + rng.uniform(1, 4))
                out.append(("storage-tank", _rotated_box(cx, cy, side, side, 0.0)))
    else:  # a road with scattered vehicles of both sizes along it
        for t in np.sort(rng.uniform(-cell / 2, cell / 2, int(rng.integers(3, 10)))):
            name = "large-vehicle" if rng.random() < 0.3 else "small-vehicle"
            (lo, hi), (a_lo, a_hi) = AERIAL_CLASSES[name]
            length = float(rng.uniform(lo, hi))
            cx, cy = origin + t * along + rng.choice([-1, 1]) * 6 * across
            out.append((name, _rotated_box(cx, cy, length, length * float(rng.uniform(a_lo, a_hi)), angle)))
    return out, ground


def make_aerial_image(rng: np.random.Generator, side: int) -> tuple[np.ndarray, list[str]]:
    """One aerial-like canvas (`side` x `side` px, BGR) and its DOTA label lines (`x1 y1 ... x4 y4 category
    difficult`, pixels).

    Terrain (smooth noise), roads, and per 256-px cell at most one structure: parking lots of touching small and large
    vehicles in rows, harbours of ships side by side on water, tank farms, vehicles along a road; every object rotated
    with its structure. Unlabelled clutter: rooftops (grey boxes as large as the largest objects) and trees, drawn last,
    which hide parts of some objects (their labels stay whole). An object with a long side under `DIFFICULT_SIDE` px or
    more than half hidden is flagged difficult, as DOTA flags such objects.
    """
    low = rng.integers(80, 150, (side // 64 + 1, side // 64 + 1, 1)).astype(np.float32)  # terrain brightness
    tint = rng.uniform(0.8, 1.0, 3) * (0.85, 1.0, 0.95)  # earth tones (BGR): greyish green to brown
    img = cv2.resize(low, (side, side), interpolation=cv2.INTER_CUBIC)[..., None] * tint
    img = np.clip(img + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 5))):  # roads across the canvas
        p, q = rng.integers(0, side, 2), rng.integers(0, side, 2)
        cv2.line(img, (int(p[0]), 0), (int(q[0]), side - 1), (110, 110, 115), int(rng.integers(10, 20)))
    objects: list[tuple[str, np.ndarray]] = []
    kinds = ("parking", "parking", "harbour", "tanks", "road", "empty")
    for y0 in range(0, side - AERIAL_CELL + 1, AERIAL_CELL):
        for x0 in range(0, side - AERIAL_CELL + 1, AERIAL_CELL):
            kind = kinds[int(rng.integers(len(kinds)))]
            if kind != "empty":
                found, ground = _objects_of_structure(rng, kind, x0, y0)
                objects += found
                if ground is not None:
                    cv2.fillPoly(img, [np.round(ground[0]).astype(np.int32)], ground[1], cv2.LINE_AA)
    objects = [(n, b) for n, b in objects if (b >= 0).all() and (b <= side - 1).all()]  # whole inside the canvas
    for name, box in objects:
        _draw_object(img, name, box, rng)
    hidden = np.zeros((side, side), np.uint8)
    clumps = rng.integers(0, side, (int(rng.integers(side // 100, side // 50)), 2))  # trees grow in clumps
    for _ in range(int(rng.integers(side // 8, side // 4))):  # clutter, never labelled
        c = np.clip(clumps[rng.integers(len(clumps))] + rng.normal(0, 40, 2), 0, side - 1).astype(int)
        if rng.random() < 0.3:  # a rooftop
            box = _rotated_box(*c, *rng.uniform(20, 60, 2), float(rng.uniform(0, np.pi)))
            cv2.fillPoly(img, [np.round(box).astype(np.int32)], tuple(int(v) for v in rng.integers(90, 170, 3)))
            cv2.fillPoly(hidden, [np.round(box).astype(np.int32)], 1)
        else:  # a tree
            r = int(rng.integers(4, 12))
            cv2.circle(img, (int(c[0]), int(c[1])), r, (40, int(rng.integers(70, 110)), 40), -1, cv2.LINE_AA)
            cv2.circle(hidden, (int(c[0]), int(c[1])), r, 1, -1)
    lines = []
    for name, box in objects:
        (x1, y1), (x2, y2) = np.floor(box.min(0)).astype(int), np.ceil(box.max(0)).astype(int) + 1
        mask = np.zeros((y2 - y1, x2 - x1), np.uint8)  # the object, in its bounding window
        cv2.fillPoly(mask, [np.round(box - (x1, y1)).astype(np.int32)], 1)
        covered = float((hidden[y1:y2, x1:x2] & mask).sum()) / max(float(mask.sum()), 1.0)
        long_side = max(np.linalg.norm(box[1] - box[0]), np.linalg.norm(box[3] - box[0]))
        difficult = int(long_side < DIFFICULT_SIDE or covered > 0.5)
        lines.append(" ".join(f"{v:.1f}" for v in box.reshape(-1)) + f" {name} {difficult}")
    return img, lines


def make_aerial(root: str | Path, images: int = 8, side: int = 2048, seed: int = 0) -> Path:
    """Write an aerial-like benchmark in DOTA's own format (official layout: `{split}/images/*.png` and
    `{split}/labelTxt/*.txt` with `imagesource:` and `gsd:` headers), 75% train and 25% val, deterministic by `seed`;
    return `root`. It goes through `python -m ultralytics_fss.tile_dota` exactly as DOTA does (its categories are
    DOTA's tokens, in DOTA-v1.5's class list).

    Args:
        root (str | Path): Output folder: absent or empty, or a benchmark this function made with the same arguments.
        images (int): Canvases in all, at least 2 (one for val).
        side (int): Canvas side, pixels, at least `AERIAL_CELL`.
        seed (int): Random seed; the same seed writes the same images and labels.

    Raises:
        ValueError: For an argument out of range (named).
        FileExistsError: When `root` holds anything but this very benchmark.
    """
    if images < 2 or side < AERIAL_CELL:
        raise ValueError(f"images={images}, side={side}: expected images >= 2 and side >= {AERIAL_CELL}")
    root = Path(root)
    params = dict(kind="aerial", images=images, side=side, seed=seed)
    record = root / "make_dataset.json"
    if record.is_file() and json.loads(record.read_text()) == params:
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} holds other files; give make_aerial an empty or new folder")
    partial = root.parent / f".{root.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    n_val = max(images // 4, 1)
    for i in TQDM(range(images), desc=f"{colorstr('synthetic aerial:')} {root}"):
        split = "val" if i < n_val else "train"
        for sub in ("images", "labelTxt"):
            (partial / split / sub).mkdir(parents=True, exist_ok=True)
        img, lines = make_aerial_image(np.random.default_rng([seed, i]), side)
        cv2.imwrite(str(partial / split / "images" / f"A{i:04d}.png"), img)
        text = "imagesource:synthetic\ngsd:null\n" + "".join(f"{line}\n" for line in lines)
        (partial / split / "labelTxt" / f"A{i:04d}.txt").write_text(text)
    (partial / "make_dataset.json").write_text(json.dumps(params))
    if root.is_dir():
        root.rmdir()
    partial.rename(root)
    return root
