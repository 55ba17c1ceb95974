"""`tile_yolo`: Ultralytics YOLO datasets of large images tiled by the DOTA path's stages;
labels checked against an independent shapely computation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import shapely
import yaml

from ultralytics_fss.large_images.tiling.pipeline import tile_yolo
from ultralytics_fss.large_images.yolo_labels import label_path, parse_yolo_label_text, resolve_yolo_dataset


def read_rows(path):
    """Label rows of a file as float arrays."""
    return [np.array(line.split(), dtype=float) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """Per task, 4 canvases of 600 px with 6-10 small objects each (generated)."""
    from ultralytics_fss.synthetic import make_dataset

    root = tmp_path_factory.mktemp("large")
    return {t: make_dataset(root / t, images=4, imgsz=600, objects=(6, 10), size=(0.03, 0.08), task=t)
            for t in ("detect", "obb", "segment")}  # fmt: skip


@pytest.mark.parametrize("task", ["detect", "obb", "segment"])
def test_tiles_are_an_ultralytics_dataset_with_the_source_names(large, tmp_path, task):
    summary = tile_yolo(large[task], tmp_path / "tiles", task=task, crop=256, stride=200, workers=1)
    assert summary.ok and summary.images_tiled == 4 and summary.kept > 0
    data = yaml.safe_load((tmp_path / "tiles" / "data.yaml").read_text())
    assert list(data["names"].values()) == resolve_yolo_dataset(large[task])[0]
    with open(tmp_path / "tiles" / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(manifest) == summary.tiles and {r["image"].split("/")[0] for r in manifest} == {"images"}
    lines = 0
    for row in manifest:
        label = tmp_path / "tiles" / "labels" / row["split"] / row["tile"].replace(".png", ".txt")
        text = label.read_text() if label.is_file() else ""
        parsed = parse_yolo_label_text(text, label, task, 256, 256, nc=len(data["names"]))
        assert parsed.problems == [], parsed.problems  # every row reads back as a valid label of the task
        lines += len(parsed.cls)
    assert lines == summary.kept if task != "segment" else lines >= summary.kept - summary.truncated


def test_detect_labels_equal_an_independent_shapely_clipping(large, tmp_path):
    """Every tile's boxes are the source boxes whose intersection with the window keeps IoF >= 0.7, as their
    clipped bounds in tile coordinates (objects on tile and image borders included)."""
    tile_yolo(large["detect"], tmp_path / "tiles", task="detect", crop=256, stride=200, workers=1)
    names, images = resolve_yolo_dataset(large["detect"])
    source = {}
    for split, paths in images.items():
        for p in paths:
            parsed = parse_yolo_label_text(label_path(p).read_text(), p, "detect", 600, 600, nc=len(names))
            source[(split, p.stem)] = (parsed.polygons, parsed.cls)
    with open(tmp_path / "tiles" / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    checked = 0
    for row in manifest:
        polygons, cls = source[(row["split"], row["tile"].split("__")[0])]
        left, top = int(row["left"]), int(row["top"])
        window = shapely.box(left, top, left + 256, top + 256)
        expected = []
        for poly, c in zip(polygons, cls):
            box = shapely.Polygon(poly)
            part = box.intersection(window)
            if part.area > 0 and part.area >= 0.7 * box.area:
                x1, y1, x2, y2 = part.bounds
                expected.append([c, (x1 + x2) / 2 - left, (y1 + y2) / 2 - top, x2 - x1, y2 - y1])
        expected = np.array(sorted(expected)).reshape(-1, 5) / [1, 256, 256, 256, 256]
        label = tmp_path / "tiles" / "labels" / row["split"] / row["tile"].replace(".png", ".txt")
        got = np.array(sorted(map(list, read_rows(label))) if label.is_file() else []).reshape(-1, 5)
        np.testing.assert_allclose(got, expected, atol=2e-6)
        checked += len(got)
    assert checked > 20


def test_command_line_and_bad_input(large, tmp_path, capsys):
    """`python -m ultralytics_fss.tile`: tiles; a YAML that does not resolve is one line and exit 2, nothing written;
    a malformed label line is named with file and line while the good images are tiled."""
    from ultralytics_fss.tile import main

    assert main([str(large["segment"]), str(tmp_path / "ok"), "--task", "segment", "--crop", "256",
                 "--workers", "1"]) == 0  # fmt: skip
    assert (tmp_path / "ok" / "data.yaml").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"path": str(tmp_path / "nowhere"), "train": "images/train", "val": "images/val",
                                   "names": {0: "a"}}))  # fmt: skip
    assert main([str(bad), str(tmp_path / "no"), "--workers", "1"]) == 2 and not (tmp_path / "no").exists()
    names, images = resolve_yolo_dataset(large["detect"])
    label = label_path(images["train"][0])
    original = label.read_text()
    try:
        label.write_text(original + "0 0.5 0.5 1.5 0.1\n")
        summary = tile_yolo(large["detect"], tmp_path / "w", task="detect", crop=256, workers=1)
    finally:
        label.write_text(original)
    line = len(original.splitlines()) + 1
    assert summary.images_tiled == 4 and any(w.startswith(f"{label}:{line}: ") for w in summary.warnings)
    # An image without a label file is named, and tiled as background (its tiles' label files are empty).
    unlabelled = label_path(images["val"][0])
    kept = unlabelled.read_text()
    try:
        unlabelled.unlink()
        summary = tile_yolo(large["detect"], tmp_path / "u", task="detect", crop=256, workers=1)
    finally:
        unlabelled.write_text(kept)
    stem = images["val"][0].stem
    assert summary.images_tiled == 4 and any(w == f"{images['val'][0]}: image without label file {unlabelled}, tiled "
                                             "as background" for w in summary.warnings)  # fmt: skip
    tiles = list((tmp_path / "u" / "labels" / "val").glob(f"{stem}__*.txt"))
    assert tiles and all(t.read_text() == "" for t in tiles)


def shoelace(xy):
    """Area of a polygon given as (K, 2) corners."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.mark.parametrize("task", ["obb", "segment"])
def test_obb_and_segment_labels_equal_an_independent_shapely_clipping(large, tmp_path, task):
    """Rotated boxes and polygons, objects on tile and image borders included: a tile holds each object whose clipped
    area keeps IoF >= 0.7; obb: its own corners when uncut, else the minimum-area rectangle of the clipped part with
    its corners clipped to the tile;
    segment: each polygonal piece of the clipped part (cut objects: each piece above the IoF rule on its own)."""
    tile_yolo(large[task], tmp_path / "tiles", task=task, crop=256, stride=200, workers=1)
    names, images = resolve_yolo_dataset(large[task])
    source = {}
    for split, paths in images.items():
        for p in paths:
            parsed = parse_yolo_label_text(label_path(p).read_text(), p, task, 600, 600, nc=len(names))
            source[(split, p.stem)] = (parsed.polygons, parsed.cls)
    with open(tmp_path / "tiles" / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    checked = cut = 0
    for row in manifest:
        polygons, cls = source[(row["split"], row["tile"].split("__")[0])]
        left, top = int(row["left"]), int(row["top"])
        window = shapely.box(left, top, left + 256, top + 256)
        expected = []  # (cls, area, bounds) in tile-normalised units
        for poly, c in zip(polygons, cls):
            whole = shapely.make_valid(shapely.Polygon(poly))
            part = whole.intersection(window)
            if part.area <= 0 or part.area < 0.7 * whole.area:
                continue
            uncut = shapely.equals(part, whole)
            pieces = [part] if task == "obb" else [g for g in shapely.get_parts(part) if g.area > 0
                                                   and (uncut or g.area >= 0.7 * whole.area)]  # fmt: skip
            for g in pieces:
                if task == "obb" and not uncut:  # the rectangle, its corners clipped to the tile (Ultralytics
                    g = shapely.oriented_envelope(g)  # refuses coordinates outside [0, 1])
                xy = np.clip((shapely.get_coordinates(g.exterior)[:-1] - [left, top]) / 256, 0, 1)
                expected.append([c, shoelace(xy), *xy.min(0), *xy.max(0)])
            cut += not uncut
        label = tmp_path / "tiles" / "labels" / row["split"] / row["tile"].replace(".png", ".txt")
        got = []
        for r in read_rows(label) if label.is_file() else []:
            xy = r[1:].reshape(-1, 2)
            got.append([r[0], shoelace(xy), *xy.min(0), *xy.max(0)])
        np.testing.assert_allclose(np.array(sorted(got)).reshape(-1, 6), np.array(sorted(expected)).reshape(-1, 6),
                                   atol=1e-5)  # fmt: skip
        checked += len(got)
    assert checked > 20 and cut >= 3  # objects cut by tile edges were among them


def test_a_self_intersecting_outline_stays_one_instance(tmp_path):
    """A segment outline that crosses itself (a bow tie, as an outline clipped at the image edge can be) is repaired
    into two triangles; the object stays one instance, its larger triangle, and the summary counts it once."""
    import cv2

    root = tmp_path / "src"
    for sub in ("images/train", "labels/train"):
        (root / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "train" / "a.png"), np.full((200, 200, 3), 80, np.uint8))
    bow_tie = [0.1, 0.1, 0.5, 0.4, 0.5, 0.1, 0.1, 0.6]  # crosses itself: triangles of 0.0625 and 0.0225
    square = [0.7, 0.7, 0.9, 0.7, 0.9, 0.9, 0.7, 0.9]
    rows = [f"{c} {' '.join(map(str, xy))}\n" for c, xy in ((0, bow_tie), (1, square))]
    (root / "labels" / "train" / "a.txt").write_text("".join(rows))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b]\n")
    summary = tile_yolo(root / "data.yaml", tmp_path / "tiles", task="segment", crop=200, stride=200, splits=["train"],
                        workers=1)  # fmt: skip
    assert summary.ok and summary.tiles == 1 and summary.kept == 2 and summary.repaired == 1
    (label,) = (tmp_path / "tiles" / "labels" / "train").glob("a_*.txt")
    rows = read_rows(label)
    assert sorted(int(r[0]) for r in rows) == [0, 1]  # one row per object
    (tie,) = [r[1:].reshape(-1, 2) for r in rows if r[0] == 0]
    assert shapely.Polygon(tie).area == pytest.approx(0.0625, abs=1e-6)  # the larger triangle of the bow tie
