"""Tests of the DOTA tiler.

Real DOTA examples (windows, counts against shapely, round trip, padding, orphans) and generated data for every
reliability promise (layouts, bad data, pixel formats, restart, Ctrl-C, killed worker, shards).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from ultralytics_fss import tile_dota as td
from ultralytics_fss.dota import geometry as geo
from ultralytics_fss.dota import worker
from ultralytics_fss.dota.labels import DOTA_CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT.parent / "shared" / "data" / "dota-examples"
V15 = DOTA_CATEGORIES["1.5"]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# ------------------------------------------------------------------------------------------------------------ helpers
def read_dota(path: Path) -> list[tuple[np.ndarray, str]]:
    """Independent minimal DOTA reader: (corners (4, 2), category) per object line."""
    out = []
    for line in path.read_text().splitlines():
        t = line.split()
        if len(t) >= 9:
            out.append((np.array(t[:8], float).reshape(4, 2), t[8]))
    return out


def read_manifest(dst: Path) -> list[dict]:
    with open(dst / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_rows(path: Path) -> np.ndarray:
    """Label rows of a tile label file as floats, shape (K, 1 + D)."""
    rows = [list(map(float, ln.split())) for ln in path.read_text().splitlines() if ln.strip()]
    return np.array(rows, dtype=float)


def tree(dst: Path) -> dict[str, bytes]:
    """Every file under dst by relative path (data.yaml without its absolute path line), for exact comparisons."""
    files = {}
    for p in sorted(dst.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "data.yaml":
                data = b"\n".join(ln for ln in data.splitlines() if not ln.startswith(b"path:"))
            files[p.relative_to(dst).as_posix()] = data
    return files


def tmp_files(dst: Path) -> list[Path]:
    return [p for p in dst.rglob("*") if p.name.endswith(".tmp")]


def make_image(path: Path, w: int, h: int, seed: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """Write a textured image (so JPEG/PNG do real work) and return its pixels."""
    rng = np.random.default_rng(seed)
    hi = 65535 if dtype == np.uint16 else 255
    shape = (h, w) if channels == 1 else (h, w, channels)
    im = rng.integers(0, hi, shape, dtype=np.int64).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), im)
    return im


def random_objects(w: int, h: int, n: int, seed: int) -> list[str]:
    """DOTA lines of rotated rectangles, some crossing the image (and hence tile) borders."""
    rng = np.random.default_rng(seed)
    lines = ["imagesource:test", "gsd:0.5"]
    for _ in range(n):
        c = rng.uniform(0, (w, h))
        r = cv2.boxPoints((tuple(c), tuple(rng.uniform(8, 60, 2)), float(rng.uniform(0, 180))))
        lines.append(" ".join(f"{v:.1f}" for v in r.ravel()) + f" {V15[rng.integers(0, 15)]} {int(rng.random() < 0.2)}")
    return lines


def make_dataset(root: Path, n=3, size=(600, 500), objects=30, layout="flat", vary=True):
    """A DOTA set with n images in the given layout (flat: one split; official/ultralytics: train + val)."""
    for i in range(n):
        split = "val" if layout != "flat" and i == 0 else "train"
        im_dir, lb_dir = {
            "flat": (root / "images", root / "labelTxt"),
            "official": (root / split / "images", root / split / "labelTxt"),
            "ultralytics": (root / "images" / split, root / "labels" / f"{split}_original"),
        }[layout]
        w, h = (size[0] + 37 * i, size[1] + 23 * i) if vary else size
        make_image(im_dir / f"G{i:03d}.png", w, h, seed=i)
        lb_dir.mkdir(parents=True, exist_ok=True)
        (lb_dir / f"G{i:03d}.txt").write_text("\n".join(random_objects(w, h, objects, seed=100 + i)) + "\n")
    return root


def run_cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ultralytics_fss.tile_dota", *map(str, args)],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- real DOTA examples
@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    """The shared DOTA examples tiled once (detect at the root, obb in DST/obb)."""
    dst = tmp_path_factory.mktemp("examples") / "tiles"
    summary = td.tile_dota(EXAMPLES, dst, format="both", workers=1)
    return dst, summary


def test_examples_windows(tiled):
    """P0706 (1111 x 1182) gets 2 x 2 windows aligned to the far edges; P1888 (712 x 557) one padded window."""
    dst, summary = tiled
    rows = read_manifest(dst)
    got = {(r["tile"], int(r["left"]), int(r["top"]), int(r["width"]), int(r["height"])) for r in rows}
    assert got == {
        ("P0706__1__0___0.png", 0, 0, 1024, 1024),
        ("P0706__1__87___0.png", 87, 0, 1024, 1024),
        ("P0706__1__0___158.png", 0, 158, 1024, 1024),
        ("P0706__1__87___158.png", 87, 158, 1024, 1024),
        ("P1888__1__0___0.png", 0, 0, 712, 557),
    }
    assert summary.ok and summary.images == 2 and summary.tiles == 5
    assert summary.objects == sum(len(read_dota(EXAMPLES / "labelTxt" / f"{s}.txt")) for s in ("P0706", "P1888"))


def test_examples_counts_match_shapely(tiled):
    """Per tile, the objects labelled are exactly those with IoF >= 0.7 against the tile's image area (shapely)."""
    dst, _ = tiled
    for r in read_manifest(dst):
        stem = r["tile"].split("__")[0]
        h, w = cv2.imread(str(EXAMPLES / "images" / f"{stem}.png")).shape[:2]
        x0, y0 = int(r["left"]), int(r["top"])
        win = box(x0, y0, min(x0 + 1024, w), min(y0 + 1024, h))
        expected = []
        for pts, cat in read_dota(EXAMPLES / "labelTxt" / f"{stem}.txt"):
            poly = Polygon(pts)
            poly = poly if poly.is_valid else poly.convex_hull
            inter = poly.intersection(win).area
            if inter > 0 and inter / poly.area >= 0.7:
                expected.append(V15.index(cat))
        for sub in ("labels", "obb/labels"):
            rows = read_rows(dst / sub / "train" / r["tile"].replace(".png", ".txt"))
            assert sorted(rows[:, 0].astype(int).tolist()) == sorted(expected), (sub, r["tile"])
        assert int(r["objects"]) == len(expected)


def test_examples_round_trip(tiled):
    """Labels of objects fully inside a tile map back to their source polygons (obb) and boxes (detect) within 1 px."""
    dst, _ = tiled
    for r in read_manifest(dst):
        stem = r["tile"].split("__")[0]
        x0, y0 = int(r["left"]), int(r["top"])
        inside = [p for p, _ in read_dota(EXAMPLES / "labelTxt" / f"{stem}.txt")
                  if p[:, 0].min() >= x0 and p[:, 1].min() >= y0 and p[:, 0].max() <= x0 + int(r["width"])
                  and p[:, 1].max() <= y0 + int(r["height"])]  # fmt: skip
        assert inside
        obb = read_rows(dst / "obb/labels/train" / r["tile"].replace(".png", ".txt"))[:, 1:].reshape(-1, 4, 2)
        back = obb * 1024 + (x0, y0)  # (K, 4, 2) source pixels
        det = read_rows(dst / "labels/train" / r["tile"].replace(".png", ".txt"))[:, 1:] * 1024
        det_xyxy = np.concatenate([det[:, :2] - det[:, 2:] / 2, det[:, 2:] / 2 + det[:, :2]], 1) + (x0, y0, x0, y0)
        for p in inside:
            assert np.abs(back - p).max(axis=(1, 2)).min() <= 1.0
            ref = np.concatenate([p.min(0), p.max(0)])
            assert np.abs(det_xyxy - ref).max(axis=1).min() <= 1.0


def test_examples_padding(tiled):
    """The small image's tile is 1024 x 1024: source pixels top-left (lossless PNG), zeros elsewhere."""
    dst, _ = tiled
    src = cv2.imread(str(EXAMPLES / "images" / "P1888.png"), cv2.IMREAD_UNCHANGED)
    tile = cv2.imread(str(dst / "images/train/P1888__1__0___0.png"), cv2.IMREAD_UNCHANGED)
    assert tile.shape[:2] == (1024, 1024)
    assert np.array_equal(tile[:557, :712], src[..., :3] if src.ndim == 3 else src)
    assert not tile[557:].any() and not tile[:, 712:].any()
    rows = read_rows(dst / "labels/train/P1888__1__0___0.txt")
    assert rows[:, 1:].max() <= 712 / 1024 + 1e-6  # labels normalised by the padded tile size


def test_examples_orphan_labels_reported(tiled):
    dst, summary = tiled
    orphans = [w for w in summary.warnings if "label file without image" in w]
    assert sorted(Path(w.split(":")[0]).stem for w in orphans) == ["P0770", "P1088", "P1234", "P2598", "P2709"]
    assert not summary.errors


def test_examples_ultralytics_accepts_dataset(tiled):
    """data.yaml names equal Ultralytics' DOTAv1.5.yaml; Ultralytics' own label checks accept every tile."""
    from ultralytics.data.utils import check_det_dataset, verify_image_label
    from ultralytics.utils import ROOT as UL_ROOT
    from ultralytics.utils import YAML

    dst, _ = tiled
    data = check_det_dataset(str(dst / "data.yaml"))
    assert list(data["names"].values()) == list(YAML.load(UL_ROOT / "cfg/datasets/DOTAv1.5.yaml")["names"].values())
    for sub, kpt in (("", False), ("obb/", False)):
        for im in sorted((dst / sub / "images/train").glob("*.png")):
            lb = dst / sub / "labels/train" / f"{im.stem}.txt"
            out = verify_image_label((str(im), str(lb), "", kpt, 16, 0, 0, False))
            assert out[8] == 0, out[-1]  # nc: corrupt count
            assert len(out[1]) == len(lb.read_text().splitlines())


# ----------------------------------------------------------------------------------------------------- pure geometry
@pytest.mark.parametrize("crop,stride", [(1024, 800), (256, 256), (100, 33)])
def test_windows_cover_every_pixel(crop, stride):
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
            for part, i, t in zip(wo.parts, objects.index[wo.index], wo.truncated):
                assert abs(part.area - Polygon(pts[i]).convex_hull.intersection(b).area) < 1e-6
                assert t == (not b.contains(Polygon(pts[i]).convex_hull))


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


# -------------------------------------------------------------------------------------------------- layouts, options
@pytest.mark.parametrize("layout", ["official", "ultralytics"])
def test_layouts_give_same_tiles(tmp_path, layout):
    flat = td.tile_dota(
        make_dataset(tmp_path / "flat", layout="flat"), tmp_path / "o1", crop=256, stride=200, workers=1
    )
    src = make_dataset(tmp_path / layout, layout=layout)
    s = td.tile_dota(src, tmp_path / "o2", crop=256, stride=200, workers=1)
    assert s.ok and s.tiles == flat.tiles and s.kept == flat.kept
    names = {p.name for p in (tmp_path / "o2/images").rglob("*.png")}
    assert names == {p.name for p in (tmp_path / "o1/images").rglob("*.png")}
    assert (tmp_path / "o2/images/val").is_dir() and "val: images/val" in (tmp_path / "o2/data.yaml").read_text()


def test_splits_tiled_by_separate_runs(tmp_path):
    """data.yaml lists every split tiled into DST, also by earlier runs with other --splits."""
    src = make_dataset(tmp_path / "src", layout="official")
    td.tile_dota(src, tmp_path / "out", splits=["val"], crop=256, stride=200, workers=1)
    assert "train: images/val" in (tmp_path / "out/data.yaml").read_text()  # only split so far
    td.tile_dota(src, tmp_path / "out", splits=["train"], crop=256, stride=200, workers=1)
    text = (tmp_path / "out/data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text
    assert {r["split"] for r in read_manifest(tmp_path / "out")} == {"train", "val"}


def test_ambiguous_and_empty_sources(tmp_path):
    with pytest.raises(td.TilingError, match="layouts tried"):
        td.tile_dota(tmp_path, tmp_path / "out")
    src = make_dataset(tmp_path / "both", n=1, layout="flat")
    make_dataset(src, n=1, layout="official")
    with pytest.raises(td.TilingError, match="ambiguous.*official and flat"):
        td.tile_dota(src, tmp_path / "out")
    (tmp_path / "empty/images").mkdir(parents=True)
    (tmp_path / "empty/labelTxt").mkdir()
    with pytest.raises(td.TilingError, match="no images and no label files"):
        td.tile_dota(tmp_path / "empty", tmp_path / "out")


def test_rates_scale_image_and_names(tmp_path):
    """Rate 0.5: the image is halved, offsets and names in scaled pixels, manifest keeps original offsets too."""
    src = tmp_path / "src"
    im = make_image(src / "images/R.png", 1200, 700, seed=3)
    (src / "labelTxt").mkdir()
    (src / "labelTxt/R.txt").write_text("1000 100 1100 100 1100 180 1000 180 plane 0\n")
    s = td.tile_dota(src, tmp_path / "out", crop=256, stride=200, rates=[0.5, 1.0], format="obb", workers=1)
    rows = {r["tile"]: r for r in read_manifest(tmp_path / "out")}
    half = [r for r in rows.values() if r["rate"] == "0.5"]
    assert {(int(r["left"]), int(r["top"])) for r in half} == {(x, y) for x in (0, 200, 344) for y in (0, 94)}
    assert all(float(r["left_orig"]) == 2 * int(r["left"]) for r in half)
    assert "R__0.5__344___0.png" in rows and s.ok
    lab = read_rows(tmp_path / "out/labels/train/R__0.5__344___0.txt")
    back = (lab[0, 1:].reshape(4, 2) * 256 + (344, 0)) / 0.5
    np.testing.assert_allclose(back, [[1000, 100], [1100, 100], [1100, 180], [1000, 180]], atol=1.0)
    tile = cv2.imread(str(tmp_path / "out/images/train/R__0.5__0___0.png"))
    ref = cv2.resize(im, (600, 350), interpolation=cv2.INTER_AREA)[:256, :256]
    assert np.array_equal(tile, ref)


def test_bad_label_lines_reported_rest_tiled(tmp_path):
    src = make_dataset(tmp_path / "src", n=2)
    lb = src / "labelTxt/G000.txt"
    lines = lb.read_text().splitlines()
    lines[3] = "1 2 3 4 5 6 7 plane 0"  # 8 tokens
    lines[4] = "a b c d e f g h ship 0"  # non-numeric
    lines[5] = "0 0 10 10 0 10 10 0 ship 0"  # bow tie: repaired
    lines[6] = "5 5 5 5 5 5 5 5 ship 0"  # degenerate
    lb.write_text("\n".join(lines) + "\n")
    s = td.tile_dota(src, tmp_path / "out", crop=256, stride=200, workers=1)
    assert s.ok and s.images_tiled == 2 and s.repaired == 1 and s.degenerate == 1
    assert any("G000.txt:4:" in w for w in s.warnings) and any("G000.txt:5: non-numeric" in w for w in s.warnings)
    assert any("degenerate" in w for w in s.warnings)
    assert s.objects == 60 - 2


def test_unknown_category_and_names(tmp_path):
    src = make_dataset(tmp_path / "src", n=1)
    with open(src / "labelTxt/G000.txt", "a") as f:
        f.write("0 0 30 0 30 30 0 30 airport 0\n")
    with pytest.raises(td.TilingError, match=r"G000\.txt:33: unknown category 'airport'"):
        td.tile_dota(src, tmp_path / "out", version="1.5", workers=1)
    assert not (tmp_path / "out").exists()  # nothing written
    s = td.tile_dota(src, tmp_path / "v2", version="2.0", crop=256, stride=200, workers=1)
    assert s.ok and '16: "airport"' in (tmp_path / "v2/data.yaml").read_text()
    td.tile_dota(src, tmp_path / "auto", names="auto", crop=256, stride=200, workers=1)
    text = (tmp_path / "auto/data.yaml").read_text()
    assert '0: "airport"' in text  # sorted tokens, verbatim
    (tmp_path / "names.txt").write_text("\n".join(["airport", *V15]) + "\n")
    td.tile_dota(src, tmp_path / "file", names=tmp_path / "names.txt", crop=256, stride=200, workers=1)
    assert '1: "plane"' in (tmp_path / "file/data.yaml").read_text()


def test_corrupt_image_and_image_without_labels(tmp_path):
    src = make_dataset(tmp_path / "src", n=3)
    (src / "images/G001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "labelTxt/G002.txt").unlink()
    rc = td.main([str(src), str(tmp_path / "out"), "--crop", "256", "--stride", "200", "--workers", "1"])
    assert rc == 1
    with pytest.raises(td.TilingError):  # dst now holds detect tiles; other options are refused
        td.tile_dota(src, tmp_path / "out", crop=256, stride=200, format="obb", workers=1)
    s = td.tile_dota(src, tmp_path / "out", crop=256, stride=200, workers=1)  # rerun: only the corrupt one again
    assert s.images_skipped == 2 and s.images_failed == 1 and "G001.png: not a readable image" in s.errors[0]
    assert any("G002.png: image without label file" in w for w in s.warnings)
    g2 = sorted((tmp_path / "out/labels/train").glob("G002__*.txt"))
    assert g2 and all(p.read_text() == "" for p in g2)  # background tiles


def test_pixel_formats(tmp_path):
    """16-bit -> 8-bit as value >> 8 (what OpenCV and Ultralytics read); gray stays gray; alpha is dropped."""
    src = tmp_path / "src"
    ims = {
        "g16": make_image(src / "images/g16.png", 300, 200, 1, channels=1, dtype=np.uint16),
        "c16": make_image(src / "images/c16.png", 300, 200, 2, channels=3, dtype=np.uint16),
        "g8": make_image(src / "images/g8.png", 300, 200, 3, channels=1),
        "rgba": make_image(src / "images/rgba.png", 300, 200, 4, channels=4),
    }
    (src / "labelTxt").mkdir()
    for k in ims:
        (src / f"labelTxt/{k}.txt").write_text("10 10 50 10 50 50 10 50 plane 0\n")
    assert td.tile_dota(src, tmp_path / "out", crop=256, stride=256, workers=1).ok
    for k, im in ims.items():
        tile = cv2.imread(str(tmp_path / f"out/images/train/{k}__1__0___0.png"), cv2.IMREAD_UNCHANGED)
        want = (im >> 8).astype(np.uint8) if im.dtype == np.uint16 else im[..., :3] if k == "rgba" else im
        assert tile.dtype == np.uint8 and np.array_equal(tile[:200, :256], want[:, :256])
    g16 = cv2.imread(str(src / "images/g16.png"), cv2.IMREAD_COLOR)  # Ultralytics' reader on the source
    assert np.array_equal(cv2.imread(str(tmp_path / "out/images/train/g16__1__0___0.png"))[:200, :256], g16[:, :256])
    assert td.tile_dota(src, tmp_path / "k16", crop=256, stride=256, keep_16bit=True, workers=1).ok
    tile = cv2.imread(str(tmp_path / "k16/images/train/c16__1__44___0.png"), cv2.IMREAD_UNCHANGED)
    assert tile.dtype == np.uint16 and np.array_equal(tile[:200], ims["c16"][:, 44:300])
    with pytest.raises(td.TilingError, match="PNG"):
        td.tile_dota(src, tmp_path / "bad", keep_16bit=True, ext="jpg")


def test_huge_image_no_decompression_bomb_refusal(tmp_path):
    """A 20000 x 20000 image (beyond Pillow's bomb limit) tiles; the worker count is computed from its header."""
    src = tmp_path / "src"
    im = np.zeros((20000, 20000), np.uint8)
    im[::997, :] = 255
    (src / "images").mkdir(parents=True)
    assert cv2.imwrite(str(src / "images/H.png"), im, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    del im
    (src / "labelTxt").mkdir()
    (src / "labelTxt/H.txt").write_text(
        "100 100 200 100 200 200 100 200 ship 0\n"  # inside the first tile
        "9990 9990 10010 9990 10010 10010 9990 10010 ship 0\n"  # a quarter in each tile: dropped four times
    )
    s = td.tile_dota(src, tmp_path / "out", crop=10000, stride=10000, ext="jpg")  # default workers: header read
    assert s.ok and s.tiles == 4 and s.kept == 1 and s.dropped == 4


def test_default_workers_respect_memory(tmp_path, monkeypatch):
    import psutil

    src = make_dataset(tmp_path / "src", n=3)
    jobs = [worker.ImageJob("train", p.stem, p, p.name, np.zeros((0, 4, 2)), np.zeros(0, int), True)
            for p in sorted((src / "images").glob("*.png"))]  # fmt: skip
    monkeypatch.setattr(td.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert td._default_workers(jobs, (1.0,)) == 3  # plenty of memory: one per image (capped by CPUs)

    class Tiny:
        available = 900 * 2**20  # room for two workers of ~400 MiB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny)
    assert td._default_workers(jobs, (1.0,)) == 1


def test_empty_and_difficult_drop(tmp_path):
    src = make_dataset(tmp_path / "src", n=2, size=(900, 700), objects=8)
    keep = td.tile_dota(src, tmp_path / "keep", crop=256, stride=256, workers=1)
    drop = td.tile_dota(src, tmp_path / "drop", crop=256, stride=256, empty="drop", difficult="drop", workers=1)
    n_diff = sum(ln.endswith(" 1") for p in (src / "labelTxt").glob("*.txt") for ln in p.read_text().splitlines())
    assert drop.difficult_dropped == n_diff > 0 and drop.tiles_empty == 0 and keep.tiles_empty > 0
    assert drop.tiles == len(list((tmp_path / "drop/images/train").glob("*.png")))
    assert all(p.read_text() for p in (tmp_path / "drop/labels/train").glob("*.txt"))


def test_cli_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        td.main(["--help"])
    assert e.value.code == 0 and "--shard" in capsys.readouterr().out
    assert td.main([str(tmp_path), str(tmp_path / "o"), "--crop", "256", "--stride", "300"]) == 2
    assert td.main([str(tmp_path), str(tmp_path / "o"), "--shard", "3/2"]) == 2


# ------------------------------------------------------------------------------------ restart, interrupts, workers
@pytest.fixture(scope="module")
def big_src(tmp_path_factory):
    """Enough work (10 images x 100 tiles) for a run that can be interrupted, and its uninterrupted reference."""
    root = tmp_path_factory.mktemp("big")
    src = make_dataset(root / "src", n=10, size=(1280, 1280), objects=40, vary=False)
    ref = root / "ref"
    assert td.tile_dota(src, ref, crop=128, stride=128, workers=1).ok
    return src, tree(ref)


ARGS = ("--crop", "128", "--stride", "128")


def test_restart_skips_finished(tmp_path, big_src):
    src, ref = big_src
    dst = tmp_path / "out"
    td.tile_dota(src, dst, crop=128, stride=128, workers=1)
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")}
    s = td.tile_dota(src, dst, crop=128, stride=128, workers=1)
    assert s.images_skipped == 10 and s.images_tiled == 0 and s.tiles == 1000
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")} == before
    assert tree(dst) == ref


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, big_src, monkeypatch):
    """Ctrl-C in the middle of an image: no temp files, manifest of finished images; the rerun completes exactly."""
    src, ref = big_src
    real, calls = worker.write_atomic, [0]

    def flaky(path, data, token):
        calls[0] += 1
        if calls[0] == 450:  # inside the third image
            (path.parent / f".{path.name}.{token}.tmp").write_bytes(b"partial")  # as if killed mid-write
            raise KeyboardInterrupt
        real(path, data, token)

    monkeypatch.setattr(worker, "write_atomic", flaky)
    with pytest.raises(td.TilingInterrupted) as e:
        td.tile_dota(src, tmp_path / "out", crop=128, stride=128, workers=1)
    s = e.value.summary
    assert s.interrupted and s.images_tiled == 2 and s.images_pending == 8 and not tmp_files(tmp_path / "out")
    assert len(read_manifest(tmp_path / "out")) == 200
    monkeypatch.setattr(worker, "write_atomic", real)
    s = td.tile_dota(src, tmp_path / "out", crop=128, stride=128, workers=1)
    assert s.ok and s.images_skipped == 2 and s.images_tiled == 8
    assert tree(tmp_path / "out") == ref


def _wait_for_records(dst: Path, proc: subprocess.Popen, n: int = 1) -> None:
    deadline = time.time() + 120
    while len(list((dst / ".tile_dota/done").glob("*/*.json"))) < n:
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.02)


def test_ctrl_c_subprocess_then_resume(tmp_path, big_src):
    """Ctrl-C to the process group (as a terminal does): exit 130 with the summary, no temp files; resume completes."""
    src, ref = big_src
    dst = tmp_path / "out"
    proc = run_cli(src, dst, *ARGS, "--workers", "2", start_new_session=True)
    _wait_for_records(dst, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "not reached" in out and not tmp_files(dst)
    assert td.tile_dota(src, dst, crop=128, stride=128, workers=2).ok
    assert tree(dst) == ref


def test_killed_worker_then_resume(tmp_path, big_src):
    """SIGKILL of a worker (as the OOM killer does): exit 1 naming the images in flight, no temp files; resume."""
    import psutil

    src, ref = big_src
    dst = tmp_path / "out"
    proc = run_cli(src, dst, *ARGS, "--workers", "2")
    _wait_for_records(dst, proc)
    me = psutil.Process(proc.pid)
    workers = [c for c in me.children() if c.cmdline() == me.cmdline()]  # forked pool workers, not helpers
    workers[0].kill()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "worker process died" in out and not tmp_files(dst)
    assert td.tile_dota(src, dst, crop=128, stride=128, workers=1).ok
    assert tree(dst) == ref


def test_spawn_workers_match_inline(tmp_path):
    """The pool works under the spawn start method (macOS, Windows) and gives the inline result."""
    src = make_dataset(tmp_path / "src", n=2)
    td.tile_dota(src, tmp_path / "a", crop=256, stride=200, workers=1)
    s = td.tile_dota(src, tmp_path / "b", crop=256, stride=200, workers=2, start_method="spawn")
    assert s.ok and s.images_tiled == 2 and tree(tmp_path / "b") == tree(tmp_path / "a")


def test_shards_in_any_order_equal_one_run(tmp_path, big_src):
    src, ref = big_src
    dst = tmp_path / "out"
    s3 = td.tile_dota(src, dst, crop=128, stride=128, shard="3/3", workers=1)
    s1 = td.tile_dota(src, dst, crop=128, stride=128, shard="1/3", workers=1)
    assert len(read_manifest(dst)) == 100 * (s1.images + s3.images)
    s2 = td.tile_dota(src, dst, crop=128, stride=128, shard="2/3", workers=1)
    assert (s1.images, s2.images, s3.images) == (4, 3, 3)
    assert tree(dst) == ref
    with pytest.raises(td.TilingError, match="--overwrite"):
        td.tile_dota(src, dst, crop=128, stride=128, shard="1/3", overwrite=True)
    assert td.tile_dota(src, dst, crop=256, stride=256, overwrite=True, workers=1).ok  # other options: replaced
    assert len(read_manifest(dst)) == 250 and not list((dst / "images/train").glob("*__128___*"))
