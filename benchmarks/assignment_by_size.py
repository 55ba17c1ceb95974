"""Where do small objects lose their positives? FSS's and Ultralytics' assignment per object size, on real tiles.

    python benchmarks/assignment_by_size.py --model runs/aerial/obb/study/fss-seed0/weights/best.pt \\
        --data runs/aerial/tiles-obb-512-400/data.yaml --images 40
    python benchmarks/assignment_by_size.py ... --fss fss_rescue=True     # the same predictions, another FSS setting

One training step is replayed per train image (`ultralytics_fss.evidence.replay`: the FSS loss and Ultralytics' own
loss of the task, on the same predictions of `--model`, no augmentation, letterboxed to `--imgsz`), and every ground
truth is followed through the FSS steps: its candidates (step 1), its dynamic k (Eqs. 4, 5, 7), the min(k,
candidates) it selects (step 6), the positives it keeps after conflicts (step 7); beside them the positives
Ultralytics' assigner (TAL, `RotatedTaskAlignedAssigner` for obb) gives it. Ground truths are grouped by the long side
of their box in input pixels (for obb the rotated box's), and per class. A ground truth with candidates and a k >= 1
that ends without a positive lost every selected anchor to a neighbour in step 7 ("lost in conflicts").
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ultralytics import YOLO
from ultralytics.cfg import smart_value
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths

from ultralytics_fss.evidence.gt_labels import letterboxed, read_labels
from ultralytics_fss.evidence.replay import replay
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.seam import loss_args, one_image_batch, saved_model_args

BUCKETS = ((0, 16), (16, 32), (32, 64), (64, 10**9))  # long side of the GT box, input pixels


def per_gt(model, image_file: Path, task: str, imgsz: int, fss: dict) -> list[dict]:
    """One replayed step on one image: a dict per ground truth (class, long side, candidates, k, selected, FSS and
    TAL positives)."""
    gt = read_labels(img2label_paths([str(image_file)])[0], task)
    if not len(gt):
        return []
    bgr, px = letterboxed(cv2.imread(str(image_file)), gt, imgsz)
    batch, rows = one_image_batch(task, bgr, px.cls, px.boxes, px.polygons, px.keypoints)
    _, traced, recorded = replay(model, batch, loss_args(fss))
    trace, m = traced.trace, len(rows)
    gi = trace["gi"]
    candidates = torch.bincount(gi, minlength=m)
    fss_pos = torch.bincount(gi[trace["pos"]], minlength=m)
    tal_pos = torch.bincount(recorded.gt_idx[recorded.fg_mask], minlength=m)
    k = traced.k[0] if traced.k is not None else fss_pos
    boxes = traced.inputs[4][0].float()  # (M, 4) xyxy or (M, 5) xywhr GT boxes, input pixels
    long = boxes[:, 2:4].amax(-1) if boxes.shape[-1] == 5 else (boxes[:, 2:] - boxes[:, :2]).amax(-1)
    return [
        {"cls": int(px.cls[rows[j]]), "long": float(long[j]), "candidates": int(candidates[j]), "k": int(k[j]),
         "selected": min(int(k[j]), int(candidates[j])), "fss": int(fss_pos[j]), "tal": int(tal_pos[j])}
        for j in range(m)
    ]  # fmt: skip


def summarise(gts: list[dict], key) -> list[tuple]:
    """Rows of the table: per group (`key` of a GT) the count and the mean of each step."""
    groups = defaultdict(list)
    for g in gts:
        groups[key(g)].append(g)
    steps = (
        lambda g: g["candidates"], lambda g: g["k"], lambda g: g["selected"], lambda g: g["fss"],
        lambda g: 100 * (g["fss"] == 0), lambda g: 100 * (g["selected"] > 0 and g["fss"] == 0),
        lambda g: g["tal"], lambda g: 100 * (g["tal"] == 0),
    )  # fmt: skip
    return [(name, len(mine), *(sum(f(g) for g in mine) / len(mine) for f in steps))
            for name, mine in sorted(groups.items(), key=lambda kv: kv[0])]  # fmt: skip


def markdown(title: str, rows: list[tuple]) -> str:
    head = ("| " + title + " | GTs | candidates/GT | k | selected/GT (step 6) | FSS pos/GT (step 7) | FSS no positive % "
            "| lost in conflicts % | TAL pos/GT | TAL no positive % |")  # fmt: skip
    lines = [head, "|" + "---|" * 10]
    for name, n, c, k, s, f, f0, lost, t, t0 in rows:
        lines.append(f"| {name} | {n} | {c:.1f} | {k:.2f} | {s:.2f} | {f:.2f} | {f0:.1f} | {lost:.1f} | {t:.2f} | {t0:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="weights whose predictions both assigners see")
    p.add_argument("--data", required=True, help="dataset YAML (its train split is read)")
    p.add_argument("--images", type=int, default=40, help="train images replayed (the first, in file order)")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--fss", nargs="*", default=[], help="fss_* values, key=value (default: the checkpoint's own)")
    a = p.parse_args(argv)
    model = YOLO(a.model)
    task = model.task
    given = {k: smart_value(v) for k, v in (kv.split("=", 1) for kv in a.fss)}  # as the `yolo` command reads them
    fss = check_fss_args({**{k: v for k, v in saved_model_args(a.model).items() if k.startswith("fss_")}, **given})
    data = check_det_dataset(a.data)
    train = data["train"] if isinstance(data["train"], list) else [data["train"]]
    files = sorted(f for d in train for f in Path(d).rglob("*") if f.suffix[1:].lower() in IMG_FORMATS)
    gts = []
    net = model.model.float()
    for f in files[: a.images]:
        gts += per_gt(net, f, task, a.imgsz, fss)
    names = data["names"]

    def bucket(g):
        lo, hi = next(b for b in BUCKETS if b[0] <= g["long"] < b[1])
        return f"{lo}-{hi} px" if hi < 10**9 else f">= {lo} px"

    text = (f"{len(gts)} GTs of {min(a.images, len(files))} train images of {a.data}, predictions of {a.model}, "
            f"imgsz {a.imgsz}; FSS values: " + " ".join(f"{k}={v}" for k, v in fss.items() if k in given or k in
            ("fss_alpha", "fss_beta", "fss_q", "fss_rescue", "fss_min_k")) + "\n\n")  # fmt: skip
    text += markdown("long side", summarise(gts, bucket)) + "\n\n"
    text += markdown("class", [(names[r[0]], *r[1:]) for r in summarise(gts, lambda g: g["cls"])])
    print(text)
    return text


if __name__ == "__main__":
    main()
