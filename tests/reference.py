"""Slow, loop-based FSS assignment written straight from the eight rules of issue 3 (test oracle only).

Per-pair quantities are computed one pair at a time in float32 torch scalars, like the vectorised code, so that exact
ties (and their tie-break rules) are the same ties in both; comparisons, sorting and bookkeeping are plain Python."""

from __future__ import annotations

import math

import torch
from ultralytics.utils.metrics import bbox_iou


def reference_fss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, *, num_classes,
                  alpha=0.5, beta=6.0, u=2.0, q=10, stride=(8, 16, 32), prior=True, fixed_k=None, rescue=False):
    """Return (labels, bboxes, scores, fg_mask, gt_idx, weights, k) computed with Python loops over float32 values
    (per-pair quantities as float32 torch scalars, then compared and accumulated as Python floats)."""
    b, n, _ = pd_scores.shape
    m = gt_bboxes.shape[1]
    stride_val = stride[1] if len(stride) > 1 else stride[0]
    labels = torch.full((b, n), num_classes, dtype=torch.long)
    bboxes = torch.zeros(b, n, 4, dtype=gt_bboxes.dtype)
    target = torch.zeros(b, n, num_classes)
    fg = torch.zeros(b, n, dtype=torch.bool)
    gt_idx = torch.zeros(b, n, dtype=torch.long)
    weights = torch.zeros(b, n)
    ks = torch.zeros(b, m, dtype=torch.long)
    f = lambda t: t.float().tolist()  # noqa: E731, float32 values, compared in Python floats
    anc = f(anc_points)
    for i in range(b):
        chosen = {}  # anchor -> list of (gt, s, iou)
        ranked = {}  # gt -> its candidates in rule-6 order, each as (anchor, s, iou)
        for j in range(m):
            if not mask_gt[i, j, 0]:
                continue
            x1, y1, x2, y2 = f(gt_bboxes[i, j])
            c = int(gt_labels[i, j, 0])
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            # Rule 1 (TAL: sides below stride_val are set to stride_val about the centre)
            w1, h1 = (stride_val if w < stride_val else w), (stride_val if h < stride_val else h)
            lx, ly, rx, ry = cx - w1 / 2, cy - h1 / 2, cx + w1 / 2, cy + h1 / 2
            cand = [a for a in range(n) if anc[a][0] - lx > 1e-9 and anc[a][1] - ly > 1e-9
                    and rx - anc[a][0] > 1e-9 and ry - anc[a][1] > 1e-9]
            # Rule 2
            iou, s = {}, {}
            for a in cand:
                iou_t = bbox_iou(gt_bboxes[i, j].float(), pd_bboxes[i, a].float(), xywh=False).clamp(0)
                p = pd_scores[i, a, c].float() * (pd_obj[i, a, 0].float() if pd_obj is not None else 1.0)
                iou[a], s[a] = float(iou_t), float(p.pow(alpha) * iou_t.pow(beta))
            ks[i, j] = 1 if fixed_k is None else fixed_k
            if not cand:
                continue
            # Rule 3
            best = min(cand, key=lambda a: (-s[a], (anc[a][0] - cx) ** 2 + (anc[a][1] - cy) ** 2, a))
            mx, my = anc[best]
            # Rule 4
            sx, sy = torch.tensor(max(w, stride_val)), torch.tensor(max(h, stride_val))
            g = {a: float(torch.exp(-0.5 * (((torch.tensor(anc[a][0]) - mx) / sx) ** 2
                                            + ((torch.tensor(anc[a][1]) - my) / sy) ** 2))) for a in cand}
            # Rule 5
            if fixed_k is None:
                rank_key = (lambda a: (-g[a] * iou[a], a)) if prior else (lambda a: (-iou[a], a))
                top = sorted(cand, key=rank_key)[:q]
                total = torch.zeros(())
                for a in top:
                    total += iou[a]  # float32, in rank order
                ks[i, j] = max(1, math.floor(float(total)))
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
        per_gt = {}
        for a, (j, sv, _) in final.items():
            per_gt.setdefault(j, []).append(sv)
        exp = 1.0 / (u * (alpha + beta))
        for a, (j, sv, iv) in final.items():
            mean = sum(per_gt[j]) / len(per_gt[j])
            weights[i, a] = (sv / mean) ** exp if mean > 0 else 1.0
            labels[i, a] = int(gt_labels[i, j, 0])
            bboxes[i, a] = gt_bboxes[i, j]
            target[i, a, labels[i, a]] = iv
            fg[i, a] = True
            gt_idx[i, a] = j
    return labels, bboxes, target, fg, gt_idx, weights, ks
