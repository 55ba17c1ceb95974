"""I/O stages of the DOTA tiler: source layouts, image decoding, atomic writes, manifest and data.yaml."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
STATE_DIR = ".tile_dota"  # DST/.tile_dota: options, one record per finished image (restart and shard state)
TMP_SUFFIX = ".tmp"  # temporary files are ".{final name}.{run token}.tmp": hidden from Ultralytics' image globs
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = (
    "split", "tile", "image", "rate", "left", "top", "left_orig", "top_orig", "crop", "width", "height", "objects",
    "truncated",
)  # fmt: skip


class TilingError(Exception):
    """A problem with the arguments or the source as a whole; nothing was tiled."""


class ImageError(Exception):
    """One image cannot be tiled (unreadable, corrupt, unsupported pixel type)."""


# ---------------------------------------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class SplitSource:
    """Where one split of the source lives.

    Attributes:
        name (str): Split name (train, val, test...).
        images (Path): Image folder.
        labels (Path | None): DOTA label folder, None when the split has none (DOTA test).
    """

    name: str
    images: Path
    labels: Path | None


LAYOUTS = {
    "official": "SRC/{split}/images + SRC/{split}/labelTxt",
    "ultralytics": "SRC/images/{split} + SRC/labels/{split}_original",
    "flat": "SRC/images + SRC/labelTxt (one split, named 'train')",
}


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _dir_or_none(path: Path) -> Path | None:
    return path if path.is_dir() else None


def detect_layout(src: Path) -> tuple[str, dict[str, SplitSource]]:
    """Recognise the DOTA layout of ``src`` (see LAYOUTS) and return its splits.

    Args:
        src (Path): Source root.

    Returns:
        layout (str): Key of LAYOUTS.
        splits (dict[str, SplitSource]): Splits found, by name.

    Raises:
        TilingError: If ``src`` is missing, empty, or matches several layouts; the message lists the layouts tried.
    """
    tried = "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items())
    if not src.is_dir():
        raise TilingError(f"source {src} is not a folder (layouts tried: {tried})")
    found: dict[str, dict[str, SplitSource]] = {}
    official = {
        d.name: SplitSource(d.name, d / "images", _dir_or_none(d / "labelTxt"))
        for d in sorted(src.iterdir())
        if (d / "images").is_dir() and ((d / "labelTxt").is_dir() or _has_images(d / "images"))
    }
    if official:
        found["official"] = official
    labels_root = src / "labels"
    if (src / "images").is_dir() and labels_root.is_dir() and any(labels_root.glob("*_original")):
        found["ultralytics"] = {
            d.name: SplitSource(d.name, d, _dir_or_none(labels_root / f"{d.name}_original"))
            for d in sorted((src / "images").iterdir())
            if d.is_dir()
        }
    if (
        (src / "labelTxt").is_dir()
        and (src / "images").is_dir()
        and not any(p.is_dir() for p in (src / "images").iterdir())
    ):
        found["flat"] = {"train": SplitSource("train", src / "images", src / "labelTxt")}
    if not found:
        raise TilingError(f"no DOTA layout found in {src} (layouts tried: {tried})")
    if len(found) > 1:
        raise TilingError(
            f"ambiguous source {src}: it matches the {' and '.join(found)} layouts (layouts tried: {tried})"
        )
    layout, splits = next(iter(found.items()))
    if not any(
        list_files(s.images, IMAGE_SUFFIXES) or (s.labels and list_files(s.labels, (".txt",))) for s in splits.values()
    ):
        raise TilingError(f"source {src} ({layout} layout: {LAYOUTS[layout]}) holds no images and no label files")
    return layout, splits


def list_files(folder: Path | None, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files of ``folder`` with one of ``suffixes`` (case-insensitive), by stem, sorted by name.

    Args:
        folder (Path | None): Folder to list; None or missing gives an empty dict.
        suffixes (tuple[str, ...]): Accepted suffixes, lower case with dot.

    Returns:
        (dict[str, Path]): Stem to file; for a stem present with two suffixes, the first by name.
    """
    if folder is None or not folder.is_dir():
        return {}
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in suffixes and p.is_file() and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


# ----------------------------------------------------------------------------------------------------------- images
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


# ------------------------------------------------------------------------------------------------------ atomic files
def tmp_path(path: Path, token: str) -> Path:
    """Temporary name for ``path``: hidden, tagged with the run token, in the same folder (so rename is atomic)."""
    return path.with_name(f".{path.name}.{token}{TMP_SUFFIX}")


def write_atomic(path: Path, data: bytes | np.ndarray | str, token: str) -> None:
    """Write a file under a temporary name, then rename it over ``path``; no partial file is ever visible.

    The temporary file is removed on any exception, KeyboardInterrupt included. A SIGKILL can still leave it behind;
    :func:`remove_stale_tmp` cleans those up on the next run.

    Args:
        path (Path): Final file.
        data (bytes | np.ndarray | str): Contents: bytes-like, or str written as UTF-8.
        token (str): Run token, part of the temporary name.
    """
    tmp = tmp_path(path, token)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_atomic(src: Path, path: Path, token: str) -> None:
    """Hard-link ``src`` to ``path`` atomically (copy where the file system has no hard links).

    Args:
        src (Path): Existing file.
        path (Path): New name.
        token (str): Run token, part of the temporary name.
    """
    tmp = tmp_path(path, token)
    try:
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            tmp.write_bytes(src.read_bytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_tmp(folders: list[Path], stems: set[str] | None = None, token: str | None = None) -> int:
    """Delete temporary files left in ``folders`` by an interrupted or killed run.

    Args:
        folders (list[Path]): Output folders to scan (not recursive).
        stems (set[str] | None): Only temporaries of tiles of these source images (``{stem}__...``), so concurrent
            shards never touch each other's files; None: any.
        token (str | None): Only temporaries of this run; None: any run.

    Returns:
        (int): Number of files removed.
    """
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for e in entries:
                name = e.name
                if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                    continue
                if token is not None and not name.endswith(f".{token}{TMP_SUFFIX}"):
                    continue
                if (
                    stems is not None
                    and name[1:].split("__", 1)[0] not in stems
                    and name[1:].rsplit(".", 3)[0] not in stems
                ):
                    continue
                Path(e.path).unlink(missing_ok=True)
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------- manifest and data.yaml
def read_records(state: Path) -> list[dict]:
    """Load every finished-image record under ``DST/.tile_dota/done`` (any shard, any order).

    Args:
        state (Path): The ``DST/.tile_dota`` folder.

    Returns:
        (list[dict]): Records sorted by (split, image); unreadable ones (impossible with atomic writes) are skipped.
    """
    records = []
    for p in sorted((state / "done").glob("*/*.json")):
        try:
            records.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: (r["split"], r["stem"]))


def manifest_text(records: list[dict]) -> str:
    """Render the manifest: one CSV row per tile (see MANIFEST_FIELDS), sorted by split, image, then tile order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        for t in r["tiles"]:
            writer.writerow({"split": r["split"], "image": r["image"], **t})
    return buf.getvalue()


def write_manifest(dst: Path, token: str) -> int:
    """Rebuild ``DST/manifest.csv`` from all finished-image records, safe against shards finishing concurrently.

    Each writer re-reads the records after its rename and rewrites while they changed, so the last rename always
    reflects every record written before it: shards may finish in any order.

    Args:
        dst (Path): Output root.
        token (str): Run token for the temporary file.

    Returns:
        (int): Number of images in the manifest.
    """
    state = dst / STATE_DIR
    text = None
    while True:
        records = read_records(state)
        new = manifest_text(records)
        if new == text:
            return len(records)
        write_atomic(dst / MANIFEST, new, token)
        text = new


def data_yaml_text(dataset: Path, splits: list[str], names: list[str]) -> str:
    """Render an Ultralytics data.yaml; a missing val split points at train (Ultralytics requires a val key).

    Args:
        dataset (Path): Dataset root (absolute), written as ``path:``.
        splits (list[str]): Splits tiled.
        names (list[str]): Class names in index order.

    Returns:
        (str): YAML text.
    """
    lines = [
        "# Ultralytics dataset written by python -m ultralytics_fss.tile_dota",
        f"path: {json.dumps(str(dataset))}",
    ]
    train = "train" if "train" in splits else splits[0]
    lines.append(f"train: images/{train}")
    lines.append(f"val: images/{'val' if 'val' in splits else train}")
    if "test" in splits:
        lines.append("test: images/test")
    lines += ["", "names:"] + [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"
