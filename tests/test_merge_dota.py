"""Tests of the DOTA merge-back and metric: ``ultralytics_fss.large_images.merge_dota`` and ``python -m ...merge_dota``.

- The metric against hand-computed cases (a false positive, a duplicate, a difficult object, an empty class, the
  +1-pixel box convention) and against a slow loop reference of the devkit's ``voc_eval`` on random cases.
- Polygon NMS against a loop reference.
- Round trip on the shipped DOTA samples: ground truth -> tiles -> predictions with confidence 1 -> merge -> score.
- Bad input: each case names the problem and leaves OUT unchanged; the command line end to end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Polygon

from ultralytics_fss.large_images import MergeError, merge_dota, tile_dota
from ultralytics_fss.large_images.dota import DOTA_CATEGORIES
from ultralytics_fss.large_images.merge_back.metric import GroundTruth, evaluate_class, evaluate_task_files, voc07_ap
from ultralytics_fss.large_images.merge_back.nms import (
    Detections,
    classwise_nms,
    nms_boxes,
    nms_polygons,
    tile_to_image,
)
from ultralytics_fss.large_images.merge_back.tile_predictions import labels_as_predictions

ROOT = Path(__file__).resolve().parents[1]
V15 = DOTA_CATEGORIES["1.5"]
SHIP, PLANE, HARBOR = V15.index("ship"), V15.index("plane"), V15.index("harbor")


# ------------------------------------------------------------------------------------------------------------ helpers
def square(x: float, y: float, s: float) -> list[float]:
    """Corners of an axis-aligned square, DOTA order (clockwise from the top-left)."""
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def gt_of(objects: list[tuple[list[float], int, bool]]) -> GroundTruth:
    polys = np.array([o[0] for o in objects], float).reshape(-1, 8)
    return GroundTruth(polys, np.array([o[1] for o in objects], np.int64), np.array([o[2] for o in objects], bool))


def write_task(folder: Path, task: str, name: str, rows: list[tuple[str, float, list[float]]]) -> None:
    text = "".join(f"{im} {s} " + " ".join(map(str, box)) + "\n" for im, s, box in rows)
    (folder / f"{task}_{name}.txt").write_text(text)


def reference_voc_eval(ids, scores, boxes, gt, c, iou_fn) -> float:
    """The devkit's voc_eval written as a plain loop (rules of ultralytics_fss.large_images.merge_back.metric), VOC07
    11-point AP."""
    npos = sum(int(((g.cls == c) & ~g.difficult).sum()) for g in gt.values())
    used = {im: np.zeros(len(g.cls), bool) for im, g in gt.items()}
    tp, fp = [], []
    for d in np.argsort(-scores):
        g = gt[ids[d]]
        best, jbest = -np.inf, -1
        for j in range(len(g.cls)):
            if g.cls[j] == c:
                v = iou_fn(boxes[d], g.polys[j])
                if v > best:
                    best, jbest = v, j
        if best > 0.5:
            if g.difficult[jbest]:
                tp.append(0), fp.append(0)
            elif not used[ids[d]][jbest]:
                used[ids[d]][jbest] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        else:
            tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, np.finfo(float).eps)
    return sum((prec[rec >= t].max() if (rec >= t).any() else 0.0) for t in np.arange(0.0, 1.1, 0.1)) / 11


def poly_iou(a, b) -> float:
    """Exact polygon IoU; a bow-tie corner order is read as the hull of its corners (as the tiler repairs it)."""
    pa, pb = (Polygon(np.reshape(p, (4, 2))) for p in (a, b))
    pa, pb = (p if p.is_valid else p.convex_hull for p in (pa, pb))
    inter = pa.intersection(pb).area
    return inter / (pa.area + pb.area - inter)


def hbb_iou_plus1(det, poly) -> float:
    xs, ys = np.trunc(poly[0::2]), np.trunc(poly[1::2])
    g = [xs.min(), ys.min(), xs.max(), ys.max()]
    iw = max(min(det[2], g[2]) - max(det[0], g[0]) + 1, 0)
    ih = max(min(det[3], g[3]) - max(det[1], g[1]) + 1, 0)
    inter = iw * ih
    return inter / ((det[2] - det[0] + 1) * (det[3] - det[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - inter)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------- metric, by hand
def test_metric_hand_computed_cases(tmp_path):
    """Ships: TP, duplicate, false positive, detection of a difficult ship, TP; a plane never detected; a harbor
    detected but absent from the labels."""
    gt = {
        "A": gt_of([(square(0, 0, 10), SHIP, False), (square(100, 100, 10), SHIP, False),
                    (square(200, 200, 10), SHIP, True)]),
        "B": gt_of([(square(0, 0, 50), PLANE, False)]),
    }  # fmt: skip
    write_task(tmp_path, "Task1", "ship", [
        ("A", 0.9, square(0, 0, 10)),      # true positive
        ("A", 0.8, square(1, 0, 10)),      # duplicate of the same ship: false positive
        ("A", 0.7, square(500, 500, 10)),  # nothing there: false positive
        ("A", 0.6, square(200, 200, 10)),  # the difficult ship: counts neither way
        ("A", 0.5, square(101, 101, 10)),  # second ship (IoU 81 / 119 = 0.68): true positive
    ])  # fmt: skip
    write_task(tmp_path, "Task1", "harbor", [("B", 0.9, square(0, 0, 50))])  # no harbor in the labels
    m = evaluate_task_files(tmp_path, "Task1", V15, gt)
    # recall 0.5, 0.5, 0.5, (ignored), 1.0 at precision 1, 1/2, 1/3, 1/2: 6 recall points at precision 1 (0-0.5),
    # 5 at 1/2
    assert m["AP"]["ship"] == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)
    assert m["AP"]["plane"] == 0.0  # objects but no detection: AP 0, counted in the mean
    assert "harbor" not in m["AP"] and m["objects"]["harbor"] == 0  # no objects: not a class of the mean
    assert m["objects"]["ship"] == 2  # the difficult ship is not counted
    assert m["mAP"] == pytest.approx((8.5 / 11 + 0.0) / 2)


def test_metric_duplicate_of_difficult_and_iou_exactly_half(tmp_path):
    """Two detections of a difficult object both count neither way; IoU exactly 0.5 is not a match (> 0.5)."""
    gt = {"A": gt_of([(square(0, 0, 10), SHIP, True), (square(50, 0, 10), SHIP, False)])}
    ids = np.array(["A", "A", "A"])
    boxes = np.array([square(0, 0, 10), square(0, 0, 10), [50, 0, 60, 0, 60, 5, 50, 5]], float)  # last: IoU 50/100
    ap, npos = evaluate_class(ids, np.array([0.9, 0.8, 0.7]), boxes, gt, SHIP, "Task1")
    assert npos == 1 and ap == 0.0  # only a false positive is counted
    boxes[2] = [50, 0, 60, 0, 60, 5.1, 50, 5.1]  # IoU 0.51: now a match
    assert evaluate_class(ids, np.array([0.9, 0.8, 0.7]), boxes, gt, SHIP, "Task1") == (1.0, 1)


def test_task2_plus_one_pixel_convention_and_truncated_hull():
    """Task2 compares with the object's axis-aligned hull truncated to integers, areas counted with +1 pixel."""
    poly = [0.7, 0.7, 9.9, 0.7, 9.9, 9.9, 0.7, 9.9]  # hull truncated: (0, 0, 9, 9), 10 x 10 "pixels"
    gt = {"A": gt_of([(poly, SHIP, False)])}
    ids, s = np.array(["A"]), np.array([0.9])
    # (0, 0, 9, 4.2): +1 convention 10 * 5.2 / 100 = 0.52 > 0.5 (plain geometry would give 37.8 / 81 = 0.47)
    assert evaluate_class(ids, s, np.array([[0, 0, 9, 4.2]]), gt, SHIP, "Task2") == (1.0, 1)
    assert evaluate_class(ids, s, np.array([[0, 0, 9, 3.9]]), gt, SHIP, "Task2") == (0.0, 1)  # 0.49


@pytest.mark.parametrize("task", ["Task1", "Task2"])
def test_metric_matches_loop_reference_on_random_cases(task):
    """Vectorised matching equals the plain loop on crowded random scenes (ties in score included)."""
    rng = np.random.default_rng(0)
    for case in range(20):
        gt, ids, boxes, scores = {}, [], [], []
        for im in ("a", "b", "c"):
            n = int(rng.integers(0, 12))
            centres, sizes = rng.uniform(0, 120, (n, 2)), rng.uniform(5, 30, (n, 2))
            objs = [
                (square(*c, sz[0]), int(rng.integers(0, 2)), bool(rng.random() < 0.2)) for c, sz in zip(centres, sizes)
            ]
            gt[im] = gt_of(objs)
            for o in objs + objs[: n // 2]:  # detections near objects (some twice) plus clutter
                if rng.random() < 0.8:
                    ids.append(im)
                    boxes.append(np.array(o[0]) + rng.normal(0, 2, 8))
                    scores.append(round(float(rng.random()), 1))  # ties
            for _ in range(int(rng.integers(0, 5))):
                ids.append(im)
                boxes.append(np.array(square(*rng.uniform(0, 120, 2), 10)))
                scores.append(round(float(rng.random()), 1))
        ids, scores = np.array(ids, dtype=str), np.array(scores)
        boxes = np.array(boxes).reshape(-1, 8)
        if task == "Task2":
            xy = boxes.reshape(-1, 4, 2)
            boxes = np.concatenate([xy.min(1), xy.max(1)], 1)
            iou_fn = hbb_iou_plus1
        else:
            iou_fn = poly_iou
        for c in (0, 1):
            ap, npos = evaluate_class(ids, scores, boxes, gt, c, task)
            if npos:
                assert ap == pytest.approx(reference_voc_eval(ids, scores, boxes, gt, c, iou_fn)), (case, c)


def test_voc07_ap_edges():
    assert voc07_ap(np.array([1.0]), np.array([0.0]), 1) == 1.0
    assert voc07_ap(np.zeros(0), np.zeros(0), 3) == 0.0
    assert voc07_ap(np.array([0.0, 1.0]), np.array([1.0, 0.0]), 2) == pytest.approx(6 * 0.5 / 11)  # recall 0.5 at 1/2


# --------------------------------------------------------------------------------------------------------- merge
def test_polygon_nms_matches_loop_reference():
    rng = np.random.default_rng(1)
    polys = np.array([square(*rng.uniform(0, 60, 2), rng.uniform(5, 25)) for _ in range(80)])
    polys += rng.normal(0, 1, polys.shape)
    scores = rng.random(80)
    keep, order, alive = [], np.argsort(-scores, kind="stable"), np.ones(80, bool)
    for i in order:  # textbook greedy NMS
        if alive[i]:
            keep.append(i)
            for j in order:
                if alive[j] and j != i and poly_iou(polys[i], polys[j]) > 0.1:
                    alive[j] = False
            alive[i] = False
    assert nms_polygons(polys, scores, 0.1).tolist() == keep


def test_box_nms_matches_ultralytics_reference():
    """torchvision's NMS (fast) keeps what Ultralytics' pure-torch TorchNMS.nms (a Python loop) keeps."""
    import torch
    from ultralytics.utils.nms import TorchNMS

    rng = np.random.default_rng(2)
    xy, wh = rng.uniform(0, 200, (500, 2)), rng.uniform(5, 40, (500, 2))
    boxes, scores = np.concatenate([xy, xy + wh], 1), rng.random(500)
    for iou in (0.3, 0.5):
        assert (
            nms_boxes(boxes, scores, iou).tolist()
            == TorchNMS.nms(torch.tensor(boxes), torch.tensor(scores), iou).tolist()
        )


def test_classwise_nms_keeps_other_classes_and_maps_tiles():
    boxes = np.array([square(0, 0, 10), square(0, 0, 10), square(1, 0, 10)], float)
    d = Detections(boxes, np.array([0.9, 0.8, 0.7]), np.array([SHIP, PLANE, SHIP]))
    kept = classwise_nms(d, "obb")
    assert kept.cls.tolist() == [SHIP, PLANE] and kept.scores.tolist() == [0.9, 0.8]
    box = Detections(np.array([[0, 0, 10, 10], [0, 0, 10, 10.0]]), np.array([0.9, 0.8]), np.array([1, 2]))
    assert len(classwise_nms(box, "detect")) == 2
    # tile offset in scaled pixels, then divide by the per-axis scale
    assert tile_to_image(np.array([[10.0, 20.0] * 4]), (800, 200), (0.5, 0.25)).tolist() == [[1620.0, 880.0] * 4]


# ---------------------------------------------------------------------------------------------------- round trip
# The README's "Round trip" table, as printed by benchmarks/dota_round_trip.py: (rates, NMS IoU or None for the
# default) -> (detections kept, mAP, ship AP). Every prediction scores 1, so the detect counts below 0.5 depend on the
# NMS's tie order too (torchvision's stable sort: tied boxes in input order); any change to the tiler, the merge or
# the metric that moves one of them must update the README with the benchmark's new table.
OBJECTS = 600  # in the labels of the two sample images (594 not difficult)
DETECT_ROUND_TRIP = {
    ((1.0,), 0.3): (377, 0.750, 6 / 11),  # the devkit's threshold: tied neighbours suppress 223 true objects
    ((1.0,), 0.4): (548, 0.932, 10 / 11),
    ((1.0,), None): (600, 1.0, 1.0),  # our default, 0.5
    ((1.0,), 0.6): (600, 1.0, 1.0),
    ((1.0,), 0.7): (601, 1.0, 1.0),  # one duplicate from overlapping tiles survives
    ((0.5, 1.0), 0.3): (377, 0.750, 6 / 11),
    ((0.5, 1.0), None): (600, 1.0, 1.0),
    ((0.5, 1.0), 0.7): (601, 1.0, 1.0),
}


def tile_and_fake_predictions(src: Path, root: Path, fmt: str, rates) -> tuple[Path, Path]:
    """Tile the samples (default crop 1024, stride 800), then write every tile label back as a prediction (conf 1)."""
    dst = root / "tiles"
    summary = tile_dota(src, dst, rates=rates, format=fmt, workers=1)
    assert summary.ok
    assert labels_as_predictions(dst / "labels" / "train", root / "pred") > 0
    return dst, root / "pred"


@pytest.mark.slow
@pytest.mark.parametrize("rates", [(1.0,), (0.5, 1.0)])
def test_obb_round_trip(dota_examples, tmp_path, rates):
    """Ground truth through tiles and back: one detection per object, mAP 1.0 (every sample object fits in a tile)."""
    dst, pred = tile_and_fake_predictions(dota_examples, tmp_path, "obb", rates)
    r = merge_dota(dst, tmp_path / "out", pred_dir=pred, split="train")
    assert r.task == "Task1" and r.detections == OBJECTS  # one detection per object of the two images after the merge
    assert r.metrics["mAP"] == pytest.approx(1.0, abs=1e-3)
    assert r.metrics["AP"] == pytest.approx(dict.fromkeys(("ship", "harbor", "large-vehicle", "small-vehicle"), 1.0))
    saved = json.loads((tmp_path / "out" / "dota_eval.json").read_text())
    assert saved == {"mAP": r.metrics["mAP"], "AP": r.metrics["AP"]}


@pytest.mark.slow
@pytest.mark.parametrize("rates", [(1.0,), (0.5, 1.0)])
def test_detect_round_trip_default_nms_beats_devkit_threshold(dota_examples, tmp_path, rates):
    """Box NMS at the devkit's 0.3 removes densely packed ships (their hulls overlap); 0.5, our default, keeps them.
    Exact counts and mAP of every detect row of the README's table (``benchmarks/dota_round_trip.py``)."""
    dst, pred = tile_and_fake_predictions(dota_examples, tmp_path, "detect", rates)
    for (r_rates, iou), (kept, m_ap, ship) in DETECT_ROUND_TRIP.items():
        if r_rates != rates:
            continue
        r = merge_dota(dst, tmp_path / f"iou{iou}", pred_dir=pred, split="train", iou=iou)
        assert r.task == "Task2"
        got = (r.detections, r.metrics["mAP"], r.metrics["AP"]["ship"])
        want = (kept, pytest.approx(m_ap, abs=1e-3), pytest.approx(ship, abs=1e-3))
        assert got == want, f"rates {rates}, NMS IoU {iou}: (kept, mAP, ship AP) {got}, README {want}"
    lines = (tmp_path / "iouNone" / "Task2_ship.txt").read_text().splitlines()
    assert len(lines[0].split()) == 6 and lines[0].split()[0] in {"P0706", "P1888"}


# --------------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def obb_tiles(dota_examples, tmp_path_factory) -> tuple[Path, Path]:
    return tile_and_fake_predictions(dota_examples, tmp_path_factory.mktemp("obb"), "obb", (1.0,))


@pytest.mark.slow
def test_bad_input_names_the_problem_and_leaves_out_unchanged(obb_tiles, tmp_path):
    dst, pred = obb_tiles
    out = tmp_path / "out"
    out.mkdir()
    (out / "Task1_ship.txt").write_text("earlier result\n")
    before = tree(out)

    def fails(match: str, **kw) -> None:
        kw.setdefault("pred_dir", pred)
        with pytest.raises(MergeError, match=match):
            merge_dota(kw.pop("dst", dst), out, split="train", **kw)
        assert tree(out) == before and [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporaries left

    bad = tmp_path.parent / f"{tmp_path.name}-bad"
    shutil.copytree(pred, bad / "unknown")
    (bad / "unknown" / "P9999__1__0___0.txt").write_text("1 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2 0.9\n")
    fails(r"P9999__1__0___0\.txt: names no tile of split 'train'", pred_dir=bad / "unknown")
    shutil.copytree(pred, bad / "outside")
    victim = min((bad / "outside").glob("*.txt"))
    victim.write_text(victim.read_text() + "1 1.5 0.1 1.6 0.1 1.6 0.2 1.5 0.2 0.9\n")
    n = len(victim.read_text().splitlines())
    fails(rf"{victim.name}:{n}: box centre \(1.55, 0.15\) lies outside its tile", pred_dir=bad / "outside")
    (bad / "empty").mkdir()
    fails(r"--pred-dir .*empty: no \.txt prediction files", pred_dir=bad / "empty")
    fails(r"manifest\.csv not found", dst=tmp_path.parent)
    with pytest.raises(MergeError, match=r"no tiles of split 'val' \(it lists \['train'\]\)"):
        merge_dota(dst, out, pred_dir=pred)  # the default split is val; the samples only have train
    assert tree(out) == before


@pytest.mark.slow
def test_cli_end_to_end(obb_tiles, tmp_path, repo_env):
    dst, pred = obb_tiles
    out = tmp_path / "merged"
    cmd = [sys.executable, "-m", "ultralytics_fss.merge_dota", str(dst), "--pred-dir", str(pred), "--split", "train",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=repo_env, capture_output=True, text=True, timeout=300, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "ship" in log and "mAP over the 4 classes" in log
    closing = [line for line in log.splitlines() if line.strip()][-1]  # after the AP table: the threshold, named
    assert "obb detections with confidence >= 0.001, after class-wise NMS at IoU 0.1 -> " in closing, closing
    assert sorted(p.name for p in out.glob("Task1_*.txt")) == sorted(f"Task1_{n}.txt" for n in V15)
    with zipfile.ZipFile(out / "Task1.zip") as z:
        assert sorted(z.namelist()) == sorted(f"Task1_{n}.txt" for n in V15)  # at the archive root
        assert z.read("Task1_ship.txt") == (out / "Task1_ship.txt").read_bytes()
    report = json.loads((out / "dota_eval.json").read_text())
    assert set(report) == {"mAP", "AP"} and report["mAP"] == 1.0
    row = (out / "Task1_ship.txt").read_text().splitlines()[0].split()
    assert len(row) == 10 and row[1] == "1"
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "x"), "--split", "nope"], cwd=ROOT, env=repo_env,
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert bad.returncode == 2 and "no tiles of split 'nope'" in bad.stdout + bad.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_ground_truth_from_the_tiler_record_or_labels_option(obb_tiles, dota_examples, tmp_path):
    """The tiler records where the split's labels are; without that record there is no score unless --labels."""
    dst, pred = obb_tiles
    record = dst / ".tile_dota" / "source.json"
    assert json.loads(record.read_text())["splits"]["train"]["labels"] == str(dota_examples / "labelTxt")
    copy = tmp_path / "tiles"
    shutil.copytree(dst, copy, symlinks=True)
    (copy / ".tile_dota" / "source.json").unlink()  # e.g. tiles made elsewhere, or by an older tiler
    r = merge_dota(copy, tmp_path / "unscored", pred_dir=pred, split="train")
    assert r.metrics is None and not (tmp_path / "unscored" / "dota_eval.json").exists()
    assert (tmp_path / "unscored" / "Task1.zip").is_file()
    r = merge_dota(copy, tmp_path / "scored", pred_dir=pred, split="train", labels=dota_examples / "labelTxt")
    assert r.metrics["mAP"] == 1.0
    with pytest.raises(MergeError, match="exactly one of --model"):
        merge_dota(copy, tmp_path / "x", model="best.pt", pred_dir=pred, split="train")


@pytest.mark.slow
def test_both_formats_dst_merges_obb_from_its_obb_root(dota_examples, tmp_path):
    """A ``--format both`` DST keeps one manifest at its root; DST and DST/obb both merge obb predictions."""
    assert tile_dota(dota_examples, tmp_path / "tiles", format="both", workers=1).ok
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in (tmp_path / "tiles" / "obb" / "labels" / "train").glob("*.txt"):
        (pred / f.name).write_text("".join(f"{ln} 0.5\n" for ln in f.read_text().splitlines()))
    for dst in (tmp_path / "tiles", tmp_path / "tiles" / "obb"):
        r = merge_dota(dst, tmp_path / dst.name, pred_dir=pred, split="train")
        assert r.task == "Task1" and r.metrics["mAP"] == 1.0
