"""What travels between the tiler's stages: one image to tile, its counters, and its outcome (the restart record)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageJob:
    """One source image to tile.

    Attributes:
        split (str): Split name.
        stem (str): Image file stem (tile names start with it).
        image (Path): Source image.
        rel (str): Image path relative to SRC, for the manifest.
        points (np.ndarray): Object corners, shape (N, 4, 2), float64 source pixels.
        cls (np.ndarray): Class indices, shape (N,), int64.
        has_labels (bool): Whether the split has labels (False for DOTA test: no label files written).
        outlines (tuple[np.ndarray, ...] | None): YOLO-format sources: each object's (K_i, 2) corners normalised to
            [0, 1] of the image (its size is known once the worker reads it); ``points`` is then unused.
    """

    split: str
    stem: str
    image: Path
    rel: str
    points: np.ndarray
    cls: np.ndarray
    has_labels: bool
    outlines: tuple[np.ndarray, ...] | None = None


@dataclass
class TileStats:
    """Tile and object counters: the one list of them, summed per image and over a run (``TileSummary`` inherits it).

    Attributes:
        tiles (int): Tiles written.
        tiles_with_objects (int): Tiles with at least one object.
        tiles_empty (int): Tiles without objects (and test-split tiles).
        kept (int): Object labels written (an object in two overlapping tiles counts twice).
        truncated (int): Of those, objects cut by a tile edge (labelled from their clipped part).
        dropped (int): Object-tile pairs left out because the IoF was below the threshold.
        repaired (int): Self-intersecting or mis-ordered polygons: quadrilaterals replaced by their convex hull,
            segment outlines by the largest polygon of their `make_valid` repair (one object, one instance).
        degenerate (int): Polygons below one square pixel, left out.
    """

    tiles: int = 0
    tiles_with_objects: int = 0
    tiles_empty: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    repaired: int = 0
    degenerate: int = 0

    def merge(self, other: TileStats) -> None:
        """Add ``other``'s counters to these (only the counters of :class:`TileStats`, whatever the subclass)."""
        for f in fields(TileStats):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class ImageResult:
    """Outcome of one image, also its restart record (``DST/.tile_dota/done/{split}/{stem}.json``).

    Attributes:
        split (str): Split name.
        stem (str): Image stem.
        image (str): Source path relative to SRC.
        width (int): Source width, pixels (0 when it failed).
        height (int): Source height, pixels.
        tiles (list[dict]): One manifest row per tile written (see ``output.MANIFEST_FIELDS``).
        stats (TileStats): This image's counters (a JSON object in the record).
        messages (list[str]): Problems found in this image (degenerate objects...).
        error (str | None): Why the image failed, None on success.
    """

    split: str
    stem: str
    image: str
    width: int = 0
    height: int = 0
    tiles: list[dict] = field(default_factory=list)
    stats: TileStats = field(default_factory=TileStats)
    messages: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> str:
        """The record's text: one JSON object, ``stats`` nested."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ImageResult:
        """Read a record written by :meth:`to_json`.

        Args:
            text (str): The record's text.

        Returns:
            (ImageResult): The outcome it describes.
        """
        data = json.loads(text)
        return cls(**{**data, "stats": TileStats(**data.get("stats", {}))})
