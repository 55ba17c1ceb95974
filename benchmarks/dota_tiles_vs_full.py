"""Benchmark: AP of small FSS-trained models on tiles (Ultralytics' val, DOTA's metric) and on full images (DOTA's).

Tiles the shipped DOTA samples (two images, 600 objects) at crop 256, stride 200 as detect and obb labels
(``tile_dota(format="both")``), trains ``yolo11n.yaml`` (detect) and ``yolo11n-obb.yaml`` (obb) from scratch with
``FSSTrainer`` on the tiles, then scores each model three ways on the same (training) split:

1. Ultralytics' own ``model.val`` mAP50 on the tiles (box IoU for detect, probiou for obb);
2. DOTA's VOC07 AP50 (``ultralytics_fss.large_images.merge_back.metric``) on the tiles, each tile's labels as its
   ground truth (an object cut by a tile edge counts once per tile, clipped; no difficult flags);
3. DOTA's Task2 / Task1 metric on the two full images after ``merge_dota --model`` (what DOTA reports).

It is not a benchmark of accuracy (two images, trained and scored on the same split): it shows how the three numbers
relate. Accuracy figures are deterministic on CPU for a given torch / Ultralytics version (``deterministic=True``,
seed 0, ``workers=0``).

Examples:
    python benchmarks/dota_tiles_vs_full.py                  # the docs' table: two trainings of 120 epochs on CPU
    python benchmarks/dota_tiles_vs_full.py --epochs 5 --dir runs/tiles-vs-full   # a short run, keeping the weights
    python benchmarks/dota_tiles_vs_full.py --detect-weights d.pt --obb-weights o.pt   # score models, no training
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "tests" / "data" / "dota-examples"
MODELS = {"detect": "yolo11n.yaml", "obb": "yolo11n-obb.yaml"}
SPLIT = "train"  # the samples have one split; the tiler's data.yaml points val at it too


def fail(message: str) -> None:
    """Bad arguments: one line on stderr, exit status 2."""
    print(f"dota_tiles_vs_full: {message}", file=sys.stderr)
    sys.exit(2)


def tile_ground_truth(label_file: Path, crop: int, fmt: str):
    """A tile's YOLO labels as DOTA ground truth in tile pixels (corners; no difficult flags).

    Args:
        label_file (Path): The tile's label file (``cls cx cy w h`` or ``cls x1 y1 ... x4 y4``, normalised); missing:
            no objects.
        crop (int): Tile side, pixels (tiles are padded to it).
        fmt (str): ``detect`` or ``obb``.

    Returns:
        (GroundTruth): The tile's objects.
    """
    from ultralytics_fss.large_images.merge_back.metric import GroundTruth

    values = label_file.read_text().split() if label_file.is_file() else []
    rows = np.array(values, float).reshape(-1, 5 if fmt == "detect" else 9)  # (M, 5 | 9)
    px = rows[:, 1:] * crop  # (M, 4 | 8)
    if fmt == "detect":  # cx cy w h -> the corners of the box
        x0, y0 = px[:, 0] - px[:, 2] / 2, px[:, 1] - px[:, 3] / 2
        x1, y1 = px[:, 0] + px[:, 2] / 2, px[:, 1] + px[:, 3] / 2
        px = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], axis=1)
    return GroundTruth(px.reshape(-1, 8), rows[:, 0].astype(np.int64), np.zeros(len(rows), bool))


def dota_ap_on_tiles(model, root: Path, fmt: str, crop: int, **predict_args) -> tuple[dict, dict, dict]:
    """DOTA's VOC07 metric on the tiles, each tile an image with its own labels as ground truth.

    Args:
        model (ultralytics.YOLO): The trained model.
        root (Path): The dataset root of ``fmt`` (``images/{SPLIT}``, ``labels/{SPLIT}``).
        fmt (str): ``detect`` (Task2) or ``obb`` (Task1).
        crop (int): Tile side, pixels.
        **predict_args: Passed to ``model.predict`` (imgsz, batch, device).

    Returns:
        metrics (dict): As :func:`ultralytics_fss.large_images.merge_back.metric.evaluate_task_files`.
        dets (dict[str, Detections]): Each tile's predictions, tile pixels.
        gt (dict[str, GroundTruth]): Each tile's objects, tile pixels.
    """
    from ultralytics_fss.large_images.merge_back.merge_dota import DEFAULT_CONF, DEFAULT_MAX_DET, task_lines
    from ultralytics_fss.large_images.merge_back.metric import TASKS, evaluate_task_files, task_file
    from ultralytics_fss.large_images.merge_back.tile_predictions import TileIndex, result_detections

    names = TileIndex.load(root if fmt == "detect" else root.parent, SPLIT).names
    tiles = sorted((root / "images" / SPLIT).iterdir())
    args = dict(conf=DEFAULT_CONF, max_det=DEFAULT_MAX_DET, verbose=False, stream=True, **predict_args)
    dets = {Path(r.path).stem: result_detections(r, fmt) for r in model.predict([str(t) for t in tiles], **args)}
    gt = {t.stem: tile_ground_truth(root / "labels" / SPLIT / f"{t.stem}.txt", crop, fmt) for t in tiles}
    task = TASKS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(names):
            task_file(Path(tmp), task, name).write_text(task_lines(dets, c), encoding="utf-8")
        return evaluate_task_files(Path(tmp), task, names, gt), dets, gt


def matched_shares(dets: dict, gt: dict, c: int) -> tuple[int, float, float]:
    """How many of the tiles' class-``c`` objects have a same-class prediction at probiou > 0.5 (the overlap of
    Ultralytics' OBB validation) and at polygon IoU > 0.5 (DOTA's): the highest recall each metric can reach.

    Args:
        dets (dict[str, Detections]): Predictions per tile (corners, tile pixels).
        gt (dict[str, GroundTruth]): Objects per tile (corners, tile pixels).
        c (int): Class index.

    Returns:
        objects (int): Class-``c`` objects in the tiles.
        probiou (float): Share with a prediction at probiou > 0.5.
        polygon (float): Share with a prediction at polygon IoU > 0.5.
    """
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    from ultralytics_fss.large_images.geometry import make_polygons
    from ultralytics_fss.large_images.merge_back.nms import polygon_overlaps

    n = by_probiou = by_polygon = 0
    for stem, g in gt.items():
        objects, predicted = g.polys[g.cls == c], dets[stem].boxes[dets[stem].cls == c]  # (G, 8), (D, 8)
        n += len(objects)
        if not len(objects) or not len(predicted):
            continue
        prob = np.asarray(batch_probiou(xyxyxyxy2xywhr(objects), xyxyxyxy2xywhr(predicted)))  # (G, D)
        by_probiou += int((prob > 0.5).any(1).sum())
        i, _, iou = polygon_overlaps(make_polygons(objects)[0], make_polygons(predicted)[0])
        by_polygon += len(np.unique(i[iou > 0.5]))
    return n, by_probiou / max(n, 1), by_polygon / max(n, 1)


def train(fmt: str, data: Path, project: Path, a: argparse.Namespace) -> Path:
    """Train ``MODELS[fmt]`` from scratch with FSSTrainer on the tiles; return the weights to score (the last epoch's:
    without per-epoch validation, ``best.pt`` is the model after the last epoch)."""
    from ultralytics_fss import FSSTrainer

    overrides = {
        "model": MODELS[fmt], "data": str(data), "epochs": a.epochs, "imgsz": a.imgsz, "batch": a.batch,
        "workers": 0, "deterministic": True, "seed": a.seed, "device": a.device, "plots": False,
        "project": str(project), "name": fmt, "exist_ok": True,
        "val": False,  # validated once, after the last epoch: the weights scored are the last ones
    }  # fmt: skip
    trainer = FSSTrainer(overrides=overrides)
    trainer.train()
    return Path(trainer.best if Path(trainer.best).is_file() else trainer.last)


def measure(fmt: str, root: Path, weights: Path, merged: Path, a: argparse.Namespace) -> tuple[list, list[str]]:
    """The three measurements of one model.

    Returns:
        rows (list[tuple[str, str, dict]]): ``(measured on, metric, {"mAP": float, "AP": {class: float}})``.
        notes (list[str]): For obb, per class: the share of tile objects with a prediction at probiou > 0.5 and at
            polygon IoU > 0.5.
    """
    from ultralytics import YOLO

    from ultralytics_fss.large_images import merge_dota
    from ultralytics_fss.large_images.merge_back.tile_predictions import TileIndex

    names = TileIndex.load(root if fmt == "detect" else root.parent, SPLIT).names  # DOTA's official class names
    model = YOLO(weights)
    tiles_n = len(list((root / "images" / SPLIT).iterdir()))
    val = model.val(data=str(root / "data.yaml"), split="val", imgsz=a.imgsz, batch=a.batch, device=a.device,
                    workers=0, plots=False, verbose=False)  # fmt: skip
    ul = {"mAP": float(val.box.map50), "AP": {names[int(c)]: float(v) for c, v in zip(val.box.ap_class_index,
                                                                                       val.box.ap50)}}  # fmt: skip
    predict = {"imgsz": a.imgsz, "batch": a.batch, "device": a.device}
    tiles, dets, gt = dota_ap_on_tiles(model, root, fmt, a.crop, **predict)
    notes = []
    if fmt == "obb":
        for c, name in enumerate(names):
            n, prob, poly = matched_shares(dets, gt, c)
            if n:
                notes.append(f"obb, {name}: of the {n} in tiles, {prob:.0%} have a prediction (conf >= 0.001) at "
                             f"probiou > 0.5, {poly:.0%} at polygon IoU > 0.5")  # fmt: skip
    full = merge_dota(root, merged, model=weights, split=SPLIT, **predict)
    iou = "box IoU" if fmt == "detect" else "probiou"
    polygon = "" if fmt == "detect" else " (polygon IoU)"
    task = "Task2" if fmt == "detect" else "Task1"
    return [
        (f"{tiles_n} tiles", f"Ultralytics' `val` mAP50 ({iou})", ul),
        (f"{tiles_n} tiles", f"DOTA's VOC07 AP50{polygon}, tile labels as ground truth", tiles),
        (f"{full.images} full images", f"DOTA {task}, `merge_dota --model`", full.metrics),
    ], notes


def table(rows: list[tuple[str, str, str, dict]], classes: list[str]) -> str:
    """Markdown table: model, measured on, metric, mAP, AP per class (``(in no tile)`` for a class without objects)."""
    out = ["| model | measured on | metric | mAP | " + " | ".join(classes) + " |"]
    out.append("|---" * (4 + len(classes)) + "|")
    for model, on, metric, m in rows:
        aps = [f"{m['AP'][c]:.3f}" if c in m["AP"] else "(in no tile)" for c in classes]
        out.append(f"| {model} | {on} | {metric} | {m['mAP']:.3f} | " + " | ".join(aps) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Tile, train both models, measure, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="DOTA source (default: the shipped samples)")
    p.add_argument("--epochs", type=int, default=120, help="training epochs of each model (default: 120)")
    p.add_argument("--crop", type=int, default=256, help="tile side (default: 256)")
    p.add_argument("--stride", type=int, default=200, help="step between tiles (default: 200)")
    p.add_argument("--imgsz", type=int, default=256, help="training and inference size (default: 256)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--device", default="cpu", help="device (default: cpu)")
    p.add_argument("--formats", nargs="+", default=["detect", "obb"], choices=list(MODELS), help="models to train")
    p.add_argument("--dir", type=Path, help="working folder: tiles, runs, merged files (default: a temporary one)")
    p.add_argument("--detect-weights", type=Path, help="score these detect weights instead of training (same tiles)")
    p.add_argument("--obb-weights", type=Path, help="score these obb weights instead of training (same tiles)")
    a = p.parse_args(argv)
    given = {"detect": a.detect_weights, "obb": a.obb_weights}
    for fmt, w in given.items():
        if w is not None and not w.is_file():
            fail(f"--{fmt}-weights {w}: no such file")
    if not (a.src / "images").is_dir():
        fail(f"--src {a.src}: not a DOTA folder (images/, labelTxt/)")
    if min(a.epochs, a.crop, a.stride, a.imgsz, a.batch) < 1 or a.stride > a.crop:
        fail("--epochs, --crop, --stride, --imgsz and --batch must be positive, with --stride <= --crop")

    from ultralytics_fss.large_images import tile_dota

    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        tiles = work / "tiles"
        summary = tile_dota(a.src, tiles, crop=a.crop, stride=a.stride, format="both", workers=1)
        rows, notes = [], []
        for fmt in a.formats:
            root = tiles if fmt == "detect" else tiles / "obb"
            weights = given[fmt] or train(fmt, root / "data.yaml", work / "runs", a)
            measured, said = measure(fmt, root, weights, work / f"merged-{fmt}", a)
            rows += [(fmt, *r) for r in measured]
            notes += said

    full = next(m for _, on, _, m in rows if "full" in on)
    classes = sorted(full["AP"], key=lambda c: -full["objects"][c])  # the classes of the full images, most first
    trained = ", ".join(MODELS[f] for f in a.formats if given[f] is None)
    models = [f"{trained} trained from scratch with FSSTrainer, {a.epochs} epochs, seed {a.seed}"] if trained else []
    models += [f"{f} weights {given[f]}" for f in a.formats if given[f] is not None]
    print(f"\n{summary.tiles} tiles (crop {a.crop}, stride {a.stride}) of {a.src}; {'; '.join(models)}; imgsz "
          f"{a.imgsz}, batch {a.batch}, device {a.device}\n")  # fmt: skip
    print(table(rows, classes))
    if notes:
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
