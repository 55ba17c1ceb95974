"""The rotated geometry of rules 1, 2 and 4 for the loop reference (`reference.reference_fss(geometry=Rotated)`),
written one GT and one anchor at a time from the rules of issue 9 (test oracle only)."""

from __future__ import annotations

import torch
from ultralytics.utils.metrics import probiou


class Rotated:
    """xywhr boxes: candidates inside (or on) the floored rotated box, probiou, and the prior with covariance
    R diag(w², h²) Rᵀ."""

    dims = 5

    def __init__(self, stride_val):
        self.stride_val = stride_val

    def centre_size(self, box):
        x, y, w, h, _ = box.float().tolist()
        return x, y, w, h

    def floored(self, box):
        """Float32 (x, y, w, h, r) with sides below stride_val raised to it."""
        x, y, w, h, r = box.float()
        sv = torch.tensor(float(self.stride_val))
        return x, y, (sv if w < sv else w), (h if h >= sv else sv), r

    def inside(self, box, xy):
        """Rule 1: with corner a and edges ab (along w), ad (along h): 0 <= ap.ab <= |ab|², 0 <= ap.ad <= |ad|²."""
        x, y, w, h, r = self.floored(box)
        cos, sin = torch.cos(r), torch.sin(r)
        vw, vh = torch.stack([w / 2 * cos, w / 2 * sin]), torch.stack([-h / 2 * sin, h / 2 * cos])
        c = torch.stack([x, y])
        a, b, d = c + vw + vh, c + vw - vh, c - vw + vh  # three corners (Ultralytics' corner order)
        ab, ad = b - a, d - a
        ap = torch.tensor(xy, dtype=torch.float32) - a
        t_ab, t_ad = float((ap * ab).sum()), float((ap * ad).sum())
        return 0 <= t_ab <= float((ab * ab).sum()) and 0 <= t_ad <= float((ad * ad).sum())

    def iou(self, gt, pd):
        return probiou(gt.float()[None], pd.float()[None])[0, 0].clamp(0)

    def prior(self, box, xy, mu):
        """Rule 4 with the rotated covariance: Mahalanobis distance in the GT's own axes, sides floored (float32)."""
        _, _, w, h, r = self.floored(box)
        d = torch.tensor(xy) - torch.tensor(mu)
        along_w = d[0] * torch.cos(r) + d[1] * torch.sin(r)
        along_h = -d[0] * torch.sin(r) + d[1] * torch.cos(r)
        return float(torch.exp(-0.5 * ((along_w / w) ** 2 + (along_h / h) ** 2)))
