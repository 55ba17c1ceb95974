"""Tests of the DOTA tiler's stages one by one: geometry, options, records, output state, and the worker side's imports.

The pipeline end to end (real DOTA examples, restart, interrupts, shards) is tested in test_tile_dota.py.
"""

from __future__ import annotations

import ast
import inspect
import json
from dataclasses import asdict, fields
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from ultralytics_fss.large_images import TilingError, tile_dota
from ultralytics_fss.large_images import geometry as geo
from ultralytics_fss.large_images.dota import parse_label_text
from ultralytics_fss.large_images.tiling.config import DEFAULTS, TileConfig
from ultralytics_fss.large_images.tiling.output import TileOutput, data_yaml_text
from ultralytics_fss.large_images.tiling.records import ImageResult, TileStats
from ultralytics_fss.large_images.tiling.summary import TileSummary

DOTA = Path(__file__).resolve().parents[1] / "ultralytics_fss" / "large_images"
# What pool workers import: it must start fast, so no Ultralytics (and with it torch) at import time.
WORKER_SIDE = ("errors", "files", "geometry", "images", "dota", "tiling/__init__", "tiling/config", "tiling/output",
               "tiling/records", "tiling/tile")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("crop,stride", [(1024, 800), (256, 256), (100, 33)])
def test_windows_cover_every_pixel(crop, stride):
    """Window starts increase by at most ``stride``, the last window ends at the edge, and every pixel is covered."""
    rng = np.random.default_rng(0)
    for size in [1, crop - 1, crop, crop + 1, crop + stride, crop + 2 * stride, *rng.integers(1, 5 * crop, 20)]:
        s = geo.window_starts(int(size), crop, stride)
        assert (np.diff(s) > 0).all() and (np.diff(s) <= stride).all() and s[0] == 0
        assert s[-1] + crop == size if size > crop else len(s) == 1
        covered = np.zeros(int(size), bool)
        for a in s:
            covered[a : a + crop] = True
        assert covered.all()


def test_assign_objects_matches_loop_reference():
    """The prefiltered, vectorised assignment equals a plain shapely double loop on random polygons."""
    rng = np.random.default_rng(1)
    pts = np.stack([cv2.boxPoints((tuple(rng.uniform(0, 900, 2)), tuple(rng.uniform(2, 150, 2)), rng.uniform(0, 180)))
                    for _ in range(300)]).astype(float)  # fmt: skip
    pts[:5] = pts[:5][:, [0, 2, 1, 3]]  # bow ties: repaired to their convex hull
    pts[5] = [[10, 10], [20, 20], [30, 30], [40, 40]]  # collinear: degenerate
    before = pts.copy()
    objects, repaired, degenerate = geo.build_objects(pts, np.arange(300))
    assert np.array_equal(pts, before)  # inputs untouched
    assert repaired[:5].all() and not repaired[5:].any() and degenerate.tolist() == [i == 5 for i in range(300)]
    windows = geo.content_boxes(geo.get_windows(900, 850, 256, 200), 900, 850)
    kept = 0
    for thr in (0.0, 0.7, 1.0):
        for win, wo in zip(windows, geo.assign_objects(objects, windows, thr)):
            b = box(*win)
            ref = []
            for i, p in enumerate(pts):
                poly = Polygon(p) if Polygon(p).is_valid else shapely.MultiPoint(p).convex_hull
                if i == 5:
                    continue
                a = poly.intersection(b).area
                if a > 0 and a >= thr * poly.area:
                    ref.append(i)
            assert objects.index[wo.index].tolist() == ref
            kept += len(ref)
            for part, i, t in zip(wo.parts, objects.index[wo.index], wo.truncated):
                assert abs(part.area - Polygon(pts[i]).convex_hull.intersection(b).area) < 1e-6
                assert t == (not b.contains(Polygon(pts[i]).convex_hull))
    assert kept > 300  # the comparison covered many object-window pairs, not empty windows only


def test_truncated_labels_use_clipped_part():
    """A 45-degree square cut by the tile edge: detect box = clipped part's bounds; obb = its min-area rectangle."""
    diamond = np.array([[[100, 40], [160, 100], [100, 160], [40, 100]]], float)  # area 7200
    objects, _, _ = geo.build_objects(diamond, np.array([3]))
    (wo,) = geo.assign_objects(objects, np.array([[0, 0, 150, 200]]), iof_thr=0.7)
    assert wo.truncated.tolist() == [True]
    xywh = geo.detect_labels(wo.parts, (0, 0), 200)
    np.testing.assert_allclose(xywh, [[95 / 200, 100 / 200, 110 / 200, 120 / 200]])
    obb = geo.obb_labels(wo.parts, wo.truncated, (0, 0), 200).reshape(4, 2) * 200
    rect = Polygon(obb)
    clipped = Polygon(diamond[0]).intersection(box(0, 0, 150, 200))
    assert rect.contains(clipped.buffer(-1e-6)) and rect.area == pytest.approx(clipped.minimum_rotated_rectangle.area)


# ------------------------------------------------------------------------------------------------------------ options
def test_defaults_defined_once():
    """tile_dota's defaults are TileConfig's field defaults (the CLI's are checked in test_tile_dota.py)."""
    params = inspect.signature(tile_dota).parameters
    for name in ("crop", "rates", "iof", "format", "difficult", "empty", "ext", "keep_16bit"):
        assert params[name].default == getattr(DEFAULTS, name), name
    assert params["stride"].default is None  # TileConfig's default_stride(crop)
    assert (DEFAULTS.crop, DEFAULTS.stride, DEFAULTS.rates, DEFAULTS.iof) == (1024, 800, (1.0,), 0.7)  # the paper's


def test_config_rejects_every_bad_value_at_once():
    """One TilingError names each impossible option; a valid config lists its label formats."""
    with pytest.raises(TilingError) as e:
        TileConfig(crop=256, stride=300, rates=(1.0, 1.0), iof=1.5, format="xyz", empty="maybe")
    for part in ("stride must be", "rates must be", "iof must be", "format must be", "empty must be"):
        assert part in str(e.value)
    with pytest.raises(TilingError, match="keep_16bit needs PNG"):
        TileConfig(keep_16bit=True, ext="jpg")
    assert TileConfig(format="both").formats() == ("detect", "obb") and TileConfig().formats() == ("detect",)


# ------------------------------------------------------------------------------------------------------------ records
def test_statistic_keys_defined_once():
    """TileSummary inherits the counters of TileStats, and adding a record sums every one of them."""
    keys = [f.name for f in fields(TileStats)]
    assert keys == ["tiles", "tiles_with_objects", "tiles_empty", "kept", "truncated", "dropped", "repaired",
                    "degenerate"]  # fmt: skip
    summary = TileSummary(dst=Path("out"))
    assert [f.name for f in fields(summary)][: len(keys)] == keys
    result = ImageResult("train", "A", "images/A.png", stats=TileStats(*range(1, len(keys) + 1)), messages=["m"])
    summary.add(result)
    summary.add(result)
    assert [getattr(summary, k) for k in keys] == [2 * v for v in range(1, len(keys) + 1)]
    assert summary.warnings == ["m", "m"] and summary.images == 0  # only the counters of TileStats move


def test_record_round_trip_and_format():
    """A record is one JSON object with nested stats in TileStats order; reading it back gives the same result."""
    result = ImageResult("val", "P1", "val/images/P1.png", 30, 20, [{"tile": "P1__1__0___0.png"}], TileStats(tiles=1))
    text = result.to_json()
    data = json.loads(text)
    assert list(data) == ["split", "stem", "image", "width", "height", "tiles", "stats", "messages", "error"]
    assert list(data["stats"]) == [f.name for f in fields(TileStats)] and data["stats"]["tiles"] == 1
    assert ImageResult.from_json(text) == result
    assert ImageResult.from_json(json.dumps({**data, "stats": {}})).stats == TileStats()  # tolerant of missing keys


# ------------------------------------------------------------------------------------------------------- output state
def test_output_paths(tmp_path):
    """One owner of the layout: detect at DST, obb under DST/obb for ``both``, records under DST/.tile_dota/done."""
    out = TileOutput(tmp_path, TileConfig(format="both").formats())
    assert out.roots == (tmp_path, tmp_path / "obb")
    assert out.record_path("train", "P0706") == tmp_path / ".tile_dota" / "done" / "train" / "P0706.json"
    assert out.images_dir(out.roots[1], "val") == tmp_path / "obb" / "images" / "val"
    assert TileOutput(tmp_path, ("obb",)).roots == (tmp_path,)


def test_output_records_manifest_and_data_yaml(tmp_path):
    """Records mark images done; the manifest and data.yaml are rebuilt from all records, any split, any run."""
    out = TileOutput(tmp_path)
    assert out.read_record("train", "A") is None and out.done_splits() == []
    row = {"tile": "A__1__0___0.png", "rate": "1", "left": 0, "top": 0, "left_orig": 0.0, "top_orig": 0.0,
           "crop": 64, "width": 64, "height": 64, "objects": 2, "truncated": 1}  # fmt: skip
    for split, stem in (("val", "B"), ("train", "A")):
        tiles = [{**row, "tile": f"{stem}__1__0___0.png"}]
        out.write_record(ImageResult(split, stem, f"{stem}.png", 64, 64, tiles), "t")
    assert out.read_record("train", "A").image == "A.png" and out.done_splits() == ["train", "val"]
    assert out.write_manifest("t") == 2
    lines = (tmp_path / "manifest.csv").read_text().splitlines()
    assert lines[0].startswith("split,tile,image,") and [ln.split(",")[1] for ln in lines[1:]] == [
        "A__1__0___0.png", "B__1__0___0.png"]  # fmt: skip
    out.write_data_yaml(["val"], ["plane"], "t")  # this run: val; an earlier one: train
    text = (tmp_path / "data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text and '0: "plane"' in text
    assert "val: images/train" in data_yaml_text(tmp_path, ["train"], ["plane"])  # no val split: train stands in
    assert not list(tmp_path.rglob("*.tmp"))


def test_output_options_check_and_reset(tmp_path):
    """Options are recorded once; other options are refused, --overwrite clears the tiler's output (not a shard's)."""
    out = TileOutput(tmp_path)
    cfg = TileConfig(crop=256, stride=200, names=("plane",))
    out.check_or_reset(cfg, overwrite=False, sharded=False, token="t")
    assert json.loads((tmp_path / ".tile_dota/options.json").read_text()) == json.loads(json.dumps(asdict(cfg)))
    out.check_or_reset(cfg, overwrite=False, sharded=True, token="t")  # same options: accepted
    with pytest.raises(TilingError, match=r"other options \(crop: 256 -> 512\)"):
        other = TileConfig(crop=512, stride=200, names=("plane",))
        out.check_or_reset(other, overwrite=False, sharded=False, token="t")
    with pytest.raises(TilingError, match="--overwrite clears DST for every shard"):
        out.check_or_reset(cfg, overwrite=True, sharded=True, token="t")
    (tmp_path / "images/train").mkdir(parents=True)
    (tmp_path / "keep.txt").write_text("not ours")
    out.check_or_reset(TileConfig(crop=512, stride=200), overwrite=True, sharded=False, token="t")
    assert not (tmp_path / "images").exists() and (tmp_path / "keep.txt").is_file()
    assert json.loads((tmp_path / ".tile_dota/options.json").read_text())["crop"] == 512


def test_output_removes_only_its_temporaries(tmp_path):
    """Stale temporaries of this shard's images go; other shards' and this run's own are told apart by stem/token."""
    out = TileOutput(tmp_path)
    folder = out.images_dir(tmp_path, "train")
    folder.mkdir(parents=True)
    mine, other = folder / ".A__1__0___0.png.111-aa.tmp", folder / ".B__1__0___0.png.222-bb.tmp"
    for p in (mine, other):
        p.write_bytes(b"partial")
    assert out.remove_stale_tmp(["train"], stems={"A"}) == 1 and not mine.exists() and other.exists()
    assert out.remove_run_tmp(["train"], token="111-aa") == 0 and other.exists()
    assert out.remove_run_tmp(["train"], token="222-bb") == 1 and not other.exists()


# -------------------------------------------------------------------------------------------------------- worker side
@pytest.mark.parametrize("module", WORKER_SIDE)
def test_worker_side_imports_no_ultralytics(module):
    """Modules run by pool workers import neither Ultralytics nor torch when imported (only the main process does)."""
    tree = ast.parse((DOTA / f"{module}.py").read_text(encoding="utf-8"))
    names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and not n.level]
    assert names or module in {"errors", "tiling/__init__"}, module  # the parse found the imports (these have none)
    assert not [m for m in names if m.split(".")[0] in {"ultralytics", "torch", "ultralytics_fss"}], (module, names)


def test_malformed_label_lines_say_what_is_wrong():
    """Each malformed line is named by file and line and says what is wrong: a coordinate too few or too many is
    counted (not called "non-numeric"), a non-numeric coordinate is quoted, a bad flag is named."""
    text = "\n".join([
        "imagesource:GoogleEarth",
        "1 2 3 4 5 6 7 plane 0",  # 7 numbers
        "1 2 3 4 5 6 7 8 9 plane 0",  # 9 numbers
        "1 2 3 4 5 6 7 plane",  # 7 numbers, no flag
        "1 2 x 4 5 6 7 8 ship 0",  # a letter among the coordinates
        "1 2 3 4 5 6 7 8 ship 5",  # bad flag
        "1 2 3 4",  # too short, all numbers
        "1 2 3 4 5 6 7 8 ship 0",  # good
    ])  # fmt: skip
    parsed = parse_label_text(text, "L.txt")
    assert parsed.lines.tolist() == [8] and parsed.categories == ["ship"]
    assert parsed.problems == [
        "L.txt:2: 7 coordinates before the category 'plane', expected 8 (x1 y1 x2 y2 x3 y3 x4 y4), in "
        "'1 2 3 4 5 6 7 plane 0'",
        "L.txt:3: 9 coordinates before the category 'plane', expected 8 (x1 y1 x2 y2 x3 y3 x4 y4), in "
        "'1 2 3 4 5 6 7 8 9 plane 0'",
        "L.txt:4: 7 coordinates before the category 'plane', expected 8 (x1 y1 x2 y2 x3 y3 x4 y4), in "
        "'1 2 3 4 5 6 7 plane'",
        "L.txt:5: non-numeric coordinate 'x' (value 3 of 8) in '1 2 x 4 5 6 7 8 ship 0'",
        "L.txt:6: difficult flag must be 0 or 1, got '5'",
        "L.txt:7: expected 'x1 y1 x2 y2 x3 y3 x4 y4 category difficult', got '1 2 3 4'",
    ]
