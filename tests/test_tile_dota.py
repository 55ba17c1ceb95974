"""Tests of the DOTA tiler end to end: ``ultralytics_fss.large_images.tile_dota`` and its command line.

Real DOTA examples from tests/data/dota-examples (windows, counts against shapely, round trip, padding, orphans) and
generated data for every reliability promise (layouts, bad data, pixel formats, restart, Ctrl-C, killed worker,
shards). The stages one by one are tested in test_dota_stages.py.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from ultralytics_fss.large_images import TilingError, TilingInterrupted, tile_dota
from ultralytics_fss.large_images.dota import DOTA_CATEGORIES
from ultralytics_fss.large_images.tiling import tile as tile_stage
from ultralytics_fss.large_images.tiling.config import TileConfig
from ultralytics_fss.large_images.tiling.records import ImageJob
from ultralytics_fss.large_images.tiling.run import default_workers

ROOT = Path(__file__).resolve().parents[1]
V15 = DOTA_CATEGORIES["1.5"]
ORPHANS = ["P0770", "P1088", "P1234", "P2598", "P2709"]  # example label files without an image


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


def run_cli(env: dict[str, str], *args, **kw) -> subprocess.Popen:
    """Start ``python -m ultralytics_fss.tile_dota ARGS`` in the repository root, output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "ultralytics_fss.tile_dota", *map(str, args)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- real DOTA examples
@pytest.fixture(scope="module")
def tiled(tmp_path_factory, dota_examples):
    """The DOTA examples tiled once (detect at the root, obb in DST/obb): (dst, summary)."""
    dst = tmp_path_factory.mktemp("examples") / "tiles"
    summary = tile_dota(dota_examples, dst, format="both", workers=1)
    return dst, summary


def test_examples_windows(tiled, dota_examples):
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
    labels = dota_examples / "labelTxt"
    assert summary.objects == sum(len(read_dota(labels / f"{s}.txt")) for s in ("P0706", "P1888")) > 500


def test_examples_counts_match_shapely(tiled, dota_examples):
    """Per tile, the objects labelled are exactly those with IoF >= 0.7 against the tile's image area (shapely)."""
    dst, _ = tiled
    manifest = read_manifest(dst)
    assert len(manifest) == 5
    for r in manifest:
        stem = r["tile"].split("__")[0]
        h, w = cv2.imread(str(dota_examples / "images" / f"{stem}.png")).shape[:2]
        x0, y0 = int(r["left"]), int(r["top"])
        win = box(x0, y0, min(x0 + 1024, w), min(y0 + 1024, h))
        expected = []
        for pts, cat in read_dota(dota_examples / "labelTxt" / f"{stem}.txt"):
            poly = Polygon(pts)
            poly = poly if poly.is_valid else poly.convex_hull
            inter = poly.intersection(win).area
            if inter > 0 and inter / poly.area >= 0.7:
                expected.append(V15.index(cat))
        assert expected, r["tile"]  # every example tile holds objects: the comparison below is never empty
        for sub in ("labels", "obb/labels"):
            rows = read_rows(dst / sub / "train" / r["tile"].replace(".png", ".txt"))
            assert sorted(rows[:, 0].astype(int).tolist()) == sorted(expected), (sub, r["tile"])
        assert int(r["objects"]) == len(expected)


def test_examples_round_trip(tiled, dota_examples):
    """Labels of objects fully inside a tile map back to their source polygons (obb) and boxes (detect) within 1 px."""
    dst, _ = tiled
    manifest = read_manifest(dst)
    assert len(manifest) == 5
    for r in manifest:
        stem = r["tile"].split("__")[0]
        x0, y0 = int(r["left"]), int(r["top"])
        inside = [p for p, _ in read_dota(dota_examples / "labelTxt" / f"{stem}.txt")
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


def test_examples_padding(tiled, dota_examples):
    """The small image's tile is 1024 x 1024: source pixels top-left (lossless PNG), zeros elsewhere."""
    dst, _ = tiled
    src = cv2.imread(str(dota_examples / "images" / "P1888.png"), cv2.IMREAD_UNCHANGED)
    tile = cv2.imread(str(dst / "images/train/P1888__1__0___0.png"), cv2.IMREAD_UNCHANGED)
    assert tile.shape[:2] == (1024, 1024)
    assert np.array_equal(tile[:557, :712], src[..., :3] if src.ndim == 3 else src)
    assert not tile[557:].any() and not tile[:, 712:].any()
    rows = read_rows(dst / "labels/train/P1888__1__0___0.txt")
    assert rows[:, 1:].max() <= 712 / 1024 + 1e-6  # labels normalised by the padded tile size


def test_examples_orphan_labels_reported(tiled):
    """The five label files without an image are each reported once and skipped (no tile, no error)."""
    dst, summary = tiled
    orphans = [w for w in summary.warnings if "label file without image" in w]
    assert sorted(Path(w.split(":")[0]).stem for w in orphans) == ORPHANS
    assert not summary.errors
    assert {r["tile"].split("__")[0] for r in read_manifest(dst)} == {"P0706", "P1888"}


def test_train_only_source_warns_that_val_is_train(tiled):
    """The samples have a train split only: data.yaml's val points at the train tiles, said in a warning of the run
    (the closing log lists it) and in a comment of data.yaml."""
    dst, summary = tiled
    (warning,) = [w for w in summary.warnings if "no val split" in w]
    assert warning.startswith(str(dst / "data.yaml")) and "validation will run on the train tiles" in warning
    for root in (dst, dst / "obb"):
        text = (root / "data.yaml").read_text()
        assert "val: images/train" in text and "# no val split was tiled: validation runs on the train tiles" in text


def test_examples_ultralytics_accepts_dataset(tiled):
    """data.yaml names equal Ultralytics' DOTAv1.5.yaml; Ultralytics' own label checks accept every tile."""
    from ultralytics.data.utils import check_det_dataset, verify_image_label
    from ultralytics.utils import ROOT as UL_ROOT
    from ultralytics.utils import YAML

    dst, _ = tiled
    data = check_det_dataset(str(dst / "data.yaml"))
    assert list(data["names"].values()) == list(YAML.load(UL_ROOT / "cfg/datasets/DOTAv1.5.yaml")["names"].values())
    for sub, kpt in (("", False), ("obb/", False)):
        images = sorted((dst / sub / "images/train").glob("*.png"))
        assert len(images) == 5, sub
        for im in images:
            lb = dst / sub / "labels/train" / f"{im.stem}.txt"
            out = verify_image_label((str(im), str(lb), "", kpt, 16, 0, 0, False))
            assert out[8] == 0, out[-1]  # nc: corrupt count
            assert len(out[1]) == len(lb.read_text().splitlines())


# -------------------------------------------------------------------------------------------------- layouts, options
@pytest.mark.parametrize("layout", ["official", "ultralytics"])
def test_layouts_give_same_tiles(tmp_path, layout):
    """The same images and labels in the official or Ultralytics layout give the flat layout's tiles and labels."""
    flat = tile_dota(
        make_dataset(tmp_path / "flat", layout="flat"), tmp_path / "o1", crop=256, stride=200, workers=1
    )
    src = make_dataset(tmp_path / layout, layout=layout)
    s = tile_dota(src, tmp_path / "o2", crop=256, stride=200, workers=1)
    assert not [w for w in s.warnings if "no val split" in w]  # train + val: val is val
    assert s.ok and s.tiles == flat.tiles and s.kept == flat.kept
    names = {p.name for p in (tmp_path / "o2/images").rglob("*.png")}
    assert names == {p.name for p in (tmp_path / "o1/images").rglob("*.png")}
    assert (tmp_path / "o2/images/val").is_dir() and "val: images/val" in (tmp_path / "o2/data.yaml").read_text()


def test_splits_tiled_by_separate_runs(tmp_path):
    """data.yaml lists every split tiled into DST, also by earlier runs with other --splits."""
    src = make_dataset(tmp_path / "src", layout="official")
    tile_dota(src, tmp_path / "out", splits=["val"], crop=256, stride=200, workers=1)
    assert "train: images/val" in (tmp_path / "out/data.yaml").read_text()  # only split so far
    tile_dota(src, tmp_path / "out", splits=["train"], crop=256, stride=200, workers=1)
    text = (tmp_path / "out/data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text
    assert {r["split"] for r in read_manifest(tmp_path / "out")} == {"train", "val"}


def test_ambiguous_and_empty_sources(tmp_path):
    """No layout, two layouts at once, or a layout without files: a TilingError that says which."""
    with pytest.raises(TilingError, match="layouts tried"):
        tile_dota(tmp_path, tmp_path / "out")
    src = make_dataset(tmp_path / "both", n=1, layout="flat")
    make_dataset(src, n=1, layout="official")
    with pytest.raises(TilingError, match="ambiguous.*official and flat"):
        tile_dota(src, tmp_path / "out")
    (tmp_path / "empty/images").mkdir(parents=True)
    (tmp_path / "empty/labelTxt").mkdir()
    with pytest.raises(TilingError, match="no images and no label files"):
        tile_dota(tmp_path / "empty", tmp_path / "out")


def test_rates_scale_image_and_names(tmp_path):
    """Rate 0.5: the image is halved, offsets and names in scaled pixels, manifest keeps original offsets too."""
    src = tmp_path / "src"
    im = make_image(src / "images/R.png", 1200, 700, seed=3)
    (src / "labelTxt").mkdir()
    (src / "labelTxt/R.txt").write_text("1000 100 1100 100 1100 180 1000 180 plane 0\n")
    s = tile_dota(src, tmp_path / "out", crop=256, stride=200, rates=[0.5, 1.0], format="obb", workers=1)
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
    """Malformed lines are reported with file and line and skipped; bow ties repaired, degenerate polygons dropped."""
    src = make_dataset(tmp_path / "src", n=2)
    lb = src / "labelTxt/G000.txt"
    lines = lb.read_text().splitlines()
    lines[3] = "1 2 3 4 5 6 7 plane 0"  # 7 coordinates
    lines[4] = "a b c d e f g h ship 0"  # non-numeric
    lines[5] = "0 0 10 10 0 10 10 0 ship 0"  # bow tie: repaired
    lines[6] = "5 5 5 5 5 5 5 5 ship 0"  # degenerate
    lb.write_text("\n".join(lines) + "\n")
    s = tile_dota(src, tmp_path / "out", crop=256, stride=200, workers=1)
    assert s.ok and s.images_tiled == 2 and s.repaired == 1 and s.degenerate == 1
    assert any("G000.txt:4: 7 coordinates before the category 'plane'" in w for w in s.warnings)
    assert any("G000.txt:5: non-numeric coordinate 'a'" in w for w in s.warnings)
    assert any("degenerate" in w for w in s.warnings)
    assert s.objects == 60 - 2


def test_unknown_category_and_names(tmp_path):
    """An unknown category stops the run before DST exists; --version 2.0, names=auto or a names file accept it."""
    src = make_dataset(tmp_path / "src", n=1)
    with open(src / "labelTxt/G000.txt", "a") as f:
        f.write("0 0 30 0 30 30 0 30 airport 0\n")
    with pytest.raises(TilingError, match=r"G000\.txt:33: unknown category 'airport'"):
        tile_dota(src, tmp_path / "out", version="1.5", workers=1)
    assert not (tmp_path / "out").exists()  # nothing written
    s = tile_dota(src, tmp_path / "v2", version="2.0", crop=256, stride=200, workers=1)
    assert s.ok and '16: "airport"' in (tmp_path / "v2/data.yaml").read_text()
    tile_dota(src, tmp_path / "auto", names="auto", crop=256, stride=200, workers=1)
    text = (tmp_path / "auto/data.yaml").read_text()
    assert '0: "airport"' in text  # sorted tokens, verbatim
    (tmp_path / "names.txt").write_text("\n".join(["airport", *V15]) + "\n")
    tile_dota(src, tmp_path / "file", names=tmp_path / "names.txt", crop=256, stride=200, workers=1)
    assert '1: "plane"' in (tmp_path / "file/data.yaml").read_text()


def test_corrupt_image_and_image_without_labels(tmp_path):
    """CLI exit 1 for a corrupt image, the others tiled; other options refused; an image without labels: background."""
    from ultralytics_fss.tile_dota import main  # the command line's exit status

    src = make_dataset(tmp_path / "src", n=3)
    (src / "images/G001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "labelTxt/G002.txt").unlink()
    rc = main([str(src), str(tmp_path / "out"), "--crop", "256", "--stride", "200", "--workers", "1"])
    assert rc == 1
    with pytest.raises(TilingError):  # dst now holds detect tiles; other options are refused
        tile_dota(src, tmp_path / "out", crop=256, stride=200, format="obb", workers=1)
    s = tile_dota(src, tmp_path / "out", crop=256, stride=200, workers=1)  # rerun: only the corrupt one again
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
    assert tile_dota(src, tmp_path / "out", crop=256, stride=256, workers=1).ok
    for k, im in ims.items():
        tile = cv2.imread(str(tmp_path / f"out/images/train/{k}__1__0___0.png"), cv2.IMREAD_UNCHANGED)
        want = (im >> 8).astype(np.uint8) if im.dtype == np.uint16 else im[..., :3] if k == "rgba" else im
        assert tile.dtype == np.uint8 and np.array_equal(tile[:200, :256], want[:, :256])
    g16 = cv2.imread(str(src / "images/g16.png"), cv2.IMREAD_COLOR)  # Ultralytics' reader on the source
    assert np.array_equal(cv2.imread(str(tmp_path / "out/images/train/g16__1__0___0.png"))[:200, :256], g16[:, :256])
    assert tile_dota(src, tmp_path / "k16", crop=256, stride=256, keep_16bit=True, workers=1).ok
    tile = cv2.imread(str(tmp_path / "k16/images/train/c16__1__44___0.png"), cv2.IMREAD_UNCHANGED)
    assert tile.dtype == np.uint16 and np.array_equal(tile[:200], ims["c16"][:, 44:300])
    with pytest.raises(TilingError, match="PNG"):
        tile_dota(src, tmp_path / "bad", keep_16bit=True, ext="jpg")


@pytest.mark.slow
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
    s = tile_dota(src, tmp_path / "out", crop=10000, stride=10000, ext="jpg")  # default workers: header read
    assert s.ok and s.tiles == 4 and s.kept == 1 and s.dropped == 4


def test_default_workers_respect_memory(tmp_path, monkeypatch):
    """One worker per image when memory allows (capped by CPUs); fewer when the largest image would not fit."""
    import psutil

    src = make_dataset(tmp_path / "src", n=3)
    jobs = [ImageJob("train", p.stem, p, p.name, np.zeros((0, 4, 2)), np.zeros(0, int), True)
            for p in sorted((src / "images").glob("*.png"))]  # fmt: skip
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_workers(jobs, (1.0,)) == 3  # plenty of memory: one per image (capped by CPUs)

    class Tiny:
        available = 900 * 2**20  # room for two workers of ~400 MiB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny)
    assert default_workers(jobs, (1.0,)) == 1


def test_empty_and_difficult_drop(tmp_path):
    """empty="drop" writes no tile without objects; difficult="drop" leaves out (and counts) every difficult object."""
    src = make_dataset(tmp_path / "src", n=2, size=(900, 700), objects=8)
    keep = tile_dota(src, tmp_path / "keep", crop=256, stride=256, workers=1)
    drop = tile_dota(src, tmp_path / "drop", crop=256, stride=256, empty="drop", difficult="drop", workers=1)
    n_diff = sum(ln.endswith(" 1") for p in (src / "labelTxt").glob("*.txt") for ln in p.read_text().splitlines())
    assert drop.difficult_dropped == n_diff > 0 and drop.tiles_empty == 0 and keep.tiles_empty > 0
    assert drop.tiles == len(list((tmp_path / "drop/images/train").glob("*.png")))
    assert all(p.read_text() for p in (tmp_path / "drop/labels/train").glob("*.txt"))


def test_cli_help_and_bad_arguments(tmp_path, capsys, caplog):
    """--help exits 0 and lists --shard; impossible options and a bad shard exit 2 before anything is written."""
    from ultralytics_fss.tile_dota import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "--shard" in capsys.readouterr().out
    make_dataset(tmp_path / "src", n=1)  # a usable source: the options alone are at fault
    assert main([str(tmp_path / "src"), str(tmp_path / "o"), "--crop", "256", "--stride", "300"]) == 2
    assert "stride must be an integer in 1..crop (256), got 300" in caplog.text
    assert main([str(tmp_path / "src"), str(tmp_path / "o"), "--shard", "3/2"]) == 2
    assert "--shard K/N needs 1 <= K <= N, got 3/2" in caplog.text
    assert not (tmp_path / "o").exists()


def test_crop_alone_takes_a_stride_that_follows_it(tmp_path, caplog):
    """``--crop 512`` alone tiles every 400 px (the paper's 800/1024 of the crop) instead of failing on stride 800;
    a stride larger than the crop is refused with the default that would fit."""
    from ultralytics_fss.tile_dota import main

    src = make_dataset(tmp_path / "src", n=1, size=(900, 500), objects=5)
    assert main([str(src), str(tmp_path / "out"), "--crop", "512", "--workers", "1"]) == 0
    offsets = {(int(r["left"]), int(r["top"])) for r in read_manifest(tmp_path / "out")}
    assert offsets == {(0, 0), (388, 0)}  # 900 wide: starts 0, 400 -> moved back to end at the edge (900 - 512)
    assert TileConfig(crop=512).stride == 400 and TileConfig(crop=256).stride == 200 and TileConfig().stride == 800
    assert main([str(src), str(tmp_path / "o"), "--crop", "512", "--stride", "800"]) == 2
    assert "got 800 (leave it out for 400, the default for this crop)" in caplog.text
    assert not (tmp_path / "o").exists()


def test_cli_defaults_and_reexports_are_the_package_s():
    """The CLI's defaults are TileConfig's; ``ultralytics_fss.tile_dota`` re-exports the package's public names."""
    import ultralytics_fss.large_images as dota
    import ultralytics_fss.tile_dota as cli
    from ultralytics_fss.large_images.tiling.config import DEFAULTS

    a = cli.build_parser().parse_args(["src", "dst"])
    assert (a.crop, tuple(a.rates), a.iof, a.format) == (DEFAULTS.crop, DEFAULTS.rates, DEFAULTS.iof, DEFAULTS.format)
    assert a.stride is None and DEFAULTS.stride == 800  # None: TileConfig's default for the crop
    assert (a.difficult, a.empty, a.ext, a.keep_16bit) == (DEFAULTS.difficult, DEFAULTS.empty, DEFAULTS.ext, False)
    tiler = ["TileSummary", "TilingError", "TilingInterrupted", "tile_dota"]  # the merge-back's are not re-exported
    assert set(tiler) <= set(dota.__all__)
    assert all(getattr(cli, name) is getattr(dota, name) for name in tiler)


# ------------------------------------------------------------------------------------ restart, interrupts, workers
@pytest.fixture(scope="module")
def big_src(tmp_path_factory):
    """Enough work (10 images x 100 tiles) for a run that can be interrupted, and its uninterrupted reference."""
    root = tmp_path_factory.mktemp("big")
    src = make_dataset(root / "src", n=10, size=(1280, 1280), objects=40, vary=False)
    ref = root / "ref"
    assert tile_dota(src, ref, crop=128, stride=128, workers=1).ok
    return src, tree(ref)


ARGS = ("--crop", "128", "--stride", "128")


@pytest.mark.slow
def test_restart_skips_finished(tmp_path, big_src):
    """A rerun over a finished DST tiles nothing, rewrites no tile and leaves exactly one run's tree."""
    src, ref = big_src
    dst = tmp_path / "out"
    tile_dota(src, dst, crop=128, stride=128, workers=1)
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")}
    s = tile_dota(src, dst, crop=128, stride=128, workers=1)
    assert s.images_skipped == 10 and s.images_tiled == 0 and s.tiles == 1000
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")} == before
    assert tree(dst) == ref


@pytest.mark.slow
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, big_src, monkeypatch):
    """Ctrl-C in the middle of an image: no temp files, manifest of finished images; the rerun completes exactly."""
    src, ref = big_src
    real, calls = tile_stage.write_atomic, [0]

    def flaky(path, data, token):
        calls[0] += 1
        if calls[0] == 450:  # inside the third image (200 tile and label writes per image)
            (path.parent / f".{path.name}.{token}.tmp").write_bytes(b"partial")  # as if killed mid-write
            raise KeyboardInterrupt
        real(path, data, token)

    monkeypatch.setattr(tile_stage, "write_atomic", flaky)
    with pytest.raises(TilingInterrupted) as e:
        tile_dota(src, tmp_path / "out", crop=128, stride=128, workers=1)
    s = e.value.summary
    assert calls[0] == 450  # the interrupt did happen inside the run
    assert s.interrupted and s.images_tiled == 2 and s.images_pending == 8 and not tmp_files(tmp_path / "out")
    assert len(read_manifest(tmp_path / "out")) == 200
    monkeypatch.setattr(tile_stage, "write_atomic", real)
    s = tile_dota(src, tmp_path / "out", crop=128, stride=128, workers=1)
    assert s.ok and s.images_skipped == 2 and s.images_tiled == 8
    assert tree(tmp_path / "out") == ref


def _wait_for_records(dst: Path, proc: subprocess.Popen, n: int = 1) -> None:
    """Wait until ``n`` images of a running CLI are finished (their records exist); fail if it ends first."""
    deadline = time.time() + 120
    while len(list((dst / ".tile_dota/done").glob("*/*.json"))) < n:
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.02)


@pytest.mark.slow
def test_ctrl_c_subprocess_then_resume(tmp_path, big_src, repo_env):
    """Ctrl-C to the process group (as a terminal does): exit 130 with the summary, no temp files; resume completes."""
    src, ref = big_src
    dst = tmp_path / "out"
    proc = run_cli(repo_env, src, dst, *ARGS, "--workers", "2", start_new_session=True)
    _wait_for_records(dst, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "not reached" in out and not tmp_files(dst)
    assert tile_dota(src, dst, crop=128, stride=128, workers=2).ok
    assert tree(dst) == ref


@pytest.mark.slow
def test_killed_worker_then_resume(tmp_path, big_src, repo_env):
    """SIGKILL of a worker (as the OOM killer does): exit 1 naming the images in flight, no temp files; resume."""
    import psutil

    src, ref = big_src
    dst = tmp_path / "out"
    proc = run_cli(repo_env, src, dst, *ARGS, "--workers", "2")
    _wait_for_records(dst, proc)
    me = psutil.Process(proc.pid)
    workers = [c for c in me.children() if c.cmdline() == me.cmdline()]  # forked pool workers, not helpers
    workers[0].kill()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "worker process died" in out and not tmp_files(dst)
    assert re.search(r"while tiling one of: .*G0\d\d\.png", out), out  # the images it may have held, by name
    assert tile_dota(src, dst, crop=128, stride=128, workers=1).ok
    assert tree(dst) == ref


@pytest.mark.slow
def test_spawn_workers_match_inline(tmp_path):
    """The pool works under the spawn start method (macOS, Windows) and gives the inline result."""
    src = make_dataset(tmp_path / "src", n=2)
    tile_dota(src, tmp_path / "a", crop=256, stride=200, workers=1)
    s = tile_dota(src, tmp_path / "b", crop=256, stride=200, workers=2, start_method="spawn")
    assert s.ok and s.images_tiled == 2 and tree(tmp_path / "b") == tree(tmp_path / "a")


@pytest.mark.slow
def test_shards_in_any_order_equal_one_run(tmp_path, big_src):
    """Shards 3, 1, 2 of 3 into one DST give exactly one run's tree; --overwrite is refused for a shard."""
    src, ref = big_src
    dst = tmp_path / "out"
    s3 = tile_dota(src, dst, crop=128, stride=128, shard="3/3", workers=1)
    s1 = tile_dota(src, dst, crop=128, stride=128, shard="1/3", workers=1)
    assert len(read_manifest(dst)) == 100 * (s1.images + s3.images)
    s2 = tile_dota(src, dst, crop=128, stride=128, shard="2/3", workers=1)
    assert (s1.images, s2.images, s3.images) == (4, 3, 3)
    assert tree(dst) == ref
    with pytest.raises(TilingError, match="--overwrite"):
        tile_dota(src, dst, crop=128, stride=128, shard="1/3", overwrite=True)
    assert tile_dota(src, dst, crop=256, stride=256, overwrite=True, workers=1).ok  # other options: replaced
    assert len(read_manifest(dst)) == 250 and not list((dst / "images/train").glob("*__128___*"))


def test_error_lines_carry_one_error_prefix(tmp_path, caplog):
    """Ultralytics' LOGGER.error already prints "ERROR ❌": the DOTA tools' messages add only their own prefix
    (``tile_dota: ...``), for a failed image, bad arguments and bad input to merge_dota and predict_tiled."""
    import logging

    from ultralytics_fss.merge_dota import main as merge_main
    from ultralytics_fss.predict_tiled import main as predict_main
    from ultralytics_fss.tile_dota import main as tile_main

    src = make_dataset(tmp_path / "src", n=2)
    (src / "images/G001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert tile_main([str(src), str(tmp_path / "out"), "--crop", "256", "--stride", "200", "--workers", "1"]) == 1
    assert tile_main([str(src), str(tmp_path / "o"), "--crop", "256", "--stride", "300"]) == 2
    assert merge_main([str(tmp_path / "nowhere"), "--pred-dir", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    assert predict_main(["--model", "yolo11n.pt", "--source", str(tmp_path / "none.png")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    tools = ("tile_dota: ", "merge_dota: ", "predict_tiled: ")
    assert len(errors) == 4 and [sum(t in e for e in errors) for t in tools] == [2, 1, 1]
    assert all(e.count("ERROR") <= 1 for e in errors), errors  # Ultralytics' formatter may have added its own
