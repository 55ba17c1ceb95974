"""Slow, loop-based references of the baseline assigners (test oracles only), written from their rules as stated in
`ultralytics_fss.assign.baselines`. Per-pair values are float32 torch scalars like the vectorised code computes them;
choices, sorting and bookkeeping are plain Python."""

from __future__ import annotations

import math

import torch
from ultralytics.utils.metrics import bbox_iou

SCALE = 8


def _strides(stride, grid):
    return [float(s) for s, (h, w) in zip(stride, grid) for _ in range(h * w)]


def _iou(a, b) -> float:
    return float(bbox_iou(a.float(), b.float(), xywh=False).clamp(0))


def _anchor_box(xy, s):
    half = torch.tensor(SCALE * s / 2)
    return torch.stack([xy[0] - half, xy[1] - half, xy[0] + half, xy[1] + half])


def _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, ignore=None):
    """Dense (labels, bboxes, scores, fg, gt_idx, weights) from {(image, anchor): gt}."""
    labels = torch.full((b, n), num_classes, dtype=torch.long)
    bboxes = torch.zeros(b, n, 4, dtype=gt_bboxes.dtype)
    scores = torch.zeros(b, n, num_classes)
    fg = torch.zeros(b, n, dtype=torch.bool)
    gt_idx = torch.zeros(b, n, dtype=torch.long)
    weights = torch.zeros(b, n)
    for (i, a), j in chosen.items():
        c = int(gt_labels[i, j, 0])
        labels[i, a], bboxes[i, a], fg[i, a], gt_idx[i, a], weights[i, a] = c, gt_bboxes[i, j], True, j, 1.0
        scores[i, a, c] = _iou(gt_bboxes[i, j], pd_bboxes[i, a])
    for i, a in ignore or ():
        if not fg[i, a]:
            labels[i, a] = -1
    return labels, bboxes, scores, fg, gt_idx, weights


def reference_maxiou(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid):
    b, n, _ = pd_scores.shape
    st = _strides(stride, grid)
    chosen, ignore = {}, []
    for i in range(b):
        gts = [j for j in range(gt_bboxes.shape[1]) if mask_gt[i, j, 0]]
        iou = {(a, j): _iou(gt_bboxes[i, j], _anchor_box(anc_points[a], st[a])) for a in range(n) for j in gts}
        for a in range(n):
            if not gts:
                continue
            j = max(gts, key=lambda j: (iou[a, j], -j))
            if iou[a, j] >= 0.5:
                chosen[i, a] = j
            elif iou[a, j] >= 0.4:
                ignore.append((i, a))
        for j in gts:  # every anchor with each GT's max IoU, in GT order (later GTs win)
            best = max(iou[a, j] for a in range(n))
            for a in range(n):
                if best > 0 and iou[a, j] == best:
                    chosen[i, a] = j
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, ignore)


def reference_atss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                   topk=9):  # fmt: skip
    b, n, _ = pd_scores.shape
    st = _strides(stride, grid)
    levels, start = [], 0
    for h, w in grid:
        levels.append(range(start, start + h * w))
        start += h * w
    chosen = {}
    for i in range(b):
        picks = {}  # anchor -> list of (iou, j)
        for j in range(gt_bboxes.shape[1]):
            if not mask_gt[i, j, 0]:
                continue
            box = gt_bboxes[i, j].float()
            centre = (box[:2] + box[2:]) / 2
            cand = []
            for lv in levels:
                dist = {a: float((anc_points[a].float() - centre).square().sum()) for a in lv}
                cand += sorted(lv, key=lambda a: (dist[a], a))[:topk]
            ious = [_iou(box, _anchor_box(anc_points[a].float(), st[a])) for a in cand]
            total, sq = torch.zeros(()), torch.zeros(())
            for v in ious:  # float32 sums in candidate order, unbiased std
                total += v
            mean = total / len(ious)
            for v in ious:
                sq += (torch.tensor(v) - mean).square()
            thr = float(mean + (sq / max(len(ious) - 1, 1)).sqrt())
            for a, v in zip(cand, ious):
                xy = anc_points[a].float()
                inside = float(torch.min(xy - box[:2]).item()) > 0.01 and float(torch.min(box[2:] - xy).item()) > 0.01
                if v >= thr and inside:
                    picks.setdefault(a, []).append((v, j))
        for a, v in picks.items():
            chosen[i, a] = max(v, key=lambda t: (t[0], -t[1]))[1]
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes)


def reference_simota(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                     radius=2.5):  # fmt: skip
    """SimOTA as YOLOX 0.1.x's `get_in_boxes_info` + `dynamic_k_matching` define it, one image, GT and anchor at a
    time: a pool of anchors shared by all GTs, k from the pool's top-10 IoUs, contested anchors to the cheapest GT."""
    b, n, _ = pd_scores.shape
    st = _strides(stride, grid)

    def regions(a, box, s):
        xy = anc_points[a].float()
        centre = (box[:2] + box[2:]) / 2
        in_box = min(float(v) for v in (*(xy - box[:2]), *(box[2:] - xy))) > 0
        lt, rb = centre - radius * torch.tensor(s), centre + radius * torch.tensor(s)
        in_centre = min(float(v) for v in (*(xy - lt), *(rb - xy))) > 0
        return in_box, in_centre

    chosen = {}
    for i in range(b):
        gts = [j for j in range(gt_bboxes.shape[1]) if mask_gt[i, j, 0]]
        boxes = {j: gt_bboxes[i, j].float() for j in gts}
        pool = [a for a in range(n) if any(any(regions(a, boxes[j], st[a])) for j in gts)]
        if not pool:
            continue
        cost, iou = {}, {}
        for j in gts:
            onehot = torch.nn.functional.one_hot(torch.tensor(int(gt_labels[i, j, 0])), num_classes).float()
            for a in pool:
                iou_t = bbox_iou(boxes[j], pd_bboxes[i, a].float(), xywh=False).squeeze(-1).clamp(0)
                probs = pd_scores[i, a].float().clamp(0, 1).sqrt()
                cls = torch.nn.functional.binary_cross_entropy(probs, onehot, reduction="none").sum(-1)
                in_box, in_centre = regions(a, boxes[j], st[a])
                cost[a, j] = float(cls + 3.0 * -torch.log(iou_t + 1e-8) + 1e5 * float(not (in_box and in_centre)))
                iou[a, j] = float(iou_t)
        takers = {}  # anchor -> GTs that took it
        for j in gts:
            total = torch.zeros(())
            for a in sorted(pool, key=lambda a: (-iou[a, j], a))[:10]:  # float32 sum, largest first
                total += iou[a, j]
            k = max(1, math.floor(float(total)))
            for a in sorted(pool, key=lambda a: (cost[a, j], a))[:k]:
                takers.setdefault(a, []).append(j)
        for a, js in takers.items():
            chosen[i, a] = js[0] if len(js) == 1 else min(gts, key=lambda j: (cost[a, j], j))  # over ALL GTs
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes)
