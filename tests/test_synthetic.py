"""The generated datasets of the demo and the accuracy study: valid YOLO labels, the promised sizes, reproducible."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from ultralytics.utils import YAML

from ultralytics_fss.synthetic import CLASSES, TEXTURES, make_dataset


@pytest.mark.parametrize("kind, names", [("shapes", CLASSES), ("textures", TEXTURES)])
def test_dataset_is_valid_yolo_and_reproducible(tmp_path, kind, names):
    data = make_dataset(tmp_path / "a", images=10, imgsz=160, objects=(8, 30), seed=3, kind=kind)
    assert YAML.load(data)["names"] == dict(enumerate(names))
    sides, sizes, counts = [], [], []
    for img_file in sorted((tmp_path / "a" / "images").rglob("*.png")):
        img = cv2.imread(str(img_file))
        h, w = img.shape[:2]
        labels = np.loadtxt(str(img_file).replace("images", "labels").replace(".png", ".txt"), ndmin=2)
        assert labels.shape[1] == 5 and ((labels[:, 0] >= 0) & (labels[:, 0] < len(names))).all()
        xy, wh = labels[:, 1:3], labels[:, 3:5]
        assert (wh > 0).all() and (xy - wh / 2 >= -1e-6).all() and (xy + wh / 2 <= 1 + 1e-6).all()  # inside image
        sides += [h, w]
        sizes += list((wh * [w, h]).ravel())
        counts.append(len(labels))
    assert min(counts) >= 8 and max(counts) < 30
    if kind == "textures":  # images of 160-320 px with independent sides, objects of 8-40 px
        assert 160 <= min(sides) and max(sides) <= 320 and len(set(sides)) > 2
        assert 7.5 <= min(sizes) and max(sizes) <= 40.5
    else:
        assert set(sides) == {160}
    again = make_dataset(tmp_path / "b", images=10, imgsz=160, objects=(8, 30), seed=3, kind=kind)
    for f in sorted((tmp_path / "a" / "labels").rglob("*.txt")):
        assert f.read_text() == (again.parent / f.relative_to(tmp_path / "a")).read_text()


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind='tiles'"):
        make_dataset(tmp_path, images=2, kind="tiles")
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("task", ["obb", "segment", "pose"])
def test_task_labels_are_valid_geometry(tmp_path, task):
    """obb: four corners of a rectangle inside the image; segment: a polygon of >= 4 points inside the image; pose: a
    box containing its 4 visible keypoints, which are its left-, top-, right- and bottom-most points."""
    data = make_dataset(tmp_path, images=6, imgsz=128, task=task, seed=3)
    spec = YAML.load(data)
    assert (spec.get("kpt_shape"), spec.get("flip_idx")) == (([4, 3], [2, 1, 0, 3]) if task == "pose" else (None, None))
    lines = [line.split() for f in sorted(tmp_path.glob("labels/*/*.txt")) for line in f.read_text().splitlines()]
    assert len(lines) >= 6 * 8
    for parts in lines:
        cls, values = int(parts[0]), np.array(parts[1:], dtype=float)
        assert 0 <= cls < 3
        if task == "obb":
            c = values.reshape(4, 2) * 128
            sides = np.roll(c, -1, 0) - c
            assert abs((sides[0] * sides[1]).sum()) < 1e-2 * np.linalg.norm(sides[0]) * np.linalg.norm(sides[1]) + 1e-3
            assert np.allclose(np.linalg.norm(sides[0]), np.linalg.norm(sides[2]), atol=1e-2)
            assert (values >= -1e-6).all() and (values <= 1 + 1e-6).all()
        elif task == "segment":
            assert len(values) % 2 == 0 and len(values) >= 8
            assert (values >= -1e-6).all() and (values <= 1 + 1e-6).all()
        else:
            box, kpt = values[:4], values[4:].reshape(4, 3)
            assert (kpt[:, 2] == 2).all()
            lo, hi = box[:2] - box[2:] / 2, box[:2] + box[2:] / 2
            assert (kpt[:, :2] >= lo - 1e-5).all() and (kpt[:, :2] <= hi + 1e-5).all()
            assert np.allclose([kpt[0, 0], kpt[1, 1], kpt[2, 0], kpt[3, 1]], [lo[0], lo[1], hi[0], hi[1]], atol=1e-5)


def test_aerial_benchmark_is_dota_and_goes_through_tile_dota(tmp_path):
    """The aerial benchmark: DOTA's official layout and label format (read by the tiler's own DOTA parser without a
    problem), DOTA-v1.5 categories, large canvases of many tiny, touching, rotated objects of four classes of very
    different sizes, some flagged difficult; deterministic by seed; tiled by `tile_dota` like DOTA."""
    from ultralytics_fss.large_images import tile_dota
    from ultralytics_fss.large_images.dota import DOTA_CATEGORIES, read_label_file
    from ultralytics_fss.synthetic import AERIAL_CLASSES, make_aerial

    root = make_aerial(tmp_path / "aerial", images=4, side=1024, seed=5)
    assert sorted(p.name for p in root.iterdir()) == ["make_dataset.json", "train", "val"]
    assert len(list((root / "val" / "images").glob("*.png"))) == 1
    assert len(list((root / "train" / "labelTxt").glob("*.txt"))) == 3
    classes = {name: i for i, name in enumerate(DOTA_CATEGORIES["1.5"])}
    longest, names, difficult, total = {}, set(), 0, 0
    for label in sorted(root.rglob("labelTxt/*.txt")):
        parsed = read_label_file(label, classes)
        image = cv2.imread(str(label).replace("labelTxt", "images").replace(".txt", ".png"))
        assert parsed.problems == [] and image.shape[:2] == (1024, 1024) and (parsed.cls >= 0).all()
        polys = parsed.points
        assert ((polys >= 0) & (polys < 1024)).all()
        sides = np.linalg.norm(np.roll(polys, -1, 1) - polys, axis=2)  # (n, 4)
        for c, side in zip(parsed.cls, sides.max(1)):
            name = DOTA_CATEGORIES["1.5"][c]
            names.add(name)
            longest.setdefault(name, []).append(side)
        difficult += int(parsed.difficult.sum())
        total += len(parsed.cls)
    assert names == set(AERIAL_CLASSES) and total > 300 and 0 < difficult < total / 2
    for name, (lo, hi) in ((n, AERIAL_CLASSES[n][0]) for n in names):
        assert lo - 0.5 <= min(longest[name]) and max(longest[name]) <= hi + 0.5, name
    assert np.median(longest["small-vehicle"]) * 2 < np.median(longest["storage-tank"])  # very different sizes
    again = make_aerial(tmp_path / "again", images=4, side=1024, seed=5)
    for a in sorted(root.rglob("*.txt")):
        assert a.read_bytes() == (again / a.relative_to(root)).read_bytes()
    assert make_aerial(root, images=4, side=1024, seed=5) == root  # the same call reuses it
    with pytest.raises(FileExistsError):
        make_aerial(root, images=4, side=1024, seed=6)
    summary = tile_dota(root, tmp_path / "tiles", crop=512, stride=400, format="obb", workers=1)
    assert summary.ok and summary.truncated > 0 and summary.kept > total  # objects cut by tile borders, in two tiles
