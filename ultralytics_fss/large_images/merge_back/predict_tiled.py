"""Prediction on large images: tile in memory with the tiler's own windows, predict the tiles, merge, one ``Results``.

The windows are those of ``tile_dota`` (:func:`ultralytics_fss.large_images.geometry.get_windows`: every ``stride``
pixels, the last one aligned to the edge, zero-padded when the image is smaller than ``crop``), at every rate, so a
model trained on the tiler's tiles sees the same views at inference. The merge is :func:`.nms.merge_image`, the code of
``merge_dota``.

Reference:
    SAHI, ``get_sliced_prediction`` (slicing, per-slice prediction, merge back); ours reuses the training tiling.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from ultralytics.engine.results import Results
from ultralytics.utils import LOGGER, TQDM, colorstr, ops
from ultralytics.utils.files import increment_path

from ..errors import ImageError, MergeError, TilingError
from ..files import IMAGE_SUFFIXES, list_files, unwritable
from ..geometry import get_windows, scale_factors, scaled_size
from ..images import crop_tile, read_image, resize_image
from ..tiling.config import DEFAULTS, TileConfig
from .merge_dota import DEFAULT_BATCH, DEFAULT_MAX_DET
from .nms import Detections, merge_image, tile_to_image
from .tile_predictions import RESULTS_FIELD, model_format, result_detections

PREFIX = colorstr("predict_tiled: ")
DEFAULT_CONF = 0.25  # Ultralytics' predict default
DEFAULT_PROJECT, DEFAULT_NAME = "runs/predict_tiled", "predict"  # where save and save_txt write (name incremented)


class TiledResults(list):
    """What :func:`predict_tiled` returns: a list of one ``Results`` per image predicted, in file order, with the
    images of a folder that could not be predicted in ``errors``.

    Attributes:
        errors (list[str]): One message per failed image, ``{file}: {reason}`` (unreadable, corrupt, truncated).

    Examples:
        >>> r = TiledResults([], ["bad.png: not a readable image"])
        >>> r.ok, len(r), r.errors
        (False, 0, ['bad.png: not a readable image'])
    """

    def __init__(self, results=(), errors=()):
        """Hold ``results`` (``Results``) and ``errors`` (messages naming the failed images)."""
        super().__init__(results)
        self.errors = list(errors)

    @property
    def ok(self) -> bool:
        """True when every image was predicted."""
        return not self.errors


def image_files(source: str | Path, split: str = "val") -> list[Path]:
    """The images of ``source``: one image file, the image files of a folder (sorted, not recursive), an image-list
    ``.txt`` file (one path per line, relative to the list's folder, as Ultralytics reads xView's lists), or a dataset
    YAML (the images of its ``split``, found by Ultralytics' own dataset checks, as ``tile`` finds them).

    Raises:
        MergeError: If ``source`` is missing, not an image, a folder or list without images, or a YAML that does not
            resolve or lacks ``split``.
    """
    source = Path(source)
    if source.is_dir():
        files = list(list_files(source, IMAGE_SUFFIXES).values())
        if not files:
            raise MergeError(f"--source {source}: no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not source.is_file():
        raise MergeError(f"--source {source}: no such file or folder")
    if source.suffix.lower() in {".yaml", ".yml", ".txt"}:
        return _listed_images(source, split)
    if source.suffix.lower() not in IMAGE_SUFFIXES:
        raise MergeError(
            f"--source {source}: not an image ({', '.join(IMAGE_SUFFIXES)}), image list (.txt) or dataset YAML"
        )
    return [source]


def _listed_images(source: Path, split: str) -> list[Path]:
    """The images an image-list file or a dataset YAML's ``split`` names (Ultralytics' listing)."""
    from ..yolo_labels import list_images, resolve_yolo_dataset

    try:
        if source.suffix.lower() == ".txt":
            return list_images(source)
        images = resolve_yolo_dataset(source, (split,))[1]
    except (FileNotFoundError, RuntimeError, OSError, SyntaxError) as e:
        raise MergeError(f"--source {source}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if split not in images:
        raise MergeError(f"--source {source}: no {split!r} split (choose one with --split)")
    return images[split]


def window_options(crop: int, stride: int | None, rates: tuple[float, ...] | list[float]) -> TileConfig:
    """The tiling options of a prediction, checked by :class:`TileConfig` as ``tile_dota`` checks them.

    Raises:
        MergeError: With TileConfig's message when ``crop``, ``stride`` or ``rates`` are impossible.
    """
    try:
        return TileConfig(crop=crop, stride=stride, rates=tuple(float(r) for r in rates))
    except TilingError as e:
        raise MergeError(str(e)) from None


def tiles_of(im: np.ndarray, crop: int, stride: int, rates: tuple[float, ...]):
    """Yield every tile of an image as the tiler cuts it, with where it came from.

    Args:
        im (np.ndarray): Image, shape (H, W, 3), uint8.
        crop (int): Tile side, pixels.
        stride (int): Step between windows, pixels.
        rates (tuple[float, ...]): Scale factors.

    Yields:
        tile (np.ndarray): Pixels, shape (crop, crop, 3) (zero-padded past the edge).
        offset (tuple[int, int]): ``(left, top)`` in the rescaled image.
        scale (tuple[float, float]): Per-axis factors from the image to the rescaled image.
    """
    h, w = im.shape[:2]
    for rate in rates:
        sw, sh = scaled_size(w, h, rate)
        scale = scale_factors(w, h, rate)
        scaled = resize_image(im, (sw, sh))
        for window in get_windows(sw, sh, crop, stride):  # (W, 4)
            yield crop_tile(scaled, window), (int(window[0]), int(window[1])), scale


def predict_image(
    model,
    im: np.ndarray,
    fmt: str,
    crop: int,
    stride: int,
    rates: tuple[float, ...],
    batch: int,
    iou: float | None,
    **predict_args,
) -> Detections:
    """Predict the tiles of one image in batches and merge them (arguments as :func:`predict_tiled`).

    Returns:
        (Detections): Merged detections in image pixels, by descending score.
    """
    parts, chunk = [], []

    def run(chunk: list) -> None:
        results = model.predict([t for t, _, _ in chunk], batch=batch, verbose=False, **predict_args)
        for r, (_, offset, scale) in zip(results, chunk):
            d = result_detections(r, fmt)
            parts.append(Detections(tile_to_image(d.boxes, offset, scale), d.scores, d.cls))

    for item in tiles_of(im, crop, stride, rates):
        chunk.append(item)
        if len(chunk) == batch:  # one batch of tiles in memory at a time, whatever the image size
            run(chunk)
            chunk = []
    if chunk:
        run(chunk)
    return merge_image(Detections.concat(parts, fmt), fmt, (im.shape[1], im.shape[0]), iou)


def to_results(d: Detections, fmt: str, im: np.ndarray, path: str, names: dict[int, str]) -> Results:
    """Wrap merged detections as an Ultralytics ``Results`` of the full image (obb as xywhr, detect as xyxy).

    Args:
        d (Detections): Merged detections, image pixels.
        fmt (str): ``detect`` or ``obb``.
        im (np.ndarray): The image, shape (H, W, 3), BGR.
        path (str): Its file.
        names (dict[int, str]): Class names of the model.

    Returns:
        (Results): With ``boxes`` (N, 6) ``xyxy conf cls`` or ``obb`` (N, 7) ``xywhr conf cls``.
    """
    coords = ops.xyxyxyxy2xywhr(d.boxes.reshape(-1, 4, 2)) if fmt == "obb" else d.boxes  # (N, 5 | 4)
    data = torch.as_tensor(np.concatenate([coords, d.scores[:, None], d.cls[:, None]], 1), dtype=torch.float32)
    return Results(im, path=path, names=names, **{RESULTS_FIELD[fmt]: data})


def predict_tiled(
    model,
    source: str | Path,
    *,
    crop: int = DEFAULTS.crop,
    stride: int | None = None,
    rates: tuple[float, ...] | list[float] = DEFAULTS.rates,
    conf: float = DEFAULT_CONF,
    iou: float | None = None,
    batch: int = DEFAULT_BATCH,
    imgsz: int | None = None,
    max_det: int = DEFAULT_MAX_DET,
    save: bool = False,
    save_txt: bool = False,
    project: str | Path = DEFAULT_PROJECT,
    name: str = DEFAULT_NAME,
    split: str = "val",
    **predict_args,
) -> TiledResults:
    """Predict on large images with a YOLO detect or obb model, tile by tile, merged into one ``Results`` per image.

    Args:
        model (str | Path | ultralytics.YOLO): Weights or a loaded model.
        source (str | Path): An image, a folder of images, an image-list ``.txt`` file, or a dataset YAML (the
            images of its ``split``).
        crop (int): Tile side, pixels (use the tiler's ``--crop`` of the training tiles).
        stride (int | None): Step between tiles, pixels (the tiler's ``--stride``); None: the tiler's default for
            ``crop`` (:func:`~..tiling.config.default_stride`, 800 for 1024).
        rates (tuple[float, ...] | list[float]): Scale factors (the tiler's ``--rates``).
        conf (float): Confidence threshold (Ultralytics' predict default 0.25).
        iou (float | None): NMS threshold of the merge; None: obb 0.1 (polygon IoU), detect 0.5 (box IoU).
        batch (int): Tiles per forward pass.
        imgsz (int | None): Inference size; None: ``crop``.
        max_det (int): Detections per tile.
        save (bool): Save the annotated images to ``project/name`` (incremented: ``predict2``...).
        save_txt (bool): Save ``labels/{stem}.txt`` with confidences, as Ultralytics' ``save_txt=True save_conf=True``.
        project (str | Path): Parent folder of the save folder.
        name (str): Save folder name.
        split (str): The split of a dataset YAML ``source`` to predict.
        **predict_args (Any): Passed to ``YOLO.predict`` per batch of tiles (device, half, per-tile ``iou``...).

    Returns:
        (TiledResults): A list of one ``Results`` per image predicted, in file order, for the full image
            (``.plot()``, ``.save_txt()``...). In a folder, an unreadable image (corrupt, truncated) fails alone: it
            is logged and named in ``.errors``, the others are predicted and saved; ``.ok`` is False.

    Raises:
        MergeError: Bad source, an unreadable image given as ``source`` itself, a model that is neither detect nor
            obb, or tiling options that ``tile_dota`` refuses too (see :func:`window_options`).

    Examples:
        >>> from ultralytics_fss.large_images import predict_tiled
        >>> results = predict_tiled("best.pt", "P0706.png", crop=1024, stride=800)  # doctest: +SKIP
        >>> results[0].plot()  # doctest: +SKIP
    """
    from ultralytics import YOLO

    cfg = window_options(crop, stride, rates)
    if (save or save_txt) and (why := unwritable(project)):
        raise MergeError(f"--project {project}: cannot write there: {why}")
    files = image_files(source, split)
    yolo = model if isinstance(model, YOLO) else YOLO(model)
    fmt = model_format(yolo)
    save_dir = increment_path(Path(project) / name) if save or save_txt else None
    args = dict(conf=conf, imgsz=imgsz or cfg.crop, max_det=max_det, **predict_args)
    one_file = Path(source).suffix.lower() in IMAGE_SUFFIXES  # a single image: its failure is the call's (MergeError)
    results = TiledResults()
    for path in TQDM(files, desc=f"{PREFIX}images", disable=len(files) < 2):
        try:
            im = read_image(path)
        except ImageError as e:
            if one_file:
                raise MergeError(str(e)) from None
            results.errors.append(str(e))  # names the file; the other images are still predicted
            LOGGER.error(f"{PREFIX}{e}")
            continue
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im  # models take 3 channels
        d = predict_image(yolo, im, fmt, cfg.crop, cfg.stride, cfg.rates, batch, iou, **args)
        r = to_results(d, fmt, im, str(path), yolo.names)
        if save_dir is not None:
            r.save_dir = str(save_dir)
            if save:
                save_dir.mkdir(parents=True, exist_ok=True)
                r.save(filename=str(save_dir / f"{path.stem}.jpg"))
            if save_txt:
                (save_dir / "labels" / f"{path.stem}.txt").unlink(missing_ok=True)  # save_txt appends
                r.save_txt(save_dir / "labels" / f"{path.stem}.txt", save_conf=True)
        results.append(r)
    n = sum(len(getattr(r, RESULTS_FIELD[fmt])) for r in results)
    failed = f", {len(results.errors)} failed (see above)" if results.errors else ""
    LOGGER.info(
        f"{PREFIX}{len(files)} image(s){failed}, {n} {fmt} detections with confidence >= {conf} (--conf)"
        + (f" -> {save_dir}" if save_dir else "")
    )
    return results
