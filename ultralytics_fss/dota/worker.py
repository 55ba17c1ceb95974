"""Tiling one image: the unit of work, of restart (one record per finished image) and of sharding.

Runs in worker processes, so it imports no Ultralytics module and keeps only one source image in memory.
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import geometry as geo
from .io import STATE_DIR, ImageError, crop_tile, encode_image, link_atomic, read_image, resize_image, write_atomic


@dataclass(frozen=True)
class TileConfig:
    """Options that decide the output (recorded in ``DST/.tile_dota/options.json``; a restart must match them).

    Attributes:
        crop (int): Tile side, pixels.
        stride (int): Step between windows, pixels.
        rates (tuple[float, ...]): Image scale factors.
        iof (float): Minimum intersection over foreground to keep an object in a tile.
        format (str): ``detect``, ``obb`` or ``both``.
        names (tuple[str, ...]): Category tokens in class order.
        difficult (str): ``keep`` or ``drop`` objects flagged difficult.
        empty (str): ``keep`` or ``drop`` tiles without objects (splits with labels only).
        ext (str | None): ``png``/``jpg`` for all tiles; None: each source's own (JPEG stays JPEG, others PNG).
        keep_16bit (bool): Write 16-bit sources as 16-bit PNG instead of converting to 8-bit.
        jpeg_quality (int): JPEG quality (95: OpenCV's default, what Ultralytics' split_dota writes).
    """

    crop: int = 1024
    stride: int = 800
    rates: tuple[float, ...] = (1.0,)
    iof: float = 0.7
    format: str = "detect"
    names: tuple[str, ...] = ()
    difficult: str = "keep"
    empty: str = "keep"
    ext: str | None = None
    keep_16bit: bool = False
    jpeg_quality: int = 95

    def formats(self) -> tuple[str, ...]:
        """Label formats written, the first at the DST root (``both``: detect at the root, obb under ``DST/obb``)."""
        return ("detect", "obb") if self.format == "both" else (self.format,)


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
    """

    split: str
    stem: str
    image: Path
    rel: str
    points: np.ndarray
    cls: np.ndarray
    has_labels: bool


@dataclass
class ImageResult:
    """Outcome of one image, also its restart record (``DST/.tile_dota/done/{split}/{stem}.json``).

    Attributes:
        split (str): Split name.
        stem (str): Image stem.
        image (str): Source path relative to SRC.
        width (int): Source width, pixels (0 when it failed).
        height (int): Source height, pixels.
        tiles (list[dict]): One manifest row per tile written (see ``io.MANIFEST_FIELDS``).
        stats (dict[str, int]): Counters: tiles, tiles_with_objects, tiles_empty, kept, truncated, dropped, repaired,
            degenerate.
        messages (list[str]): Problems found in this image (degenerate objects...).
        error (str | None): Why the image failed, None on success.
    """

    split: str
    stem: str
    image: str
    width: int = 0
    height: int = 0
    tiles: list[dict] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    error: str | None = None


def record_path(dst: Path, split: str, stem: str) -> Path:
    """Path of the record that marks an image as finished."""
    return dst / STATE_DIR / "done" / split / f"{stem}.json"


def tile_name(stem: str, rate: float, left: int, top: int) -> str:
    """Tile name in the DOTA devkit's convention ``{stem}__{rate}__{left}___{top}`` (offsets in scaled pixels)."""
    return f"{stem}__{rate:g}__{left}___{top}"


def tile_image(job: ImageJob, cfg: TileConfig, dst: Path, token: str) -> ImageResult:
    """Tile one image at every rate, write tiles, labels and finally its record.

    Args:
        job (ImageJob): The image and its objects.
        cfg (TileConfig): Output options.
        dst (Path): Output root.
        token (str): Run token for temporary names.

    Returns:
        (ImageResult): Counters and manifest rows; ``error`` set (nothing recorded) when the image cannot be tiled.
    """
    result = ImageResult(job.split, job.stem, job.rel)
    stats = dict.fromkeys(
        ("tiles", "tiles_with_objects", "tiles_empty", "kept", "truncated", "dropped", "repaired", "degenerate"), 0
    )
    try:
        im = read_image(job.image, keep_16bit=cfg.keep_16bit)
    except ImageError as e:
        result.error = str(e)
        return result
    h, w = im.shape[:2]
    result.width, result.height = w, h
    ext = cfg.ext or ("jpg" if job.image.suffix.lower() in {".jpg", ".jpeg"} else "png")
    if im.dtype == np.uint16 and ext != "png":
        result.error = f"{job.image}: 16-bit image kept 16-bit needs --ext png (JPEG is 8-bit)"
        return result
    roots = [dst] + [dst / f for f in cfg.formats()[1:]]
    for root in roots:
        (root / "images" / job.split).mkdir(parents=True, exist_ok=True)
        if job.has_labels:
            (root / "labels" / job.split).mkdir(parents=True, exist_ok=True)

    for rate in cfg.rates:
        sw, sh = max(1, round(w * rate)), max(1, round(h * rate))
        scale = (sw / w, sh / h)  # exact per-axis factors of the pixel grid (rate up to rounding of the size)
        scaled = resize_image(im, (sw, sh))
        objects, repaired, degenerate = geo.build_objects(job.points, job.cls, scale)
        if rate == cfg.rates[0]:  # count per source object once, not once per rate
            stats["repaired"] += int(repaired.sum())
            stats["degenerate"] += int(degenerate.sum())
            result.messages += [f"{job.image}: object {i + 1} has a degenerate polygon (area < 1 px), left out"
                                for i in np.flatnonzero(degenerate)]  # fmt: skip
        windows = geo.get_windows(sw, sh, cfg.crop, cfg.stride)  # (W, 4)
        boxes = geo.content_boxes(windows, sw, sh)  # (W, 4)
        assigned = geo.assign_objects(objects, boxes, cfg.iof) if job.has_labels else [None] * len(windows)
        for window, box, wo in zip(windows, boxes, assigned):
            n = 0 if wo is None else len(wo.index)
            if wo is not None:
                stats["dropped"] += wo.dropped
            if job.has_labels and n == 0 and cfg.empty == "drop":
                continue
            left, top = int(window[0]), int(window[1])
            name = tile_name(job.stem, rate, left, top)
            data = encode_image(crop_tile(scaled, window), ext, cfg.jpeg_quality)
            first = roots[0] / "images" / job.split / f"{name}.{ext}"
            write_atomic(first, data, token)
            for root in roots[1:]:
                link_atomic(first, root / "images" / job.split / f"{name}.{ext}", token)
            if job.has_labels:
                origin = (left, top)
                cls = objects.cls[wo.index]
                for root, fmt in zip(roots, cfg.formats()):
                    coords = (
                        geo.detect_labels(wo.parts, origin, cfg.crop)
                        if fmt == "detect"
                        else geo.obb_labels(wo.parts, wo.truncated, origin, cfg.crop)
                    )
                    write_atomic(root / "labels" / job.split / f"{name}.txt", geo.format_labels(cls, coords), token)
            n_trunc = 0 if wo is None else int(wo.truncated.sum())
            stats["tiles"] += 1
            stats["tiles_with_objects"] += n > 0
            stats["tiles_empty"] += n == 0
            stats["kept"] += n
            stats["truncated"] += n_trunc
            result.tiles.append(
                {
                    "tile": f"{name}.{ext}",
                    "rate": f"{rate:g}",
                    "left": left,
                    "top": top,
                    "left_orig": round(left / scale[0], 2),
                    "top_orig": round(top / scale[1], 2),
                    "crop": cfg.crop,
                    "width": int(box[2] - box[0]),
                    "height": int(box[3] - box[1]),
                    "objects": n,
                    "truncated": n_trunc,
                }
            )
    result.stats = stats
    path = record_path(dst, job.split, job.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(result)), token)  # last: the image counts as finished only now
    return result


# ------------------------------------------------------------------------------------------------ worker processes
_IN_TASK = False  # whether this worker process is tiling an image (decides what a signal does)


def _on_signal(signum: int, frame) -> None:
    """Abort the current image (its temporary file is removed on the way out); ignore SIGINT while idle.

    Ctrl-C reaches every process of the terminal's group: the main process owns the shutdown, so an idle worker
    stays quiet, and a busy one stops at once instead of finishing a possibly huge image.
    """
    if _IN_TASK:
        raise KeyboardInterrupt
    if signum == signal.SIGTERM:
        raise SystemExit(128 + signum)


def init_worker() -> None:
    """Worker initializer: one OpenCV thread per process (the pool already uses every core) and signal handling."""
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def run_job(job: ImageJob, cfg: TileConfig, dst: Path, token: str) -> ImageResult:
    """Pool entry point: :func:`tile_image` with signal-aware bookkeeping; unexpected exceptions become errors."""
    global _IN_TASK
    _IN_TASK = True
    try:
        return tile_image(job, cfg, dst, token)
    except (OSError, ValueError, cv2.error, MemoryError) as e:
        return ImageResult(job.split, job.stem, job.rel, error=f"{job.image}: {type(e).__name__}: {e}")
    finally:
        _IN_TASK = False
