"""Slow, loop-based FSS assignment written straight from the eight rules of issue 3 (test oracle only).

Per-pair quantities are computed one pair at a time in float32 torch scalars, like the vectorised code, so that exact
ties (and their tie-break rules) are the same ties in both; comparisons, sorting and bookkeeping are plain Python."""

from __future__ import annotations

import math

import torch
from ultralytics.utils.metrics import bbox_iou


class AxisAligned:
    """The geometry of rules 1, 2 and 4 for xyxy boxes: candidates strictly inside the floored box, IoU, prior."""

    dims = 4

    def __init__(self, stride_val):
        self.stride_val = stride_val

    def centre_size(self, box):
        """(cx, cy, w, h) of a GT as Python floats."""
        x1, y1, x2, y2 = box.float().tolist()
        return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1

    def inside(self, box, xy):
        """Rule 1 (TAL: sides below stride_val are set to stride_val about the centre)."""
        cx, cy, w, h = self.centre_size(box)
        w1, h1 = (self.stride_val if w < self.stride_val else w), (self.stride_val if h < self.stride_val else h)
        lx, ly, rx, ry = cx - w1 / 2, cy - h1 / 2, cx + w1 / 2, cy + h1 / 2
        return xy[0] - lx > 1e-9 and xy[1] - ly > 1e-9 and rx - xy[0] > 1e-9 and ry - xy[1] > 1e-9

    def iou(self, gt, pd):
        return bbox_iou(gt.float(), pd.float(), xywh=False).clamp(0)

    def prior(self, box, xy, mu):
        """Rule 4: exp(-((x - mu_x)^2 / w^2 + (y - mu_y)^2 / h^2) / 2), sides floored to stride_val."""
        _, _, w, h = self.centre_size(box)
        sx, sy = torch.tensor(max(w, self.stride_val)), torch.tensor(max(h, self.stride_val))
        return float(torch.exp(-0.5 * (((torch.tensor(xy[0]) - mu[0]) / sx) ** 2
                                       + ((torch.tensor(xy[1]) - mu[1]) / sy) ** 2)))


def reference_fss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, *, num_classes,
                  alpha=0.5, beta=6.0, u=2.0, q=10, stride=(8, 16, 32), prior=True, fixed_k=None, rescue=False,
                  radius=0.0, soft_target="iou", grid=None, geometry=AxisAligned, min_k=1):
    """Return (labels, bboxes, scores, fg_mask, gt_idx, weights, k) computed with Python loops over float32 values
    (per-pair quantities as float32 torch scalars, then compared and accumulated as Python floats). `grid` (the
    (h, w) of each level) gives each anchor its stride for the centre region of `radius`. `geometry` is the class of
    rules 1, 2 and 4 (`AxisAligned`, or `reference_rotated.Rotated`)."""
    b, n, _ = pd_scores.shape
    m = gt_bboxes.shape[1]
    stride_val = stride[1] if len(stride) > 1 else stride[0]
    geo = geometry(stride_val)
    labels = torch.full((b, n), num_classes, dtype=torch.long)
    bboxes = torch.zeros(b, n, gt_bboxes.shape[-1], dtype=gt_bboxes.dtype)
    target = torch.zeros(b, n, num_classes)
    fg = torch.zeros(b, n, dtype=torch.bool)
    gt_idx = torch.zeros(b, n, dtype=torch.long)
    weights = torch.zeros(b, n)
    ks = torch.zeros(b, m, dtype=torch.long)
    f = lambda t: t.float().tolist()  # noqa: E731, float32 values, compared in Python floats
    anc = f(anc_points)
    if radius > 0:  # the stride of each anchor, level by level
        anc_stride = [float(st) for st, (gh, gw) in zip(stride, grid) for _ in range(gh * gw)]
    for i in range(b):
        chosen = {}  # anchor -> list of (gt, s, iou)
        ranked = {}  # gt -> its candidates in rule-6 order, each as (anchor, s, iou)
        for j in range(m):
            if not mask_gt[i, j, 0]:
                continue
            c = int(gt_labels[i, j, 0])
            cx, cy, _, _ = geo.centre_size(gt_bboxes[i, j])
            cand = [a for a in range(n) if geo.inside(gt_bboxes[i, j], anc[a])]  # rule 1
            if radius > 0:  # or within radius strides of the centre (float32, as the vectorised code)
                c32 = (gt_bboxes[i, j, :2].float() + gt_bboxes[i, j, 2:].float()) / 2
                for a in range(n):
                    lo, hi = f(c32 - radius * anc_stride[a]), f(c32 + radius * anc_stride[a])
                    if lo[0] < anc[a][0] < hi[0] and lo[1] < anc[a][1] < hi[1] and a not in cand:
                        cand.append(a)
                cand.sort()
            # Rule 2
            iou, s = {}, {}
            for a in cand:
                iou_t = geo.iou(gt_bboxes[i, j], pd_bboxes[i, a])
                p = pd_scores[i, a, c].float() * (pd_obj[i, a, 0].float() if pd_obj is not None else 1.0)
                iou[a], s[a] = float(iou_t), float(p.pow(alpha) * iou_t.pow(beta))
            ks[i, j] = 1 if fixed_k is None else fixed_k
            if not cand:
                continue
            # Rule 3
            best = min(cand, key=lambda a: (-s[a], (anc[a][0] - cx) ** 2 + (anc[a][1] - cy) ** 2, a))
            mx, my = anc[best]
            # Rule 4
            g = {a: geo.prior(gt_bboxes[i, j], anc[a], (mx, my)) for a in cand}
            # Rule 5
            if fixed_k is None:
                rank_key = (lambda a: (-g[a] * iou[a], a)) if prior else (lambda a: (-iou[a], a))
                top = sorted(cand, key=rank_key)[:q]
                total = torch.zeros(())
                for a in top:
                    total += iou[a]  # float32, in rank order
                ks[i, j] = max(min_k, math.floor(float(total)))
            # Rule 6
            ranked[j] = [(a, s[a], iou[a]) for a in sorted(cand, key=lambda a: (-s[a], -g[a], a))]
            for a, sa, ia in ranked[j][: int(ks[i, j])]:
                chosen.setdefault(a, []).append((j, sa, ia))
        # Rule 7
        final = {a: min(v, key=lambda t: (-t[1], -t[2], t[0])) for a, v in chosen.items()}
        if rescue:  # rule 7b: GTs left without positives take their first free candidate, conflicts as rule 7
            kept = {t[0] for t in final.values()}
            extra = {}
            for j, cands in ranked.items():
                free = [c for c in cands if c[0] not in final]
                if j not in kept and free:
                    a, sa, ia = free[0]
                    extra.setdefault(a, []).append((j, sa, ia))
            final.update({a: min(v, key=lambda t: (-t[1], -t[2], t[0])) for a, v in extra.items()})
        # Rule 8
        per_gt, iou_max = {}, {}
        for a, (j, sv, iv) in final.items():
            per_gt.setdefault(j, []).append(sv)
            iou_max[j] = max(iou_max.get(j, 0.0), iv)
        exp = 1.0 / (u * (alpha + beta))
        for a, (j, sv, iv) in final.items():
            mean = sum(per_gt[j]) / len(per_gt[j])
            weights[i, a] = (sv / mean) ** exp if mean > 0 else 1.0
            labels[i, a] = int(gt_labels[i, j, 0])
            bboxes[i, a] = gt_bboxes[i, j]
            s_max = max(per_gt[j])
            if soft_target == "iou":
                target[i, a, labels[i, a]] = iv
            else:  # TAL's scale: s / max s times max IoU over the GT's positives
                target[i, a, labels[i, a]] = (sv / s_max if s_max > 0 else 1.0) * iou_max[j]
            fg[i, a] = True
            gt_idx[i, a] = j
    return labels, bboxes, target, fg, gt_idx, weights, ks
