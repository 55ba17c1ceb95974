"""YOLO-format sources for the tiler: label lines of detect, obb and segment datasets to pixel
polygons, malformed lines named by file and line; dataset YAMLs resolved by Ultralytics' own checks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ultralytics_fss.large_images.yolo_labels import (
    _parse_lines,
    label_path,
    parse_yolo_label_text,
    resolve_yolo_dataset,
)


def test_each_task_s_lines_become_pixel_polygons():
    box = parse_yolo_label_text("1 0.5 0.5 0.2 0.4\n", "a.txt", "detect", 200, 100, nc=3)
    assert box.problems == [] and box.cls.tolist() == [1] and box.lines.tolist() == [1]
    np.testing.assert_allclose(box.polygons[0], [[80, 30], [120, 30], [120, 70], [80, 70]])
    poly = parse_yolo_label_text("0 0.1 0.1 0.3 0.2 0.2 0.5\n", "a.txt", "detect", 100, 100, nc=1)
    np.testing.assert_allclose(poly.polygons[0], [[10, 10], [30, 10], [30, 50], [10, 50]])  # its bounding box
    obb = parse_yolo_label_text("2 0.1 0.1 0.5 0.1 0.5 0.3 0.1 0.3\n", "o.txt", "obb", 100, 200, nc=3)
    np.testing.assert_allclose(obb.polygons[0], [[10, 20], [50, 20], [50, 60], [10, 60]])
    seg = parse_yolo_label_text("\n0 0.1 0.1 0.9 0.1 0.5 0.9\n0 0.5 0.5 1 1\n", "s.txt", "segment", 10, 10, nc=1)
    assert [len(p) for p in seg.polygons] == [3, 4] and seg.lines.tolist() == [2, 3]
    np.testing.assert_allclose(seg.polygons[1], [[0, 0], [10, 0], [10, 10], [0, 10]])


@pytest.mark.parametrize(
    "task, line, words",
    [
        ("detect", "0 0.5 0.5 0.2", "4 values"),
        ("detect", "0 0.5 x 0.2 0.2", "non-numeric value 'x'"),
        ("detect", "0 0.5 nan 0.2 0.2", "non-finite"),
        ("detect", "3 0.5 0.5 0.2 0.2", "class '3' is not an index of the dataset's 3 classes"),
        ("detect", "1.5 0.5 0.5 0.2 0.2", "class '1.5'"),
        ("detect", "0 0.95 0.5 0.2 0.2", "outside [0, 1]"),
        ("detect", "0 0.5 0.5 0 0.2", "box without area"),
        ("obb", "0 0.1 0.1 0.5 0.1 0.5 0.3", "7 values, expected 9 values"),
        ("segment", "0 0.1 0.1 0.5 0.1 0.5", "6 values"),
        ("segment", "0 0.1 0.1 0.5 1.2 0.5 0.3", "outside [0, 1]"),
    ],
)
def test_malformed_lines_are_skipped_and_named(task, line, words):
    text = f"0 0.5 0.5 0.2 0.2\n{line}\n" if task != "obb" else f"0 0.1 0.1 0.5 0.1 0.5 0.3 0.1 0.3\n{line}\n"
    parsed = parse_yolo_label_text(text, "dir/img.txt", task, 64, 64, nc=3)
    assert len(parsed.polygons) == 1 and parsed.lines.tolist() == [1]  # the good line stays
    (problem,) = parsed.problems
    assert problem.startswith("dir/img.txt:2: ") and words in problem, problem


@pytest.mark.parametrize("task", ["detect", "obb", "segment"])
@pytest.mark.parametrize("seed", range(4))
def test_array_parse_of_clean_files_equals_the_line_by_line_parse(task, seed):
    """Clean files take the array path: the same polygons (to the bit), classes and line numbers as the line-by-line
    reader; a file with one bad line gives the line reader's result, message included."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 30)), {"detect": 2 if seed % 2 else 4, "obb": 8, "segment": 2 * int(rng.integers(3, 9))}
    width = k[task] if task != "detect" or seed % 2 == 0 else 2 * int(rng.integers(3, 9))  # detect: boxes or polygons
    values = rng.uniform(0.05, 0.95, (n, width))
    if width == 4:
        values[:, 2:] = rng.uniform(0.01, 0.1, (n, 2))
    cls = rng.integers(0, 5, n)
    text = "\n".join(f"{c} " + " ".join(f"{v:.6f}" for v in row) + ("\n" if i % 3 == 0 else "")
                     for i, (c, row) in enumerate(zip(cls, values)))  # blank lines between some rows  # fmt: skip
    fast = parse_yolo_label_text(text, "f.txt", task, 640, 480, 5)
    slow = _parse_lines(text, "f.txt", task, 640, 480, 5)
    assert len(fast.polygons) == n and fast.problems == []
    assert all(np.array_equal(a, b) for a, b in zip(fast.polygons, slow.polygons, strict=True))
    assert np.array_equal(fast.cls, slow.cls) and np.array_equal(fast.lines, slow.lines)
    bad = text + "\n7 " + " ".join(["0.5"] * width)  # class 7 of 5
    got = parse_yolo_label_text(bad, "f.txt", task, 640, 480, 5)
    assert len(got.polygons) == n and got.problems == _parse_lines(bad, "f.txt", task, 640, 480, 5).problems != []


def test_dataset_yaml_forms_resolve_with_ultralytics_checks(tmp_path):
    """Folders, an image-list file and a list of both resolve to the same images; labels sit where Ultralytics looks."""
    from ultralytics_fss.synthetic import make_dataset

    data = make_dataset(tmp_path / "d", images=6, imgsz=64, objects=(1, 3), size=(0.2, 0.3))
    cfg = yaml.safe_load(data.read_text())
    names, images = resolve_yolo_dataset(data)
    assert names == [cfg["names"][i] for i in range(len(cfg["names"]))] and set(images) == {"train", "val"}
    root = data.parent
    listed = root / "train.txt"
    listed.write_text("".join(f"./{p.relative_to(root)}\n" for p in images["train"]))
    for train in (str(listed), [str(listed), "images/val"]):
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump({**cfg, "path": str(root), "train": train, "val": "images/val"}))
        _, found = resolve_yolo_dataset(other)
        expected = sorted(images["train"] + (images["val"] if isinstance(train, list) else []))
        assert sorted(found["train"]) == expected
    assert all(label_path(p).is_file() and label_path(p).parent.name == "train" for p in images["train"])
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({**cfg, "path": str(tmp_path / "nowhere")}))
    with pytest.raises(FileNotFoundError):
        resolve_yolo_dataset(missing)


U_SHAPE = np.array([[0, 0], [30, 0], [30, 80], [70, 80], [70, 0], [100, 0], [100, 100], [0, 100]], dtype=float)


@pytest.mark.parametrize("iof, kept", [(0.2, 2), (0.3, 0)])
def test_a_polygon_cut_into_two_keeps_each_piece_above_the_iof_rule(iof, kept):
    """A U-shaped outline (area 6800) under a window over its top half: two pieces of 1500 px (IoF 0.22 each); each
    piece is an instance of its own when it passes the rule, checked against shapely's own intersection."""
    import shapely

    from ultralytics_fss.large_images.geometry import assign_objects
    from ultralytics_fss.large_images.polygons import build_polygon_objects, segment_labels, split_parts

    square = np.array([[150, 10], [190, 10], [190, 40], [150, 40]], dtype=float)  # wholly inside the window
    objects, repaired, degenerate = build_polygon_objects([U_SHAPE, square], np.array([0, 1]))
    assert not repaired.any() and not degenerate.any() and objects.areas.tolist() == [6800.0, 1200.0]
    (window,) = assign_objects(objects, np.array([[0, 0, 200, 50]]), iof)
    owner, pieces = split_parts(window, objects, iof)
    expected = shapely.get_parts(shapely.intersection(shapely.Polygon(U_SHAPE), shapely.box(0, 0, 200, 50)))
    assert len(expected) == 2 and all(shapely.area(p) == 1500 for p in expected)
    assert owner.tolist() == [0] * kept + [1]
    for piece in pieces[:kept]:
        assert any(shapely.equals(piece, e) for e in expected)
    outlines = segment_labels(pieces, (0, 0), 200)
    assert [len(o) for o in outlines] == [4] * (kept + 1) and all(((o >= 0) & (o <= 1)).all() for o in outlines)
    np.testing.assert_allclose(sorted(map(tuple, outlines[-1])), sorted(map(tuple, square / 200)))


def test_a_self_intersecting_outline_is_repaired_not_filled():
    from ultralytics_fss.large_images.polygons import build_polygon_objects

    bow = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=float)  # a bow tie: two triangles of 25 px
    objects, repaired, _ = build_polygon_objects([bow, U_SHAPE], np.array([0, 0]))
    assert repaired.tolist() == [True, False] and objects.areas.tolist() == [25.0, 6800.0]  # not the hull's 100
    assert [g.geom_type for g in objects.geoms] == ["Polygon", "Polygon"]  # one triangle: one object, one instance
