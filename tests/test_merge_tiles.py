"""`merge_tiles`: tile predictions of a YOLO-format source back to full images, scored on them (issue 23).

The round trips write each tile's own labels back as predictions with confidence 1 and merge them: every object that
fits whole in some tile comes back exactly, so COCO AP (pycocotools) and DOTA's metric are 1.0; an object too large for
any tile at rate 1 is lost there and recovered by the rates (0.5, 1.0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import untrained_model

from ultralytics_fss.large_images import MergeError, merge_tiles, predict_tiled, tile_yolo
from ultralytics_fss.large_images.merge_back.tile_predictions import labels_as_predictions
from ultralytics_fss.evidence.coco import COCO_KEYS

CROP, STRIDE = 256, 200  # windows of a 600 px side: [0, 256], [200, 456], [344, 600]
SIDE = 600
BIG = (120, 120, 480, 480)  # xyxy: at rate 1 at most (256/360)^2 = 0.51 of it in any tile (< IoF 0.7); whole at 0.5


def small_boxes(rng: np.random.Generator, n: int, keep_out=None) -> list[tuple[float, ...]]:
    """`n` non-overlapping boxes of 12-50 px (each fits whole in some 256 px window: the windows overlap by 56 px),
    some on window edges (x or y = 200..256) and image borders, none inside `keep_out` (xyxy)."""
    boxes = []
    while len(boxes) < n:
        w, h = rng.uniform(12, 50, 2)
        x1, y1 = rng.uniform(0, SIDE - w), rng.uniform(0, SIDE - h)
        if len(boxes) % 4 == 1:
            x1 = rng.uniform(200 - w / 2, 256 - w / 2)  # across the edge between the first two windows
        if len(boxes) % 4 == 2:
            x1 = 0.0 if rng.random() < 0.5 else SIDE - w  # on the image border
        b = (x1, y1, x1 + w, y1 + h)
        clear = all(b[2] < o[0] - 2 or o[2] < b[0] - 2 or b[3] < o[1] - 2 or o[3] < b[1] - 2 for o in boxes)
        if keep_out is not None:
            k = keep_out
            clear &= b[2] < k[0] or k[2] < b[0] or b[3] < k[1] or k[3] < b[1]
        if clear:
            boxes.append(b)
    return boxes


def corners(box, task: str, rng: np.random.Generator) -> np.ndarray:
    """The object's outline inside its box: the box (detect), a rotated rectangle (obb), a hexagon (segment)."""
    x1, y1, x2, y2 = box
    c, r = np.array([(x1 + x2) / 2, (y1 + y2) / 2]), np.array([(x2 - x1) / 2, (y2 - y1) / 2])
    if task == "detect":
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    if task == "obb":
        a = rng.uniform(0, np.pi / 2)
        u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        s = min(r) / 1.75  # half sides 1.4 s and s: the rotated rectangle reaches at most 1.72 s from the centre
        return np.array([c + s * (p * u + q * v) for p, q in ((-1.4, -1), (1.4, -1), (1.4, 1), (-1.4, 1))])
    t = np.linspace(0, 2 * np.pi, 7)[:-1]
    return c + r * np.stack([np.cos(t), np.sin(t)], 1)


def write_dataset(root, task: str, big: bool = False, seed: int = 0):
    """A YOLO dataset of four 600 px images (train 2, val 2) with small objects; `big`: a 360 px object in val."""
    rng = np.random.default_rng(seed)
    for i, split in enumerate(["train", "train", "val", "val"]):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        im = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / split / f"im{i}.png"), im)
        with_big = big and i == 3
        boxes = small_boxes(rng, 12, keep_out=BIG if with_big else None) + ([BIG] if with_big else [])
        rows = []
        for k, b in enumerate(boxes):
            if task == "detect":
                x1, y1, x2, y2 = b
                values = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            else:
                values = corners(b, task, rng).ravel().tolist()
            rows.append(f"{k % 3} " + " ".join(f"{v / SIDE:.6f}" for v in values))
        (root / "labels" / split / f"im{i}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                    "names": {0: "a", 1: "b", 2: "c"}}))  # fmt: skip
    return data


def round_trip(data, tmp_path, task: str, rates=(1.0,), name="rt"):
    """Tile, write the val tiles' labels back as predictions with confidence 1, merge; the merge's result."""
    dst = tmp_path / f"{name}-tiles"
    tile_yolo(data, dst, task=task, crop=CROP, stride=STRIDE, rates=rates, workers=1)
    pred = tmp_path / f"{name}-pred"
    labels_as_predictions(dst / "labels" / "val", pred)
    return merge_tiles(dst, tmp_path / f"{name}-out", pred_dir=pred, split="val")


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_round_trip_scores_coco_ap_1(tmp_path, task, caplog):
    """Every object fits whole in some tile at rate 1: the merged tile labels are the source's boxes (AP 1.0), written
    as Ultralytics txt files on the full images and as COCO results that the twelve numbers were computed from; the
    closing line, after the metrics, names the confidence threshold."""
    with caplog.at_level("INFO", logger="ultralytics"):
        r = round_trip(write_dataset(tmp_path / "src", task), tmp_path, task)
    closing = caplog.records[-1].getMessage()
    assert "24 detect detections with confidence >= 0.001, after class-wise NMS at IoU 0.5 -> " in closing, closing
    out = r.out
    assert r.format == "detect" and r.images == 2 and r.detections == 24
    metrics = json.loads((out / "coco_metrics.json").read_text())
    assert list(metrics) == list(COCO_KEYS) and metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == 1.0
    rows = json.loads((out / "predictions.json").read_text())
    assert len(rows) == 24 and {r["file_name"] for r in rows} == {"im2.png", "im3.png"}
    assert {r["image_id"] for r in rows} == {1, 2}  # the ids `evaluate` gives the split's images, in file order
    # The txt files are the same boxes, normalised to the full image, with their confidence.
    got = np.array([[float(v) for v in ln.split()] for ln in (out / "labels" / "im3.txt").read_text().splitlines()])
    truth = np.array([[float(v) for v in ln.split()] for ln in (tmp_path / "src" / "labels" / "val" /
                                                                 "im3.txt").read_text().splitlines()])  # fmt: skip
    if task == "segment":  # a polygon's bounding box
        xy = truth[:, 1:].reshape(len(truth), -1, 2)
        lo, hi = xy.min(1), xy.max(1)
        truth = np.concatenate([truth[:, :1], (lo + hi) / 2, hi - lo], 1)
    assert got.shape == (12, 6) and (got[:, 5] == 1).all()
    np.testing.assert_allclose(sorted(got[:, :5].tolist()), sorted(truth.tolist()), atol=1e-5)


def test_object_too_large_for_a_tile_is_recovered_by_two_rates(tmp_path):
    """A 360 px object keeps at most 51% of its area in any 256 px tile at rate 1 (IoF rule 0.7: in no tile), so the
    rate-1 round trip misses it; at rates (0.5, 1.0) it fits a rate-0.5 tile whole and AP is 1.0 again."""
    data = write_dataset(tmp_path / "src", "detect", big=True)
    one = round_trip(data, tmp_path, "detect", rates=(1.0,), name="r1")
    assert one.detections == 24 and one.metrics["AR100"] < 1 and one.metrics["APl"] == 0  # the large object: missed
    two = round_trip(data, tmp_path, "detect", rates=(0.5, 1.0), name="r2")
    assert two.detections == 25 and two.metrics["AP"] == pytest.approx(1.0) and two.metrics["APl"] == pytest.approx(1.0)


def test_obb_round_trip_scores_dota_map_1(tmp_path):
    """Oriented boxes merge with polygon NMS and are scored with DOTA's metric on the full images."""
    r = round_trip(write_dataset(tmp_path / "src", "obb"), tmp_path, "obb")
    assert r.format == "obb" and r.detections == 24
    report = json.loads((r.out / "dota_eval.json").read_text())
    assert report["mAP"] == pytest.approx(1.0) and set(report["AP"]) == {"a", "b", "c"}
    rows = json.loads((r.out / "predictions.json").read_text())
    assert len(rows) == 24 and all(len(row["poly"]) == 8 and len(row["bbox"]) == 4 for row in rows)
    assert len((r.out / "labels" / "im2.txt").read_text().splitlines()[0].split()) == 10  # cls, 4 corners, conf


def test_model_merge_and_bad_input(tmp_path, capsys):
    """A model's run over the tiles is merged and scored (an untrained model: the claims are about the path); bad
    input is one MergeError naming the file and line, and OUT keeps what an earlier run wrote."""
    from ultralytics_fss.merge_tiles import main

    data = write_dataset(tmp_path / "src", "detect")
    dst = tmp_path / "tiles"
    tile_yolo(data, dst, task="detect", crop=CROP, stride=STRIDE, workers=1)
    weights = untrained_model(tmp_path, "yolo11n.yaml", ["a", "b", "c"])
    r = merge_tiles(dst, tmp_path / "out", model=weights, conf=1e-6, max_det=5, device="cpu")
    assert list(r.metrics) == list(COCO_KEYS) and (tmp_path / "out" / "predictions.json").is_file()
    # Tiled prediction takes the dataset's images (a dataset YAML's split, or an image-list file): the same windows
    # and merge, so the same full-image detections as tiling, predicting the tiles and merge_tiles.
    listed = tmp_path / "val.txt"
    listed.write_text("./src/images/val/im2.png\n./src/images/val/im3.png\n")
    for source in (data, listed):
        results = predict_tiled(weights, source, crop=CROP, stride=STRIDE, conf=1e-6, max_det=5, device="cpu")
        assert [Path(x.path).name for x in results] == ["im2.png", "im3.png"]
        for x in results:
            got = np.loadtxt(tmp_path / "out" / "labels" / f"{Path(x.path).stem}.txt", ndmin=2)
            b = x.boxes
            np.testing.assert_allclose(got[:, 1:5], b.xywhn.numpy(), atol=1e-5)
            np.testing.assert_allclose(got[:, 5], b.conf.numpy(), rtol=1e-4)
    with pytest.raises(MergeError, match="no 'test' split"):
        predict_tiled(weights, data, split="test")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    pred = tmp_path / "pred"
    labels_as_predictions(dst / "labels" / "val", pred)
    bad = sorted(pred.glob("*.txt"))[0]
    bad.write_text(bad.read_text() + "0 0.5 0.5 0.1\n")
    n = len(bad.read_text().splitlines())
    with pytest.raises(MergeError, match=f"{bad}:{n}: expected"):
        merge_tiles(dst, tmp_path / "out", pred_dir=pred)
    assert main([str(dst), "--pred-dir", str(pred), "--out", str(tmp_path / "out")]) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()} == before
    obb = untrained_model(tmp_path, "yolo11n-obb.yaml", ["a", "b", "c"])
    with pytest.raises(MergeError, match="task 'obb'; detect tiles take a detect or segment model"):
        merge_tiles(dst, tmp_path / "o", model=obb)
    source = dst / ".tile_dota" / "source.json"  # as tile_dota records a DOTA source: no dataset YAML
    source.write_text(json.dumps({k: v for k, v in json.loads(source.read_text()).items() if k != "data"}))
    with pytest.raises(MergeError, match="merge_dota"):
        merge_tiles(dst, tmp_path / "o", pred_dir=pred)
    shutil.rmtree(dst / ".tile_dota")
    assert main([str(dst), "--pred-dir", str(pred), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
