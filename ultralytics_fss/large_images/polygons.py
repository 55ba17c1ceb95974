"""Polygons of any number of corners (segment labels) for the tiler: objects built from
them, the parts a window cuts them into (each part above the IoF rule its own instance), and their tile labels.

The windows, the IoF test and the clipping are `geometry.assign_objects`, as for DOTA's quadrilaterals; this module
adds what polygons need on top: outlines of any length, and a cut that leaves several pieces.
"""

from __future__ import annotations

import numpy as np
import shapely

from .geometry import DEGENERATE_AREA, Objects, WindowObjects

POLYGON = 3  # shapely's geometry type id of a Polygon


def build_polygon_objects(polygons: list[np.ndarray], cls: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)):
    """Turn outlines of any number of corners into valid polygons, as `geometry.build_objects` does for
    quadrilaterals.

    A self-intersecting outline is repaired with shapely's `make_valid` (its valid pieces, not the convex hull: a
    mask outline may be concave, and the hull would fill it), of which the largest polygon stays: one object stays
    one instance, as its label was one row (`largest_parts`). A polygon whose area is below `DEGENERATE_AREA` (in
    source pixels) is left out.

    Args:
        polygons (list[np.ndarray]): One (K_i, 2) array of corners per object, source pixels, K_i >= 3.
        cls (np.ndarray): Class indices, shape (N,), int.
        scale (tuple[float, float]): Factors ``(sx, sy)`` from source to scaled pixels.

    Returns:
        objects (Objects): The usable objects, in scaled pixels.
        repaired (np.ndarray): Mask of repaired input rows, shape (N,), bool.
        degenerate (np.ndarray): Mask of rejected input rows, shape (N,), bool.
    """
    counts = np.array([len(p) for p in polygons], dtype=np.int64)  # (N,)
    coords = np.concatenate(polygons).astype(np.float64) if len(polygons) else np.zeros((0, 2))  # (sum K, 2)
    rings = shapely.linearrings(coords, indices=np.repeat(np.arange(len(polygons)), counts))  # (N,), closed
    geoms = shapely.polygons(rings)  # (N,)
    repaired = ~shapely.is_valid(geoms)  # (N,) bool
    if repaired.any():
        geoms[repaired] = largest_parts(shapely.make_valid(geoms[repaired]))
    degenerate = ~(shapely.area(geoms) >= DEGENERATE_AREA)  # (N,) bool
    repaired &= ~degenerate
    keep = np.flatnonzero(~degenerate)  # (N',)
    kept = geoms[keep]
    if tuple(scale) != (1.0, 1.0):
        kept = shapely.transform(kept, lambda xy: xy * np.asarray(scale, dtype=np.float64))
    objects = Objects(
        geoms=kept,
        boxes=shapely.bounds(kept).reshape(-1, 4),
        areas=shapely.area(kept),
        cls=np.asarray(cls, dtype=np.int64)[keep],
        index=keep.astype(np.int64),
    )
    return objects, repaired, degenerate


def largest_parts(geoms: np.ndarray) -> np.ndarray:
    """The largest polygon of each geometry (a repaired outline may be a MultiPolygon, or a collection with the
    lines and points of its pinches); an empty polygon where there is none.

    Args:
        geoms (np.ndarray): Shapely geometries, shape (N,), object.

    Returns:
        (np.ndarray): Shapely Polygons, shape (N,), object.
    """
    parts, owner = shapely.get_parts(geoms, return_index=True)  # (P,), (P,)
    area = np.where(shapely.get_type_id(parts) == POLYGON, shapely.area(parts), -1.0)  # (P,) non-polygons last
    order = np.lexsort((-area, owner))  # by owner, largest first
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]] if len(order) else order  # (<= N,)
    out = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    keep = first[area[first] >= 0]
    out[owner[keep]] = parts[keep]
    return out


def split_parts(window: WindowObjects, objects: Objects, iof_thr: float) -> tuple[np.ndarray, np.ndarray]:
    """The polygons a window keeps of its objects, one instance per piece: an object the window cuts into several
    pieces keeps each piece whose area / the object's area >= `iof_thr` (a whole object is one piece).

    Args:
        window (WindowObjects): The window's objects (`geometry.assign_objects`).
        objects (Objects): All objects of the image.
        iof_thr (float): The IoF rule, applied per piece.

    Returns:
        owner (np.ndarray): Position in `objects` of each piece's object, shape (P,), int64, ascending.
        pieces (np.ndarray): The pieces, shapely Polygons in scaled pixels, shape (P,), object.
    """
    pieces, row = shapely.get_parts(window.parts, return_index=True)  # (P0,), (P0,) row in window.index
    owner = window.index[row]  # (P0,)
    polygon = shapely.get_type_id(pieces) == POLYGON  # lines and points of a cut along an edge carry no area
    if window.truncated.any():
        whole = ~window.truncated[row]  # (P0,) pieces of uncut objects: kept as they are
        share = shapely.area(pieces) / objects.areas[owner]  # (P0,)
        polygon &= whole | ((share >= iof_thr) & (share > 0))
    return owner[polygon], pieces[polygon]


def segment_labels(pieces: np.ndarray, origin: tuple[int, int], crop: int) -> list[np.ndarray]:
    """Normalised outlines of the pieces, Ultralytics segment format (exterior ring, without the closing corner).

    Args:
        pieces (np.ndarray): Polygons in scaled image pixels, shape (P,), object.
        origin (tuple[int, int]): Window's top-left corner ``(x0, y0)``, scaled pixels.
        crop (int): Tile side, pixels.

    Returns:
        (list[np.ndarray]): One (K_i, 2) array in [0, 1] of the tile per piece.
    """
    rings = shapely.get_exterior_ring(pieces)  # (P,)
    coords, index = shapely.get_coordinates(rings, return_index=True)  # (sum K_i + 1, 2), (sum,)
    xy = np.clip((coords - np.asarray(origin, dtype=np.float64)) / crop, 0.0, 1.0)  # float rounding only
    bounds = np.cumsum(np.bincount(index, minlength=len(pieces)))[:-1]
    return [ring[:-1] for ring in np.split(xy, bounds)]  # the ring repeats its first corner last


def format_segments(cls: np.ndarray, outlines: list[np.ndarray]) -> str:
    """Render segment label rows as text, ``cls x1 y1 ... xn yn`` with 6 significant digits."""
    return "".join(
        f"{c} " + " ".join(f"{v:.6g}" for v in xy.reshape(-1).tolist()) + "\n"
        for c, xy in zip(np.asarray(cls).tolist(), outlines)
    )
