"""A model trained on tiles, scored the way the FSS paper scores DOTA: on the full images.

`tiled_root` tells whether a dataset YAML is a tiler's output; `check_full_images` checks, before anything trains,
that its split can be merged back and scored; `score_full_images` predicts the split's tiles with a model, merges
them back with `merge_dota` (DOTA sources) or `merge_tiles` (any other Ultralytics dataset), the one merge of each,
and returns the full-image metrics under names that say so:

- DOTA sources: DOTA's metric, `Task1` for oriented boxes and `Task2` for horizontal ones (`full mAP50`, the devkit's
  VOC07 mAP at IoU > 0.5), plus `full mAP50-95`, the mean of the same metric over COCO's ten IoU thresholds, of the
  same detections (the Task files `merge_dota` wrote);
- other sources: COCO's twelve numbers on the full images for detect and segment tiles (`full AP`, `full AP50`, ...;
  pycocotools, boxes), DOTA's metric for oriented boxes (`full mAP50`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MergeError
from ..files import IMAGE_SUFFIXES, list_files
from ..tiling.output import STATE_DIR, TileOutput
from ..yolo_labels import label_path
from .merge_dota import merge_dota, split_ground_truth
from .merge_tiles import merge_tiles, source_images
from .metric import map50_95
from .tile_predictions import TileIndex

FULL = "full "  # prefix of the full-image metrics' names
MODEL_FORMATS = {"detect": "detect", "segment": "detect", "obb": "obb"}  # a model task's boxes, as the merge reads them


def tiled_root(data: str | Path) -> Path | None:
    """The tiler's output root a dataset YAML belongs to (`DST/data.yaml`, or `DST/obb/data.yaml` of `--format
    both`), recognised by the tiler's state folder `DST/.tile_dota`; None for any other dataset."""
    path = Path(data)
    if path.suffix.lower() not in {".yaml", ".yml"} or not path.is_file():
        return None
    dst, _ = TileOutput.dst_of(path.parent)
    return dst if (dst / STATE_DIR).is_dir() else None


def check_full_images(dst: Path, split: str, task: str) -> str:
    """Check, before anything trains, that a `task` model's predictions on the split's tiles can be merged back and
    scored on the full images.

    Args:
        dst (Path): The tiler's output root (`tiled_root`).
        split (str): The split scored (`val`).
        task (str): The model's task: `detect`, `segment` or `obb`.

    Returns:
        (str): What scores it: `dota` (DOTA's metric, a DOTA source) or `coco` / `dota` for other sources (COCO's for
            detect and segment tiles, DOTA's for oriented boxes).

    Raises:
        MergeError: One line naming the file: the manifest or the tiler's records missing, a split without tiles,
            source images that are gone, a source split without labels, a task the tiles or the metric cannot score.
    """
    index = TileIndex.load(dst, split)  # the manifest, the options and every image's record, or a MergeError
    if task not in MODEL_FORMATS:
        raise MergeError(f"{dst}: a {task} model's predictions cannot be merged back (detect, segment or obb)")
    if task == "obb" and index.format not in {"obb", "both"}:
        raise MergeError(f"{dst}: {index.format} tiles have no oriented boxes to score an obb model against")
    source = index.output.read_source() or {}
    if source.get("data") is not None:  # an Ultralytics dataset tiled with `tile`
        images = source_images(Path(source["data"]), split, index)  # still listed by the dataset YAML
        gone = [im.path for im in images.values() if not im.path.is_file()]
        if gone:
            raise MergeError(f"{gone[0]}: a source image of split {split!r} is gone ({len(gone)} in all)")
        if not any(label_path(im.path).is_file() for im in images.values()):
            raise MergeError(f"{source['data']}: split {split!r} has no label files to score the full images with")
        return "dota" if task == "obb" else "coco"
    split_source = (source.get("splits") or {}).get(split) or {}
    folder = Path(split_source.get("images") or "")
    found = list_files(folder, IMAGE_SUFFIXES) if folder.is_dir() else {}
    gone = [stem for stem in index.sizes if stem not in found]
    if gone:
        raise MergeError(f"{folder}: the source images {gone[:5]} of split {split!r} are gone ({len(gone)} in all)")
    labels = split_source.get("labels")
    if not labels or not Path(labels).is_dir():
        raise MergeError(f"{dst / STATE_DIR / 'source.json'}: split {split!r} of the DOTA source has no labels to "
                         "score the full images with")  # fmt: skip
    return "dota"


def score_full_images(dst: Path, out: Path, model: Any = None, split: str = "val", pred_dir: Path | None = None,
                      **predict_args: Any) -> dict[str, float]:  # fmt: skip
    """Predict the split's tiles with `model` (or read them from `pred_dir`), merge them back and score the full
    images (see the module docstring); the merged predictions and the metric files are written into `out`.

    Args:
        dst (Path): The tiler's output root.
        out (Path): Output folder for the merge (`merge_dota`'s Task files, or `merge_tiles`' labels and JSON).
        model (Any): Weights or a loaded `YOLO` of the tiles' task.
        split (str): Split to score.
        pred_dir (Path, optional): Instead of `model`, a folder of per-tile YOLO txt predictions.
        **predict_args (Any): Passed to the merge's prediction (`device`, `batch`, `imgsz`...).

    Returns:
        (dict[str, float]): The full-image metrics by name (`full mAP50`, `full mAP50-95`, or `full AP`, ...); {}
            when the split has no labels.
    """
    source = TileOutput(dst).read_source() or {}
    merge = merge_tiles if source.get("data") is not None else merge_dota
    r = merge(dst, out, model=model, pred_dir=pred_dir, split=split, **predict_args)
    if r.metrics is None:
        return {}
    if merge is merge_tiles:
        if r.format == "obb":
            return {f"{FULL}mAP50": r.metrics["mAP"]}
        return {f"{FULL}{k}": float(v) for k, v in r.metrics.items()}
    index = TileIndex.load(dst, split)
    ap50_95 = map50_95(out, r.task, index.names, split_ground_truth(index, None))  # the Task files merge_dota wrote
    return {f"{FULL}mAP50": r.metrics["mAP"], f"{FULL}mAP50-95": ap50_95}
