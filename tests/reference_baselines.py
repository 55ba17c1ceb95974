"""Slow, loop-based references of the baseline assigners (test oracles only), written from their rules as stated in
`ultralytics_fss.assign.baselines`. Per-pair values are float32 torch scalars like the vectorised code computes them;
choices, sorting and bookkeeping are plain Python."""

from __future__ import annotations

import math

import numpy as np
import torch
from ultralytics.utils.metrics import bbox_iou, probiou

SCALE = 8


class AxisAligned:
    """xyxy boxes: IoU, the virtual square anchor as an xyxy box, centre, strictly inside (float32 scalars)."""

    dims = 4

    @staticmethod
    def iou(a, b) -> float:
        return float(bbox_iou(a.float(), b.float(), xywh=False).clamp(0))

    @staticmethod
    def anchor_box(xy, s):
        half = torch.tensor(SCALE * s / 2)
        return torch.stack([xy[0] - half, xy[1] - half, xy[0] + half, xy[1] + half])

    @staticmethod
    def centre(box):
        return (box[:2] + box[2:]) / 2

    @staticmethod
    def inside(box, xy, margin=0.0) -> bool:
        return min(float(v) for v in (*(xy - box[:2]), *(box[2:] - xy))) > margin


class Rotated:
    """xywhr boxes: probiou, the virtual square anchor at angle 0, centre, strictly inside in the box's own axes."""

    dims = 5

    @staticmethod
    def iou(a, b) -> float:
        return float(probiou(a.float()[None], b.float()[None])[0, 0].clamp(0))

    @staticmethod
    def anchor_box(xy, s):
        side = torch.tensor(float(SCALE * s))
        return torch.stack([xy[0], xy[1], side, side, torch.tensor(0.0)])

    @staticmethod
    def centre(box):
        return box[:2]

    @staticmethod
    def inside(box, xy, margin=0.0) -> bool:
        x, y, w, h, r = box.float()
        d = xy.float() - torch.stack([x, y])
        along_w = d[0] * torch.cos(r) + d[1] * torch.sin(r)
        along_h = -d[0] * torch.sin(r) + d[1] * torch.cos(r)
        return bool(along_w.abs() < w / 2 - margin) and bool(along_h.abs() < h / 2 - margin)


def _strides(stride, grid):
    return [float(s) for s, (h, w) in zip(stride, grid) for _ in range(h * w)]


def _iou(a, b) -> float:
    return AxisAligned.iou(a, b)


def _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, ignore=None, geometry=AxisAligned):
    """Dense (labels, bboxes, scores, fg, gt_idx, weights) from {(image, anchor): gt}."""
    labels = torch.full((b, n), num_classes, dtype=torch.long)
    bboxes = torch.zeros(b, n, geometry.dims, dtype=gt_bboxes.dtype)
    scores = torch.zeros(b, n, num_classes)
    fg = torch.zeros(b, n, dtype=torch.bool)
    gt_idx = torch.zeros(b, n, dtype=torch.long)
    weights = torch.zeros(b, n)
    for (i, a), j in chosen.items():
        c = int(gt_labels[i, j, 0])
        labels[i, a], bboxes[i, a], fg[i, a], gt_idx[i, a], weights[i, a] = c, gt_bboxes[i, j], True, j, 1.0
        scores[i, a, c] = geometry.iou(gt_bboxes[i, j], pd_bboxes[i, a])
    for i, a in ignore or ():
        if not fg[i, a]:
            labels[i, a] = -1
    return labels, bboxes, scores, fg, gt_idx, weights


def reference_maxiou(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                     geometry=AxisAligned):  # fmt: skip
    b, n, _ = pd_scores.shape
    chosen, ignore = _maxiou_choice(b, n, anc_points, gt_bboxes, mask_gt, stride, grid, 0.5, 0.4, geometry)
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, ignore, geometry)


def _maxiou_choice(b, n, anc_points, gt_bboxes, mask_gt, stride, grid, pos_iou, neg_iou, geometry=AxisAligned):
    """Max-IoU's {(image, anchor): gt} and ignored (image, anchor)s, thresholds `pos_iou`, `neg_iou`: every anchor
    of the image is weighed against every GT."""
    st = _strides(stride, grid)
    boxes = torch.stack([geometry.anchor_box(anc_points[a].float(), st[a]) for a in range(n)])  # the virtual anchors
    chosen, ignore = {}, []
    for i in range(b):
        gts = [j for j in range(gt_bboxes.shape[1]) if mask_gt[i, j, 0]]
        # the GT's IoU with every anchor box: one element-wise call per GT, the values of one call per pair
        if geometry is AxisAligned:
            rows = {j: bbox_iou(gt_bboxes[i, j].float(), boxes, xywh=False).clamp(0).view(-1).tolist() for j in gts}
        else:
            rows = {j: [geometry.iou(gt_bboxes[i, j], boxes[a]) for a in range(n)] for j in gts}
        iou = {(a, j): rows[j][a] for a in range(n) for j in gts}
        for a in range(n):
            if not gts:
                continue
            j = max(gts, key=lambda j: (iou[a, j], -j))
            if iou[a, j] >= pos_iou:
                chosen[i, a] = j
            elif iou[a, j] >= neg_iou:
                ignore.append((i, a))
        for j in gts:  # every anchor with each GT's max IoU, in GT order (later GTs win)
            best = max(iou[a, j] for a in range(n))
            for a in range(n):
                if best > 0 and iou[a, j] == best:
                    chosen[i, a] = j
    return chosen, ignore


def reference_atss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                   topk=9, geometry=AxisAligned):  # fmt: skip
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
            centre = geometry.centre(box)
            cand = []
            for lv in levels:
                dist = {a: float((anc_points[a].float() - centre).square().sum()) for a in lv}
                cand += sorted(lv, key=lambda a: (dist[a], a))[:topk]
            ious = [geometry.iou(box, geometry.anchor_box(anc_points[a].float(), st[a])) for a in cand]
            total, sq = torch.zeros(()), torch.zeros(())
            for v in ious:  # float32 sums in candidate order, unbiased std
                total += v
            mean = total / len(ious)
            for v in ious:
                sq += (torch.tensor(v) - mean).square()
            thr = float(mean + (sq / max(len(ious) - 1, 1)).sqrt())
            for a, v in zip(cand, ious):
                if v >= thr and geometry.inside(box, anc_points[a].float(), 0.01):
                    picks.setdefault(a, []).append((v, j))
        for a, v in picks.items():
            chosen[i, a] = max(v, key=lambda t: (t[0], -t[1]))[1]
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, geometry=geometry)


def reference_simota(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                     radius=2.5, geometry=AxisAligned):  # fmt: skip
    """SimOTA as YOLOX 0.1.x's `get_in_boxes_info` + `dynamic_k_matching` define it, one image, GT and anchor at a
    time: a pool of anchors shared by all GTs, k from the pool's top-10 IoUs, contested anchors to the cheapest GT."""
    b, n, _ = pd_scores.shape
    st = _strides(stride, grid)

    def regions(a, box, s):
        xy = anc_points[a].float()
        centre = geometry.centre(box)
        in_box = geometry.inside(box, xy)
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
                iou_t = torch.tensor(geometry.iou(boxes[j], pd_bboxes[i, a]))
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
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes, geometry=geometry)


# ---------------------------------------------------------------------------------------------------------- PAA, DW
def reference_gmm(values: list[float], max_iter=100, tol=1e-3, reg=1e-6) -> tuple[list[int], list[float]]:
    """sklearn's GaussianMixture(2, weights_init=[.5, .5], means_init=[min, max], precisions_init=[1, 1]) on one GT's
    values (1-D), EM step by step in numpy float64: each value's component (`predict`) and log density
    (`score_samples`)."""
    x = np.asarray(values, dtype=np.float64)
    eps = 10 * np.finfo(np.float64).eps
    mean, var, weight = np.array([x.min(), x.max()]), np.ones(2), np.full(2, 0.5)

    def weighted_log_prob():  # (K, 2)
        return np.stack([-0.5 * (np.log(2 * np.pi) + (x - mean[c]) ** 2 / var[c] + np.log(var[c])) + np.log(weight[c])
                         for c in range(2)], 1)  # fmt: skip

    bound = -np.inf
    for _ in range(max_iter):
        wlp = weighted_log_prob()
        lpn = np.logaddexp(wlp[:, 0], wlp[:, 1])
        resp = np.exp(wlp - lpn[:, None])
        nk = resp.sum(0) + eps
        mean = (resp * x[:, None]).sum(0) / nk
        var = np.array([(resp[:, c] * (x - mean[c]) ** 2).sum() / nk[c] + reg for c in range(2)])
        weight = nk / nk.sum()
        prev, bound = bound, lpn.mean()
        if abs(bound - prev) < tol:
            break
    wlp = weighted_log_prob()
    return [int(np.argmax(row)) for row in wlp], list(np.logaddexp(wlp[:, 0], wlp[:, 1]))


def reference_paa(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid,
                  topk=9):  # fmt: skip
    """PAA as `PAAAssigner` states it, one image and GT at a time: Max-IoU (0.1) first pass, cost = focal loss over
    classes + GIoU loss, 9 cheapest per level, GMM per GT (`reference_gmm`), the prefix up to the densest fg sample."""
    b, n, _ = pd_scores.shape
    first, _ = _maxiou_choice(b, n, anc_points, gt_bboxes, mask_gt, stride, grid, 0.1, 0.1)
    level_of = [lv for lv, (h, w) in enumerate(grid) for _ in range(h * w)]
    chosen, costs = {}, {}
    for (i, a), j in first.items():
        c = int(gt_labels[i, j, 0])
        cost = 0.0
        for k in range(num_classes):
            p, y = min(max(float(pd_scores[i, a, k]), 0.0), 1.0), float(k == c)
            p_t = p if y else 1 - p
            alpha_t = 0.25 if y else 0.75
            cost += alpha_t * (1 - p_t) ** 2 * -max(math.log(p_t) if p_t > 0 else -math.inf, -100.0)
        giou = float(bbox_iou(gt_bboxes[i, j].float(), pd_bboxes[i, a].float(), xywh=False, GIoU=True))
        costs[i, a] = cost + (1 - giou)
    for i in range(b):
        for j in range(gt_bboxes.shape[1]):
            mine = [a for (ii, a), jj in first.items() if ii == i and jj == j]
            cand = []
            for lv in range(len(grid)):
                cand += sorted((a for a in mine if level_of[a] == lv), key=lambda a: (costs[i, a], a))[:topk]
            cand.sort(key=lambda a: (costs[i, a], a))
            if len(cand) < 2:
                keep = cand
            else:
                comp, dens = reference_gmm([costs[i, a] for a in cand])
                fg = [r for r in range(len(cand)) if comp[r] == 0]
                if fg:
                    top = max(dens[r] for r in fg)
                    keep = cand[: min(r for r in fg if dens[r] == top) + 1]
                else:
                    keep = cand
            for a in keep:
                chosen[i, a] = j
    return _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes)


def reference_dw(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, num_classes, stride, grid):
    """DW as `DWAssigner` states it, one image, GT and anchor at a time. Returns the six result fields and the
    (b, N, C) P_neg."""
    b, n, _ = pd_scores.shape
    st = _strides(stride, grid)
    p_neg = torch.ones(b, n, num_classes)
    best = {}  # (image, anchor) -> (w_pos, j) of its best GT
    for i in range(b):
        for j in range(gt_bboxes.shape[1]):
            if not mask_gt[i, j, 0]:
                continue
            box = [float(v) for v in gt_bboxes[i, j].float()]
            c = int(gt_labels[i, j, 0])
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            cand = []
            for a in range(n):  # strictly inside, TAL's 1e-9 px margin
                ax, ay = float(anc_points[a, 0]), float(anc_points[a, 1])
                if min(ax - box[0], ay - box[1], box[2] - ax, box[3] - ay) > 1e-9:
                    cand.append(a)
            if not cand:
                continue
            t, prior, iou = {}, {}, {}
            for a in cand:
                dx, dy = (float(anc_points[a, 0]) - cx) / st[a], (float(anc_points[a, 1]) - cy) / st[a]
                prior[a] = math.exp(-(dx * dx + dy * dy) / (2 * 1.11**2))
                giou = float(bbox_iou(gt_bboxes[i, j].float(), pd_bboxes[i, a].float(), xywh=False, GIoU=True))
                t[a] = float(pd_scores[i, a, c]) * math.exp(-5.0 * (1 - giou))
                iou[a] = _iou(gt_bboxes[i, j], pd_bboxes[i, a])
            den = max(sum(math.exp(3 * t[a]) * t[a] * prior[a] for a in cand), 1e-12)
            u_max = max(iou.values())
            for a in cand:
                w = math.exp(5 * t[a]) * t[a] * prior[a] / den
                if (i, a) not in best or w > best[i, a][0]:  # GTs in increasing order: ties keep the lower GT
                    best[i, a] = (w, j)
                u = iou[a]
                pn = 1.0 if u < 0.5 else 0.0 if u >= u_max else (u**2 - u_max**2) / (0.25 - u_max**2)
                p_neg[i, a, c] = min(float(p_neg[i, a, c]), pn)
    chosen = {key: j for key, (_, j) in best.items()}
    labels, bboxes, scores, fg, gt_idx, weights = _result(b, n, num_classes, chosen, pd_bboxes, gt_labels, gt_bboxes)
    for (i, a), (w, j) in best.items():  # DW's positives: weight w_pos, target 1 (the label)
        weights[i, a], scores[i, a, labels[i, a]] = w, 1.0
    return labels, bboxes, scores, fg, gt_idx, weights, p_neg
