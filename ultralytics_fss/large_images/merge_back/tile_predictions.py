"""Tile predictions in, full-image detections out: the tiler's manifest, YOLO txt prediction files, a model's run.

A :class:`TileIndex` knows, from ``DST/manifest.csv`` and the tiler's image records, where each tile of a split sits
in its image; :func:`read_prediction_dir` reads the files Ultralytics writes with ``save_txt=True save_conf=True``
(coordinates normalised to the tile); :func:`predict_tiles` runs a model over the split's tiles. Both return
detections already mapped to full-image pixels, per image, not yet merged (see :mod:`.nms`).
:func:`labels_as_predictions` turns tile labels into such a folder (the ground truth's round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MergeError
from ..files import list_files
from ..geometry import scale_factors
from ..tiling.output import TileOutput
from .nms import FORMAT_COLUMNS, Detections, tile_to_image

RESULTS_FIELD = {"detect": "boxes", "obb": "obb"}  # the attribute of an Ultralytics Results holding a format's boxes
BOX_FORMAT = {"segment": "detect"}  # prediction rows read as another format's boxes (polygons: their bounds)

# How far outside [0, 1] a normalised box centre may lie and still belong to its tile: float rounding of the
# 6 significant digits Ultralytics writes. A centre further out means the file belongs to another tile.
_CENTRE_SLACK = 1e-3


@dataclass(frozen=True)
class Tile:
    """Where one tile sits in its image.

    Attributes:
        name (str): Tile stem, ``{stem}__{rate}__{left}___{top}``.
        file (str): Tile file name with extension.
        image (str): Stem of its source image.
        crop (int): Tile side, pixels (tiles are padded to it, so normalised coordinates scale by it).
        offset (tuple[int, int]): ``(left, top)`` in the rescaled image, pixels.
        scale (tuple[float, float]): Per-axis factors from the original to the rescaled image.
    """

    name: str
    file: str
    image: str
    crop: int
    offset: tuple[int, int]
    scale: tuple[float, float]


@dataclass(frozen=True)
class TileIndex:
    """The tiles of one split of a tiler output, by name, and the size of each source image.

    Attributes:
        dst (Path): The tiler's output root.
        split (str): Split name.
        tiles (dict[str, Tile]): Tile stem to tile, in manifest order.
        sizes (dict[str, tuple[int, int]]): Image stem to ``(width, height)``, pixels, in manifest order.
        names (tuple[str, ...]): Category tokens in class order (DOTA's official names for the built-in lists).
        format (str): Label format(s) the tiler wrote: ``detect``, ``obb`` or ``both``.
    """

    dst: Path
    split: str
    tiles: dict[str, Tile]
    sizes: dict[str, tuple[int, int]]
    names: tuple[str, ...]
    format: str

    @classmethod
    def load(cls, dst: str | Path, split: str) -> TileIndex:
        """Read ``DST/manifest.csv`` (tiles), the image records (sizes) and ``options.json`` (class names).

        Raises:
            MergeError: Missing manifest or options, a split the manifest lacks, or an image without its record.
        """
        dst = Path(dst)
        out = TileOutput(dst)
        manifest, options = out.manifest_path, out.options_path
        if not manifest.is_file() or not options.is_file():
            missing = manifest if not manifest.is_file() else options
            raise MergeError(
                f"{missing} not found: DST must be an output folder of python -m ultralytics_fss.tile_dota or .tile"
            )
        opts = out.read_options()
        rows = out.read_manifest()
        splits = sorted({r["split"] for r in rows})
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise MergeError(f"{manifest}: no tiles of split {split!r} (it lists {splits}); choose one with --split")
        sizes, tiles = {}, {}
        for n, r in enumerate(rows, start=2):  # line 1 is the header
            image = Path(r["image"]).stem
            if image not in sizes:
                record = out.read_record(split, image)
                if record is None:
                    raise MergeError(f"{manifest}:{n}: image {image} has no record in {out.state} (tiling unfinished?)")
                sizes[image] = (record.width, record.height)
            scale = scale_factors(*sizes[image], float(r["rate"]))
            name = Path(r["tile"]).stem
            tiles[name] = Tile(name, r["tile"], image, int(r["crop"]), (int(r["left"]), int(r["top"])), scale)
        return cls(dst, split, tiles, sizes, tuple(opts["names"]), opts["format"])

    @property
    def output(self) -> TileOutput:
        """The tiler's output state in DST (manifest, records, source record)."""
        return TileOutput(self.dst)

    @property
    def crop(self) -> int:
        """The tile side of the split, pixels (the inference size that matches training on the tiles)."""
        return next(iter(self.tiles.values())).crop

    def images_dir(self) -> Path:
        """Folder of the split's tiles (the first dataset root; the tiles are the same under ``DST/obb``)."""
        return TileOutput.images_dir(self.dst, self.split)


def parse_prediction_file(path: Path, tile: Tile, fmt: str, nc: int) -> Detections:
    """Read one tile's YOLO prediction file (``save_txt=True save_conf=True``) into full-image pixels.

    Args:
        path (Path): Prediction file, rows ``cls cx cy w h conf`` (detect) or ``cls x1 y1 ... x4 y4 conf`` (obb),
            coordinates normalised to the tile; ``segment``: rows of a segment model, ``cls x1 y1 ... xn yn conf``
            (n >= 3), or of a detect model, each read as its bounding box.
        tile (Tile): The tile it belongs to.
        fmt (str): ``detect``, ``obb`` or ``segment``.
        nc (int): Number of classes.

    Returns:
        (Detections): The file's detections in full-image pixels (detect and segment boxes as xyxy).

    Raises:
        MergeError: A row with the wrong number of values, a class outside 0..nc-1, or a box whose centre lies
            outside its tile (file and line in the message).
    """
    layout = {
        "detect": "cls cx cy w h conf",
        "obb": "cls x1 y1 x2 y2 x3 y3 x4 y4 conf",
        "segment": "cls cx cy w h conf' or 'cls x1 y1 ... xn yn conf",
    }[fmt]
    rows, lines = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        try:
            row = [float(v) for v in values]
        except ValueError:
            row = []
        if fmt == "segment" and len(row) >= 8 and len(row) % 2 == 0:  # a polygon: its bounding box, cx cy w h
            xy = np.array(row[1:-1]).reshape(-1, 2)
            lo, hi = xy.min(0), xy.max(0)
            row = [row[0], *((lo + hi) / 2), *(hi - lo), row[-1]]
        if len(row) != FORMAT_COLUMNS[BOX_FORMAT.get(fmt, fmt)] + 2 or not np.isfinite(row).all():
            raise MergeError(f"{path}:{n}: expected '{layout}' ({fmt} predictions, save_conf=True), got {line!r}")
        rows.append(row)
        lines.append(n)
    fmt = BOX_FORMAT.get(fmt, fmt)
    if not rows:
        return Detections.empty(fmt)
    a = np.array(rows, dtype=np.float64)  # (N, width)
    cls, coords, conf = a[:, 0], a[:, 1:-1], a[:, -1]
    bad = np.flatnonzero((cls != np.round(cls)) | (cls < 0) | (cls >= nc))
    if len(bad):
        raise MergeError(f"{path}:{lines[bad[0]]}: class {a[bad[0], 0]:g} is not one of the {nc} classes 0..{nc - 1}")
    centre = coords[:, :2] if fmt == "detect" else coords.reshape(-1, 4, 2).mean(1)  # (N, 2)
    out = np.flatnonzero(((centre < -_CENTRE_SLACK) | (centre > 1 + _CENTRE_SLACK)).any(1))
    if len(out):
        k = out[0]
        raise MergeError(
            f"{path}:{lines[k]}: box centre ({centre[k, 0]:g}, {centre[k, 1]:g}) lies outside its tile {tile.file} "
            "(coordinates must be normalised to the tile, in [0, 1])"
        )
    px = coords * tile.crop  # (N, 4 | 8) tile pixels
    if fmt == "detect":  # cx cy w h -> xyxy
        px = np.concatenate([px[:, :2] - px[:, 2:] / 2, px[:, :2] + px[:, 2:] / 2], axis=1)
    return Detections(tile_to_image(px, tile.offset, tile.scale), conf, cls.astype(np.int64))


def read_prediction_dir(pred_dir: str | Path, index: TileIndex, fmt: str) -> dict[str, Detections]:
    """Read a folder of per-tile YOLO prediction files and map them to full-image pixels.

    Tiles without a file have no detections (Ultralytics writes no file for an empty prediction).

    Args:
        pred_dir (str | Path): Folder of ``{tile}.txt`` files (Ultralytics' ``runs/.../labels``).
        index (TileIndex): The split's tiles.
        fmt (str): ``detect``, ``obb`` or ``segment`` (polygon rows read as boxes: :func:`parse_prediction_file`).

    Returns:
        (dict[str, Detections]): Image stem to its detections (every image of the split, empty ones included), not
            merged: detections from overlapping tiles are all there.

    Raises:
        MergeError: A missing or empty folder, a file named after no tile of the split, or a bad file (see
            :func:`parse_prediction_file`).
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise MergeError(f"--pred-dir {pred_dir}: not a folder")
    files = list_files(pred_dir, (".txt",))
    if not files:
        raise MergeError(f"--pred-dir {pred_dir}: no .txt prediction files (expected one per tile, named like it)")
    unknown = sorted(set(files) - set(index.tiles))
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise MergeError(
            f"{files[unknown[0]]}: names no tile of split {index.split!r} in {index.output.manifest_path}{more} "
            "(prediction files must be named like the tiles, e.g. P0706__1__0___0.txt)"
        )
    parts: dict[str, list[Detections]] = {image: [] for image in index.sizes}
    for name, path in files.items():
        tile = index.tiles[name]
        parts[tile.image].append(parse_prediction_file(path, tile, fmt, len(index.names)))
    return {image: Detections.concat(p, BOX_FORMAT.get(fmt, fmt)) for image, p in parts.items()}


def labels_as_predictions(labels: str | Path, out: str | Path, conf: float = 1.0) -> int:
    """Write a folder of tile labels back as a ``--pred-dir`` of predictions: each row with confidence ``conf``.

    The ground truth's round trip (tiles -> predictions -> merge -> score) and the merge's benchmarks start here.
    Tiles without objects get no file, as Ultralytics writes none for an empty prediction.

    Args:
        labels (str | Path): Folder of YOLO tile labels (``DST/labels/{split}``, detect or obb rows).
        out (str | Path): Output folder (created).
        conf (float): Confidence appended to every row.

    Returns:
        (int): Prediction files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted(Path(labels).glob("*.txt")):
        rows = [f"{ln.strip()} {conf:g}\n" for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if rows:
            (out / f.name).write_text("".join(rows), encoding="utf-8")
            n += 1
    return n


def result_detections(result, fmt: str) -> Detections:
    """Detections of one Ultralytics ``Results`` in its image's pixels (detect: xyxy, obb: the four corners).

    Args:
        result (ultralytics.engine.results.Results): One image's prediction.
        fmt (str): ``detect`` or ``obb``.

    Returns:
        (Detections): Its detections, float64 / int64 numpy.
    """
    boxes = getattr(result, RESULTS_FIELD[fmt])
    if boxes is None or not len(boxes):
        return Detections.empty(fmt)
    boxes = boxes.cpu()
    xy = boxes.xyxyxyxy.reshape(-1, 8) if fmt == "obb" else boxes.xyxy  # (N, 8 | 4)
    return Detections(
        xy.numpy().astype(np.float64), boxes.conf.numpy().astype(np.float64), boxes.cls.numpy().astype(np.int64)
    )


def model_format(model) -> str:
    """``detect`` or ``obb``: the label format a YOLO model predicts.

    Raises:
        MergeError: For other tasks (segment, pose, classify).
    """
    if model.task not in FORMAT_COLUMNS:
        raise MergeError(f"--model {model.ckpt_path or model.model_name}: task {model.task!r}, expected detect or obb")
    return model.task


def predict_tiles(model, index: TileIndex, fmt: str, **predict_args) -> dict[str, Detections]:
    """Run a YOLO model over the split's tiles with Ultralytics' predictor (batched, streamed) and map the boxes.

    Args:
        model (ultralytics.YOLO): The model.
        index (TileIndex): The split's tiles.
        fmt (str): ``detect`` or ``obb`` (the model's task).
        **predict_args: Passed to ``model.predict`` (conf, iou, imgsz, batch, device, max_det...).

    Returns:
        (dict[str, Detections]): Image stem to its detections in full-image pixels, not merged.
    """
    folder = index.images_dir()
    sources = [str(folder / t.file) for t in index.tiles.values()]
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        raise MergeError(
            f"{missing[0]}: tile listed in {index.output.manifest_path} not found ({len(missing)} missing)"
        )
    parts: dict[str, list[Detections]] = {image: [] for image in index.sizes}
    by_file = {t.file: t for t in index.tiles.values()}
    for r in model.predict(sources, stream=True, verbose=False, **predict_args):  # streamed: bounded memory
        tile = by_file[Path(r.path).name]
        d = result_detections(r, fmt)
        parts[tile.image].append(Detections(tile_to_image(d.boxes, tile.offset, tile.scale), d.scores, d.cls))
    return {image: Detections.concat(p, fmt) for image, p in parts.items()}
