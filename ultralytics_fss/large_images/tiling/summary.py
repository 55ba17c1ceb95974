"""What a tiling run reports: :class:`TileSummary`, :class:`TilingInterrupted` and the closing log lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ultralytics.utils import LOGGER, colorstr

from .records import ImageResult, TileStats

PREFIX = colorstr("tile_dota: ")
YOLO_PREFIX = colorstr("tile: ")  # the log prefix of runs on YOLO-format sources (python -m ultralytics_fss.tile)


def prefix_of(layout: str) -> str:
    """The log prefix of a run: the command the user typed for its source layout."""
    return YOLO_PREFIX if layout == "yolo" else PREFIX


@dataclass
class TileSummary(TileStats):
    """What a run did, returned by :func:`tile_dota` and printed at the end.

    Tile and object counters cover every image of this run (this shard), those finished by earlier runs included,
    so the last run's summary describes the whole dataset. The counters ``tiles`` ... ``degenerate`` are those of
    :class:`TileStats` (see there), summed over the images.

    Attributes:
        dst (Path | None): Output root (always set by :func:`tile_dota`).
        images (int): Images in this run (this shard).
        images_tiled (int): Images tiled by this run.
        images_skipped (int): Images finished by an earlier run.
        images_failed (int): Images that could not be tiled (see ``errors``).
        images_pending (int): Images not reached (interrupted run).
        objects (int): Objects read from the label files.
        difficult_dropped (int): Objects left out by ``difficult="drop"``.
        warnings (list[str]): Data problems that did not stop an image (malformed lines, orphan files...).
        errors (list[str]): Images that failed.
        interrupted (bool): Whether the run was stopped by Ctrl-C or SIGTERM.
        seconds (float): Wall time.
    """

    dst: Path | None = None
    images: int = 0
    images_tiled: int = 0
    images_skipped: int = 0
    images_failed: int = 0
    images_pending: int = 0
    objects: int = 0
    difficult_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every image of the run is finished."""
        return not self.errors and not self.interrupted and self.images_pending == 0

    def add(self, result: ImageResult) -> None:
        """Add one finished image's counters and messages."""
        self.merge(result.stats)
        self.warnings += result.messages

    def count_pending(self) -> None:
        """Set ``images_pending``: the images neither tiled, skipped nor failed."""
        self.images_pending = self.images - self.images_tiled - self.images_skipped - self.images_failed


class TilingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run after cleaning up; ``summary`` holds what was finished."""

    def __init__(self, summary: TileSummary):
        """Keep the summary of the stopped run."""
        super().__init__("tiling interrupted")
        self.summary = summary


def log_summary(s: TileSummary, prefix: str = PREFIX) -> None:
    """Print every problem found and the closing summary through Ultralytics' LOGGER, each line after `prefix`."""
    for w in s.warnings:
        LOGGER.warning(f"{prefix}{w}")
    for e in s.errors:
        LOGGER.error(f"{prefix}{e}")
    state = "interrupted" if s.interrupted else "done" if s.ok else "finished with errors"
    LOGGER.info(
        f"{prefix}{colorstr('bold', state)} in {s.seconds:.1f}s. Images: {s.images} ({s.images_tiled} tiled, "
        f"{s.images_skipped} already done, {s.images_failed} failed, {s.images_pending} not reached). "
        f"Tiles: {s.tiles} ({s.tiles_with_objects} with objects, {s.tiles_empty} without). "
        f"Objects: {s.objects} in labels; {s.kept} labels written, {s.truncated} truncated, {s.dropped} dropped "
        f"(IoF below threshold), {s.repaired} repaired, {s.degenerate} degenerate, "
        f"{s.difficult_dropped} difficult dropped. Problems: {len(s.warnings)} warnings, {len(s.errors)} errors. "
        f"Output: {s.dst}"
    )
