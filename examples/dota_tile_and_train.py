"""DOTA end to end: tile the DOTA samples in tests/data as oriented boxes, train yolo11n-obb with FSS assignment a few
epochs, predict on a tile and save the picture, merge the tile predictions back to the full images and score them with
DOTA's metric (`--format detect`: axis-aligned boxes and yolo11n).

Run from the repository root (tiny settings in brackets are what the test uses)::

    python examples/dota_tile_and_train.py [tests/data/dota-examples] [--crop 256 --imgsz 64 --epochs 1]

The same with the command line::

    python -m ultralytics_fss.tile_dota tests/data/dota-examples runs/dota-example/tiles --format obb
    yolo obb train trainer=ultralytics_fss.FSSTrainer data=runs/dota-example/tiles/data.yaml model=yolo11n-obb.yaml
    python -m ultralytics_fss.merge_dota runs/dota-example/tiles --model runs/dota-example/train/weights/best.pt \
        --split train --out runs/dota-example/merged
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ultralytics import YOLO

from ultralytics_fss import FSSTrainer
from ultralytics_fss.large_images import merge_dota, tile_dota

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "tests" / "data" / "dota-examples"  # real DOTA-v1.0 samples (academic use only, see its README)


def main(argv: list[str] | None = None) -> Path:
    """Tile, train, predict; return the path of the trained weights."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC, help="DOTA source (default: the samples)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "dota-example", help="tiles and training runs")
    p.add_argument("--crop", type=int, default=1024, help="tile side (the paper's 1024)")
    p.add_argument("--stride", type=int, help="step between tiles (default: the tiler's, crop * 800 / 1024)")
    p.add_argument("--imgsz", type=int, default=640, help="training image size")
    p.add_argument("--epochs", type=int, default=3, help="training epochs")
    p.add_argument("--device", default="cpu", help="training device")
    p.add_argument("--format", default="obb", choices=("obb", "detect"), help="oriented or axis-aligned boxes")
    a = p.parse_args(argv)

    # 1. Tile: two images, five label files without images (reported, not fatal).
    tiles = a.out / "tiles"
    summary = tile_dota(a.src, tiles, crop=a.crop, stride=a.stride, workers=1, format=a.format)
    print(f"{summary.tiles} tiles, {summary.kept} object labels, {len(summary.warnings)} warnings")

    # 2. Train with FSS label assignment (val = train here: the examples have a single split).
    trainer = FSSTrainer(
        overrides=dict(
            model="yolo11n-obb.yaml" if a.format == "obb" else "yolo11n.yaml", data=str(tiles / "data.yaml"),
            epochs=a.epochs, imgsz=a.imgsz, batch=4,
            workers=0, device=a.device, plots=False, project=str(a.out), name="train", exist_ok=True,
        )
    )  # fmt: skip
    trainer.train()
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)

    # 3. Predict on one tile with the trained weights, and save the picture.
    tile = sorted((tiles / "images" / "train").iterdir())[0]
    result = YOLO(best).predict(tile, imgsz=a.imgsz, device=a.device, conf=0.001, verbose=False)[0]
    boxes = result.obb if a.format == "obb" else result.boxes
    picture = a.out / f"predict_{tile.stem}.jpg"
    result.save(filename=str(picture))
    print(f"predicted {len(boxes)} {a.format} boxes on {tile.name} with {best}, saved {picture}")

    # 4. Back to full images: merge the tile predictions, write DOTA's Task files and score them with DOTA's metric.
    merged = merge_dota(tiles, a.out / "merged", model=best, split="train", imgsz=a.imgsz, device=a.device)
    print(f"DOTA {merged.task} mAP on the full images: {merged.metrics['mAP']:.4f} -> {merged.out}")
    return best


if __name__ == "__main__":
    main()
