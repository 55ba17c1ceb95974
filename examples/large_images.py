"""Large images in Ultralytics' own YOLO format, end to end: generate large canvases with small objects, tile them,
check the round trip (the tiles' own labels merged back score AP 1.0 on the full images), train with FSS on the tiles,
then merge the model's tile predictions back and score COCO AP on the full images (pycocotools).

Run from the repository root (tiny settings in brackets are what the test uses)::

    python examples/large_images.py [--task detect|segment] [--images 12 --size 1600 --epochs 3]

The same with the command line::

    python -m ultralytics_fss.tile runs/large-images/data-detect/data.yaml runs/large-images/tiles-detect \
        --task detect --crop 640 --stride 512
    yolo detect train trainer=ultralytics_fss.FSSTrainer data=runs/large-images/tiles-detect/data.yaml \
        model=yolo11n.yaml imgsz=640
    python -m ultralytics_fss.merge_tiles runs/large-images/tiles-detect --model runs/detect/train/weights/best.pt \
        --split val --out runs/large-images/merged
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ultralytics_fss import FSSTrainer
from ultralytics_fss.large_images import merge_tiles, tile_yolo
from ultralytics_fss.large_images.merge_back.tile_predictions import labels_as_predictions
from ultralytics_fss.synthetic import make_dataset

REPO = Path(__file__).resolve().parents[1]
MODELS = {"detect": "yolo11n.yaml", "segment": "yolo11n-seg.yaml"}


def main(argv: list[str] | None = None) -> dict:
    """Generate, tile, round-trip, train, merge and score; return the full-image COCO metrics of the model (of the
    round trip with ``--epochs 0``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="detect", choices=tuple(MODELS), help="label format (segment: polygons)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "large-images", help="data, tiles and runs")
    p.add_argument("--images", type=int, default=12, help="large images to generate (80%% train, 20%% val)")
    p.add_argument("--size", type=int, default=1600, help="side of the generated images, pixels")
    p.add_argument("--crop", type=int, default=640, help="tile side (Ultralytics' imgsz 640)")
    p.add_argument("--stride", type=int, default=512, help="step between tiles")
    p.add_argument("--epochs", type=int, default=3, help="training epochs on the tiles (0: stop after the round trip)")
    p.add_argument("--device", default="cpu", help="training device")
    a = p.parse_args(argv)

    # 1. Large canvases with small objects (12-48 px on 1600 px), in Ultralytics' YOLO layout with a data.yaml.
    side = 12 / a.size, 48 / a.size
    data = make_dataset(a.out / f"data-{a.task}", images=a.images, imgsz=a.size, objects=(60, 120), size=side,
                        task=a.task)  # fmt: skip

    # 2. Tile: windows every --stride px, objects clipped with shapely and kept at IoF >= 0.7 (polygons: each piece).
    tiles = a.out / f"tiles-{a.task}"
    summary = tile_yolo(data, tiles, task=a.task, crop=a.crop, stride=a.stride, workers=1)
    print(f"{summary.images} images -> {summary.tiles} tiles, {summary.kept} object labels")

    # 3. Round trip: the val tiles' own labels, confidence 1, merged back and scored on the full images.
    with tempfile.TemporaryDirectory() as tmp:
        labels_as_predictions(tiles / "labels" / "val", tmp)
        truth = merge_tiles(tiles, a.out / "round-trip", pred_dir=tmp, split="val")
    print(f"round trip: COCO AP {truth.metrics['AP']:.3f}, AP50 {truth.metrics['AP50']:.3f} on the full images")
    if a.epochs == 0:
        return truth.metrics

    # 4. Train with FSS on the tiles, at the tile side.
    trainer = FSSTrainer(overrides=dict(model=MODELS[a.task], data=str(tiles / "data.yaml"), epochs=a.epochs,
                                        imgsz=a.crop, batch=8, workers=0, device=a.device, plots=False,
                                        project=str(a.out), name=f"train-{a.task}", exist_ok=True))  # fmt: skip
    trainer.train()
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)

    # 5. Back to the full images: predict the val tiles, merge (class-wise NMS), COCO AP on the full images.
    merged = merge_tiles(tiles, a.out / f"merged-{a.task}", model=best, split="val", device=a.device)
    print(f"model: COCO AP {merged.metrics['AP']:.3f}, AP50 {merged.metrics['AP50']:.3f}, APs "
          f"{merged.metrics['APs']:.3f} on the {merged.images} full val images -> {merged.out}")  # fmt: skip
    return merged.metrics


if __name__ == "__main__":
    main()
