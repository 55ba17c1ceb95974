"""Pure geometry of DOTA tiling: windows, polygon repair, clipping and tile labels (numpy + shapely, no I/O).

Axes: N objects, W windows, K objects kept in one window. Boxes are ``(x0, y0, x1, y1)`` pixels, polygons
``(N, 4, 2)`` float64 pixels in DOTA corner order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

# Objects smaller than one square pixel in source pixels are label typos (repeated or collinear corners);
# they cannot be seen, and their IoF against a window is numerically meaningless.
DEGENERATE_AREA = 1.0

# Slack, in normalised tile units, absorbed when clipping labels to [0, 1]: float rounding only (1e-9 of a tile).
_NORM_EPS = 1e-9


def window_starts(size: int, crop: int, stride: int) -> np.ndarray:
    """Return the start offsets of the windows along one axis.

    Windows start every ``stride`` pixels and the last one is moved back to end at the image edge, so every pixel is
    covered; an axis no longer than ``crop`` gets one window at 0 (padded later).

    Args:
        size (int): Length of the (scaled) image along the axis, pixels.
        crop (int): Window length, pixels.
        stride (int): Step between window starts, pixels, ``0 < stride <= crop``.

    Returns:
        (np.ndarray): Strictly increasing start offsets, shape (n,), int64.
    """
    if size <= crop:
        return np.zeros(1, dtype=np.int64)
    n = 1 + -(-(size - crop) // stride)  # ceil division in integers: no float rounding at exact multiples
    starts = np.arange(n, dtype=np.int64) * stride  # (n,)
    starts[-1] = size - crop  # align the last window to the edge (always > starts[-2] by the ceil above)
    return starts


def scaled_size(width: int, height: int, rate: float) -> tuple[int, int]:
    """Size of an image rescaled by ``rate``: each side rounded to whole pixels, at least 1.

    The one rule for the tiler and for mapping tile coordinates back (the exact per-axis factors,
    :func:`scale_factors`, are ``scaled / original``, not ``rate``: 1111 px at rate 0.5 become 556 px, a factor of
    0.50045).

    Examples:
        >>> scaled_size(1111, 1182, 0.5)
        (556, 591)
    """
    return max(1, round(width * rate)), max(1, round(height * rate))


def scale_factors(width: int, height: int, rate: float) -> tuple[float, float]:
    """Exact per-axis factors from an image to its copy rescaled by ``rate``: :func:`scaled_size` over the size.

    The tiler scales the object polygons by them; tile coordinates map back to the image by them.

    Examples:
        >>> scale_factors(1111, 1182, 0.5)
        (0.5004500450045004, 0.5)
    """
    sw, sh = scaled_size(width, height, rate)
    return sw / width, sh / height


def get_windows(width: int, height: int, crop: int, stride: int) -> np.ndarray:
    """Return the windows cut from an image, in reading order (top to bottom, then left to right).

    Args:
        width (int): Image width, pixels.
        height (int): Image height, pixels.
        crop (int): Window side, pixels.
        stride (int): Step between windows, pixels.

    Returns:
        (np.ndarray): Windows ``(x0, y0, x0 + crop, y0 + crop)``, shape (W, 4), int64. Windows of an image smaller
            than ``crop`` extend past its edge; :func:`content_boxes` gives the part that holds pixels.

    Examples:
        >>> get_windows(1111, 557, 1024, 800).tolist()
        [[0, 0, 1024, 1024], [87, 0, 1111, 1024]]
    """
    xs = window_starts(width, crop, stride)  # (nx,)
    ys = window_starts(height, crop, stride)  # (ny,)
    x0 = np.tile(xs, len(ys))  # (W,)
    y0 = np.repeat(ys, len(xs))  # (W,)
    return np.stack([x0, y0, x0 + crop, y0 + crop], axis=1)  # (W, 4)


def content_boxes(windows: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip windows to the image: the region of each tile that holds pixels rather than zero padding.

    Args:
        windows (np.ndarray): Windows, shape (W, 4), int64.
        width (int): Image width, pixels.
        height (int): Image height, pixels.

    Returns:
        (np.ndarray): Boxes, shape (W, 4), int64 (a new array; ``windows`` is not modified).
    """
    return np.minimum(windows, np.array([width, height, width, height], dtype=np.int64))  # (W, 4)


@dataclass(frozen=True)
class Objects:
    """Repaired object polygons of one image, ready for clipping.

    Attributes:
        geoms (np.ndarray): Shapely polygons, shape (N,), object; convex hulls where the corners were repaired.
        boxes (np.ndarray): Axis-aligned bounds of ``geoms``, shape (N, 4), float64.
        areas (np.ndarray): Polygon areas, shape (N,), float64, all >= DEGENERATE_AREA.
        cls (np.ndarray): Class indices, shape (N,), int64.
        index (np.ndarray): Row of each object in the parsed label file, shape (N,), int64.
    """

    geoms: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    cls: np.ndarray
    index: np.ndarray


def make_polygons(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapely polygons of corner quadruples; a self-intersecting ("bow tie") one becomes the hull of its corners.

    Args:
        points (np.ndarray): Corners, shape (N, 4, 2) or (N, 8), float.

    Returns:
        geoms (np.ndarray): Polygons, shape (N,), object.
        repaired (np.ndarray): Which rows were replaced by their convex hull, shape (N,), bool.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 4, 2)  # (N, 4, 2)
    geoms = shapely.polygons(points)  # (N,)
    repaired = ~shapely.is_valid(geoms)  # (N,) bool
    if repaired.any():
        geoms[repaired] = shapely.convex_hull(shapely.multipoints(points[repaired]))
    return geoms, repaired


def build_objects(points: np.ndarray, cls: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)):
    """Turn DOTA corner quadruples into valid polygons, repairing or rejecting bad ones.

    A self-intersecting or mis-ordered quadrilateral (corners listed as 1-3-2-4, a "bow tie") is replaced by the convex
    hull of its corners: DOTA objects are convex quadrilaterals, and shapely's ``make_valid`` would instead split a
    bow tie into two triangles of half the area. A polygon whose area is below DEGENERATE_AREA (in source pixels) is
    degenerate and left out.

    Args:
        points (np.ndarray): Corners in source pixels, shape (N, 4, 2), float; not modified.
        cls (np.ndarray): Class indices, shape (N,), int.
        scale (tuple[float, float]): Factors ``(sx, sy)`` from source to scaled pixels.

    Returns:
        objects (Objects): The usable objects, in scaled pixels.
        repaired (np.ndarray): Mask of repaired input rows, shape (N,), bool.
        degenerate (np.ndarray): Mask of rejected input rows, shape (N,), bool.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 4, 2)  # (N, 4, 2)
    geoms, repaired = make_polygons(points)  # (N,), (N,)
    degenerate = ~(shapely.area(geoms) >= DEGENERATE_AREA)  # (N,) bool; also catches the LineString hull of a line
    repaired &= ~degenerate
    keep = np.flatnonzero(~degenerate)  # (N',)
    kept = geoms[keep]
    sx, sy = scale
    if (sx, sy) != (1.0, 1.0):
        kept = shapely.transform(kept, lambda xy: xy * np.array([sx, sy]))
    objects = Objects(
        geoms=kept,
        boxes=shapely.bounds(kept).reshape(-1, 4),  # (N', 4)
        areas=shapely.area(kept),  # (N',)
        cls=np.asarray(cls, dtype=np.int64)[keep],
        index=keep.astype(np.int64),
    )
    return objects, repaired, degenerate


@dataclass(frozen=True)
class WindowObjects:
    """Objects assigned to one window.

    Attributes:
        index (np.ndarray): Positions in :class:`Objects` of the kept objects, shape (K,), int64, ascending.
        parts (np.ndarray): Each kept object's part inside the window (the polygon itself when fully inside), shape
            (K,), object.
        truncated (np.ndarray): Whether each kept object was cut by the window edge, shape (K,), bool.
        dropped (int): Objects overlapping the window with IoF below the threshold.
    """

    index: np.ndarray
    parts: np.ndarray
    truncated: np.ndarray
    dropped: int


def assign_objects(objects: Objects, boxes: np.ndarray, iof_thr: float) -> list[WindowObjects]:
    """Assign objects to windows by intersection over foreground (IoF), clipping the truncated ones.

    A cheap axis-aligned test runs first: an object whose bounds lie inside the box is kept whole (IoF = 1) and an
    object whose bounds miss it is skipped; shapely intersects only the objects that cross the box edge.

    Args:
        objects (Objects): Objects in scaled pixels.
        boxes (np.ndarray): Content box of each window (window clipped to the image), shape (W, 4), int.
        iof_thr (float): An object is kept when area(object & box) / area(object) >= iof_thr (and > 0).

    Returns:
        (list[WindowObjects]): One entry per window, in the order of ``boxes``.
    """
    b = objects.boxes  # (N, 4)
    c = np.asarray(boxes, dtype=np.float64)[:, None, :]  # (W, 1, 4)
    overlap = (b[:, 0] < c[..., 2]) & (b[:, 2] > c[..., 0]) & (b[:, 1] < c[..., 3]) & (b[:, 3] > c[..., 1])  # (W, N)
    inside = (b[:, 0] >= c[..., 0]) & (b[:, 2] <= c[..., 2]) & (b[:, 1] >= c[..., 1]) & (b[:, 3] <= c[..., 3])  # (W, N)
    result = []
    for w, box in enumerate(np.asarray(boxes)):
        whole = np.flatnonzero(inside[w])  # (Ki,)
        cut = np.flatnonzero(overlap[w] & ~inside[w])  # (Kc,)
        parts = shapely.intersection(objects.geoms[cut], shapely.box(*box.tolist()))  # (Kc,)
        inter = shapely.area(parts)  # (Kc,)
        keep = (inter >= iof_thr * objects.areas[cut]) & (inter > 0)  # (Kc,)
        index = np.concatenate([whole, cut[keep]])  # (K,)
        order = np.argsort(index, kind="stable")  # keep label-file order inside each tile
        result.append(
            WindowObjects(
                index=index[order],
                parts=np.concatenate([objects.geoms[whole], parts[keep]])[order],
                truncated=np.concatenate([np.zeros(len(whole), bool), np.ones(int(keep.sum()), bool)])[order],
                dropped=int(len(cut) - keep.sum()),
            )
        )
    return result


def detect_labels(parts: np.ndarray, origin: tuple[int, int], crop: int) -> np.ndarray:
    """Normalised axis-aligned boxes of the parts, Ultralytics detect format.

    Args:
        parts (np.ndarray): Geometries in scaled image pixels, shape (K,), object.
        origin (tuple[int, int]): Window's top-left corner ``(x0, y0)``, scaled pixels.
        crop (int): Tile side, pixels.

    Returns:
        (np.ndarray): ``(xc, yc, w, h)`` in [0, 1] of the tile, shape (K, 4), float64.
    """
    xyxy = (shapely.bounds(parts).reshape(-1, 4) - np.tile(origin, 2)) / crop  # (K, 4)
    xyxy = np.clip(xyxy, 0.0, 1.0)  # parts lie inside the tile; this only absorbs float rounding
    return np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)  # (K, 4)


def obb_labels(parts: np.ndarray, truncated: np.ndarray, origin: tuple[int, int], crop: int) -> np.ndarray:
    """Normalised four-corner boxes of the parts, Ultralytics OBB format.

    An untruncated quadrilateral keeps its own corners (and their order); a truncated part (or a repaired triangle)
    becomes its minimum-area rotated rectangle, whose corners are clipped to the tile because Ultralytics rejects a
    label file with coordinates outside [0, 1].

    Args:
        parts (np.ndarray): Polygons in scaled image pixels, shape (K,), object.
        truncated (np.ndarray): Whether each part was cut by the window, shape (K,), bool.
        origin (tuple[int, int]): Window's top-left corner ``(x0, y0)``, scaled pixels.
        crop (int): Tile side, pixels.

    Returns:
        (np.ndarray): ``(x1, y1, ..., x4, y4)`` in [0, 1] of the tile, shape (K, 8), float64.
    """
    quads = parts.copy()  # (K,)
    own = ~truncated & (shapely.get_num_coordinates(parts) == 5)  # (K,) a closed ring of 4 corners
    quads[~own] = shapely.oriented_envelope(parts[~own])
    ring = shapely.get_coordinates(shapely.get_exterior_ring(quads)).reshape(-1, 5, 2)[:, :4]  # (K, 4, 2)
    xy = np.clip((ring - np.asarray(origin, dtype=np.float64)) / crop, 0.0, 1.0)  # (K, 4, 2)
    return xy.reshape(-1, 8)  # (K, 8)


def format_labels(cls: np.ndarray, coords: np.ndarray) -> str:
    """Render label rows as text, ``cls v1 v2 ...`` with 6 significant digits (1e-6 of a tile, as Ultralytics).

    Args:
        cls (np.ndarray): Class indices, shape (K,), int.
        coords (np.ndarray): Normalised coordinates, shape (K, D), float.

    Returns:
        (str): One line per row, newline-terminated; empty for K = 0.
    """
    coords = np.where(np.abs(coords) < _NORM_EPS, 0.0, coords)  # no "-0" or "1e-17" in the files
    return "".join(f"{c} " + " ".join(f"{v:.6g}" for v in row) + "\n" for c, row in zip(cls.tolist(), coords.tolist()))
