"""Image decoding, rescaling, cropping and encoding for the DOTA tiler (OpenCV; Pillow only to read headers)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError


def image_header(path: Path) -> tuple[int, int, int]:
    """Width, height and bytes per pixel of an image from its header, without decoding the pixels.

    Uses Pillow with its decompression-bomb limit lifted for this call only: we never decode through Pillow, and DOTA
    images of 20000 x 20000 pixels are legitimate. Only used to size the worker pool.

    Args:
        path (Path): Image file.

    Returns:
        (tuple[int, int, int]): ``(width, height, bytes_per_pixel)``; ``(0, 0, 0)`` when the header is unreadable.
    """
    import warnings

    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("ignore")
            bits = 16 if im.mode.startswith("I;16") or im.mode in {"I", "F"} else 8
            return im.width, im.height, len(im.getbands()) * bits // 8
    except Exception:
        return 0, 0, 0
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_image(path: Path, keep_16bit: bool = False) -> np.ndarray:
    """Decode an image for tiling: BGR or gray, 8-bit unless ``keep_16bit``.

    Rules: EXIF orientation is applied (as Ultralytics does, so labels and pixels agree); an alpha channel is
    dropped; gray stays one channel (Ultralytics expands it when loading); 16-bit becomes 8-bit as ``value >> 8``, the
    conversion OpenCV, and therefore Ultralytics, applies when it reads the same 16-bit file for training or prediction.

    Args:
        path (Path): Image file.
        keep_16bit (bool): Keep 16-bit samples (for PNG output).

    Returns:
        (np.ndarray): Pixels, shape (H, W) or (H, W, 3), uint8 (or uint16).

    Raises:
        ImageError: If the file cannot be read or decoded, or has an unsupported pixel type.
    """
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR  # keeps 16 bits and gray, drops alpha, applies EXIF
    if os.name != "nt" or str(path).isascii():
        im = cv2.imread(str(path), flags)  # decodes from the file: no extra copy of a 100 MB PNG
        if im is None and not os.access(path, os.R_OK):
            raise ImageError(f"{path}: cannot read file (missing or no permission)")
    else:  # cv2.imread cannot open non-ASCII paths on Windows
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise ImageError(f"{path}: cannot read file ({e.strerror or e})") from None
        im = cv2.imdecode(data, flags) if data.size else None
    if im is None:
        raise ImageError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    if im.dtype == np.uint16 and not keep_16bit:
        im = (im >> 8).astype(np.uint8)
    elif im.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{path}: unsupported pixel type {im.dtype} (8- and 16-bit images are supported)")
    if im.ndim == 3 and im.shape[2] == 4:
        im = im[..., :3]  # BGRA -> BGR (a view; cv2 handles it)
    elif im.ndim == 3 and im.shape[2] == 1:
        im = im[..., 0]
    elif im.ndim == 3 and im.shape[2] != 3:
        raise ImageError(f"{path}: unsupported channel count {im.shape[2]}")
    return im


def resize_image(im: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rescale an image to ``size`` (width, height): area averaging to shrink, bilinear to enlarge (as Ultralytics).

    Args:
        im (np.ndarray): Image, shape (H, W[, C]).
        size (tuple[int, int]): Target ``(width, height)``.

    Returns:
        (np.ndarray): The rescaled image (``im`` itself when the size is unchanged).
    """
    if (im.shape[1], im.shape[0]) == tuple(size):
        return im
    shrink = size[0] < im.shape[1]
    return cv2.resize(im, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop_tile(im: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Cut one window out of an image, zero-padding at the right and bottom where it passes the edge.

    Args:
        im (np.ndarray): Image, shape (H, W[, C]).
        window (np.ndarray): ``(x0, y0, x1, y1)``, shape (4,), int.

    Returns:
        (np.ndarray): Tile, shape (y1 - y0, x1 - x0[, C]); a view of ``im`` when no padding is needed.
    """
    x0, y0, x1, y1 = (int(v) for v in window)
    part = im[y0:y1, x0:x1]
    if part.shape[:2] == (y1 - y0, x1 - x0):
        return part
    tile = np.zeros((y1 - y0, x1 - x0, *im.shape[2:]), dtype=im.dtype)
    tile[: part.shape[0], : part.shape[1]] = part
    return tile


def encode_image(tile: np.ndarray, ext: str, jpeg_quality: int) -> np.ndarray:
    """Encode a tile, raising instead of returning a failure flag as ``cv2.imwrite`` does.

    Args:
        tile (np.ndarray): Pixels, shape (H, W[, C]).
        ext (str): ``png`` or ``jpg``.
        jpeg_quality (int): JPEG quality, 0-100.

    Returns:
        (np.ndarray): The encoded file, shape (nbytes,), uint8 (written as is: no copy to bytes).
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == "jpg" else []
    ok, buf = cv2.imencode(f".{ext}", tile, params)
    if not ok:
        raise ImageError(f"cannot encode a {tile.shape} {tile.dtype} tile as {ext}")
    return buf

