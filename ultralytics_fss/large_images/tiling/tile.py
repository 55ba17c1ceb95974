"""Tiling one image: the unit of work, of restart (one record per finished image) and of sharding.

Runs in worker processes, so it imports no Ultralytics module and keeps only one source image in memory.
"""

from __future__ import annotations

import signal
from types import FrameType

import cv2
import numpy as np

from .. import geometry as geo
from ..errors import ImageError
from ..files import link_atomic, write_atomic
from ..images import crop_tile, encode_image, read_image, resize_image
from ..polygons import build_polygon_objects, format_segments, segment_labels, split_parts
from .config import TileConfig
from .output import TileOutput
from .records import ImageJob, ImageResult, TileStats


def tile_name(stem: str, rate: float, left: int, top: int) -> str:
    """Tile name in the DOTA devkit's convention ``{stem}__{rate}__{left}___{top}`` (offsets in scaled pixels)."""
    return f"{stem}__{rate:g}__{left}___{top}"


def tile_image(job: ImageJob, cfg: TileConfig, out: TileOutput, token: str) -> ImageResult:
    """Tile one image at every rate, write tiles, labels and finally its record.

    Args:
        job (ImageJob): The image and its objects.
        cfg (TileConfig): Output options.
        out (TileOutput): Output state in DST.
        token (str): Run token for temporary names.

    Returns:
        (ImageResult): Counters and manifest rows; ``error`` set (nothing recorded) when the image cannot be tiled.
    """
    result = ImageResult(job.split, job.stem, job.rel)
    try:
        im = read_image(job.image, keep_16bit=cfg.keep_16bit)
    except ImageError as e:
        result.error = str(e)
        return result
    result.height, result.width = im.shape[:2]
    ext = cfg.ext or ("jpg" if job.image.suffix.lower() in {".jpg", ".jpeg"} else "png")
    if im.dtype == np.uint16 and ext != "png":
        result.error = f"{job.image}: 16-bit image kept 16-bit needs --ext png (JPEG is 8-bit)"
        return result
    out.make_dirs(job.split, job.has_labels)
    for rate in cfg.rates:
        rows, stats, messages = _tile_at_rate(job, cfg, out, token, im, rate, ext, first=rate == cfg.rates[0])
        result.tiles += rows
        result.stats.merge(stats)
        result.messages += messages
    out.write_record(result, token)  # last: the image counts as finished only now
    return result


def _tile_at_rate(
    job: ImageJob,
    cfg: TileConfig,
    out: TileOutput,
    token: str,
    im: np.ndarray,
    rate: float,
    ext: str,
    first: bool,
) -> tuple[list[dict], TileStats, list[str]]:
    """Rescale the image by ``rate``, cut its windows, write each tile with its labels.

    Args:
        job (ImageJob): The image and its objects.
        cfg (TileConfig): Output options.
        out (TileOutput): Output state in DST.
        token (str): Run token for temporary names.
        im (np.ndarray): Source pixels, shape (H, W[, C]).
        rate (float): Scale factor.
        ext (str): Tile format, ``png`` or ``jpg``.
        first (bool): Whether this is the first rate: per-object counts (repaired, degenerate) are taken once.

    Returns:
        rows (list[dict]): One manifest row per tile written (without split and image).
        stats (TileStats): Counters of this rate.
        messages (list[str]): Problems found (degenerate objects, first rate only).
    """
    h, w = im.shape[:2]
    sw, sh = geo.scaled_size(w, h, rate)
    scale = geo.scale_factors(w, h, rate)  # exact per-axis factors of the pixel grid (rate up to rounding of the size)
    scaled = resize_image(im, (sw, sh))
    if job.outlines is None:  # DOTA: quadrilaterals in source pixels
        objects, repaired, degenerate = geo.build_objects(job.points, job.cls, scale)
    else:  # YOLO format: outlines of any length, normalised to the image
        pixels = [o * np.array([w, h], dtype=np.float64) for o in job.outlines]
        objects, repaired, degenerate = build_polygon_objects(pixels, job.cls, scale)
    stats, messages, rows = TileStats(), [], []
    if first:  # count per source object once, not once per rate
        stats.repaired, stats.degenerate = int(repaired.sum()), int(degenerate.sum())
        messages = [
            f"{job.image}: object {i + 1} has a degenerate polygon (area < 1 px), left out"
            for i in np.flatnonzero(degenerate)
        ]
    windows = geo.get_windows(sw, sh, cfg.crop, cfg.stride)  # (W, 4)
    boxes = geo.content_boxes(windows, sw, sh)  # (W, 4)
    assigned = geo.assign_objects(objects, boxes, cfg.iof) if job.has_labels else [None] * len(windows)
    for window, box, wo in zip(windows, boxes, assigned):
        n = 0 if wo is None else len(wo.index)
        if wo is not None:
            stats.dropped += wo.dropped
        if job.has_labels and n == 0 and cfg.empty == "drop":
            continue
        left, top = int(window[0]), int(window[1])
        name = tile_name(job.stem, rate, left, top)
        _write_tile(job, cfg, out, token, crop_tile(scaled, window), f"{name}.{ext}", objects, wo, (left, top))
        n_trunc = 0 if wo is None else int(wo.truncated.sum())
        stats.tiles += 1
        stats.tiles_with_objects += n > 0
        stats.tiles_empty += n == 0
        stats.kept += n
        stats.truncated += n_trunc
        rows.append(
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
    return rows, stats, messages


def _write_tile(
    job: ImageJob,
    cfg: TileConfig,
    out: TileOutput,
    token: str,
    pixels: np.ndarray,
    file: str,
    objects: geo.Objects,
    wo: geo.WindowObjects | None,
    origin: tuple[int, int],
) -> None:
    """Write one tile under every dataset root (hard links after the first) and, for labelled splits, its labels.

    Args:
        job (ImageJob): The image (split, whether it has labels).
        cfg (TileConfig): Output options (formats, crop, JPEG quality).
        out (TileOutput): Output state in DST.
        token (str): Run token for temporary names.
        pixels (np.ndarray): The tile, shape (crop, crop[, C]).
        file (str): Tile file name, ``{name}.{ext}``.
        objects (geo.Objects): Every usable object of the image (classes, areas for the IoF of segment pieces).
        wo (geo.WindowObjects | None): Objects kept in this tile; None for a split without labels.
        origin (tuple[int, int]): Tile's top-left corner ``(left, top)``, scaled pixels.
    """
    ext = file.rsplit(".", 1)[1]
    first = out.images_dir(out.roots[0], job.split) / file
    write_atomic(first, encode_image(pixels, ext, cfg.jpeg_quality), token)
    for root in out.roots[1:]:
        link_atomic(first, out.images_dir(root, job.split) / file, token)
    if not job.has_labels:
        return
    label, tile_cls = f"{file.rsplit('.', 1)[0]}.txt", objects.cls[wo.index]  # (K,)
    for root, fmt in zip(out.roots, cfg.formats()):
        if fmt == "segment":  # one instance per piece the window cuts an object into (each above the IoF rule)
            owner, pieces = split_parts(wo, objects, cfg.iof)
            text = format_segments(objects.cls[owner], segment_labels(pieces, origin, cfg.crop))
        elif fmt == "detect":
            text = geo.format_labels(tile_cls, geo.detect_labels(wo.parts, origin, cfg.crop))
        else:
            text = geo.format_labels(tile_cls, geo.obb_labels(wo.parts, wo.truncated, origin, cfg.crop))
        write_atomic(out.labels_dir(root, job.split) / label, text, token)


# ------------------------------------------------------------------------------------------------ worker processes
_IN_TASK = False  # whether this worker process is tiling an image (decides what a signal does)


def _on_signal(signum: int, frame: FrameType | None) -> None:
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


def run_job(job: ImageJob, cfg: TileConfig, out: TileOutput, token: str) -> ImageResult:
    """Pool entry point: :func:`tile_image` with signal-aware bookkeeping; unexpected exceptions become errors."""
    global _IN_TASK
    _IN_TASK = True
    try:
        return tile_image(job, cfg, out, token)
    except (OSError, ValueError, cv2.error, MemoryError) as e:
        return ImageResult(job.split, job.stem, job.rel, error=f"{job.image}: {type(e).__name__}: {e}")
    finally:
        _IN_TASK = False
