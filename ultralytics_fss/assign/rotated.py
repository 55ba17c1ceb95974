"""FSS and the paper's Table 6 baselines for oriented boxes: the geometry that differs, and nothing else.

Boxes are xywhr (centre, width, height, angle in radians), pixels, as Ultralytics' OBB loss hands them to
`RotatedTaskAlignedAssigner`. Steps 2-3 and 5-8 (Eq. (3) scores, Eq. (2) best sample, Eqs. (4), (5), (7) dynamic k,
selection, conflicts, Eq. (8) weights, soft targets) are `FSSAssigner`'s, unchanged. Overridden:

1. Candidates: anchor centres inside the rotated GT box, sides shorter than `stride_val` floored to it, boundary
   included: the rule of `RotatedTaskAlignedAssigner.select_candidates_in_gts` (Ultralytics 8.4.190,
   ultralytics/utils/tal.py lines 503-536), written again with the same float operations by `floor_rotated_sides`
   and `inside_rotated` (`tests/test_rotated.py` checks the pairs against Ultralytics' own). With `grid`, listed in
   O(P): the in-box pairs of the box's axis-aligned hull (`in_box_pairs`), then the exact rotated comparison;
   without, the same comparison on the dense (b, M, N) grid.
   IoU: probiou, the overlap Ultralytics' rotated assigner and loss use (closed form, O(P); the exact polygon IoU
   would need a polygon clip per pair and is not what the loss optimises).
4. Gaussian prior, Eq. (6) with the GT's rotated covariance Sigma = R diag(w^2, h^2) R^T (w, h floored as in step 1):
   g = exp(-((d . e_w)^2 / w^2 + (d . e_h)^2 / h^2) / 2), d = anchor - mu, e_w = (cos r, sin r), e_h = (-sin r, cos r).
   At r = 0 this is the axis-aligned prior of `FSSAssigner.gaussian_prior`.

The baselines of the paper's DOTA table (its Table 6: Max-IoU, ATSS, SimOTA) keep their rules (`assign.baselines`)
and take the oriented geometry of `RotatedGeometry`: probiou for every overlap (the prediction's, and the virtual
square anchor's, an xywhr box at angle 0, in Max-IoU's thresholds and ATSS's mean + std), the box centre for ATSS's
nearest anchors and SimOTA's centre square, and "strictly inside the rotated box" (in the box's own axes, sides not
floored) for ATSS's inside test and SimOTA's box region; candidates are enumerated from the axis-aligned hull of the
rotated box, grown as each rule grows the box, then the exact rule. MMRotate's rotated versions of these assigners
measure the exact polygon IoU instead; probiou is the overlap Ultralytics' rotated assigner and loss use, and the one
rotated FSS ranks by, so the rows of the table differ in their rules only.
"""

from __future__ import annotations

import torch
from ultralytics.utils.metrics import probiou
from ultralytics.utils.ops import xywhr2xyxyxyxy

from ultralytics_fss.assign.baselines import ANCHOR_SCALE, ATSSAssigner, MaxIoUAssigner, SimOTAAssigner
from ultralytics_fss.assign.candidates import in_box_pairs
from ultralytics_fss.assign.fss import FSSAssigner


def floor_rotated_sides(gt_bboxes: torch.Tensor, valid: torch.Tensor, stride_val: float) -> torch.Tensor:
    """Return a copy of xywhr boxes whose width or height below `stride_val` is raised to it (valid boxes only), as
    `RotatedTaskAlignedAssigner.select_candidates_in_gts` does.

    Args:
        gt_bboxes (torch.Tensor): (..., 5) xywhr boxes (never modified).
        valid (torch.Tensor): (...) bool, True for real GTs.
        stride_val (float): Smallest side.

    Returns:
        (torch.Tensor): (..., 5) new tensor.
    """
    out = gt_bboxes.clone()
    small = (out[..., 2:4] < stride_val) & valid[..., None]
    out[..., 2:4] = torch.where(small, stride_val, out[..., 2:4])  # a Python scalar: no host-to-device copy
    return out


def inside_rotated(xy: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Whether points lie inside (or on) rotated rectangles, with the float operations of Ultralytics' rule
    (`RotatedTaskAlignedAssigner.select_candidates_in_gts`, ultralytics/utils/tal.py lines 525-536 in 8.4.190).

    Args:
        xy (torch.Tensor): (..., 2) points.
        corners (torch.Tensor): (..., 4, 2) corners of the rectangles (`xywhr2xyxyxyxy` order), broadcastable with
            `xy`: (P, 4, 2) for P pairs, or (b, M, 1, 4, 2) against (N, 2) anchors for the dense (b, M, N) mask.

    Returns:
        (torch.Tensor): (...) bool, the broadcast shape without the last axis.
    """
    a, b, d = corners[..., 0, :], corners[..., 1, :], corners[..., 3, :]  # (..., 2) each
    ab, ad = b - a, d - a  # (..., 2)
    apx, apy = xy[..., 0] - a[..., 0], xy[..., 1] - a[..., 1]
    norm_ab, norm_ad = (ab * ab).sum(-1), (ad * ad).sum(-1)
    ap_dot_ab = apx * ab[..., 0] + apy * ab[..., 1]
    ap_dot_ad = apx * ad[..., 0] + apy * ad[..., 1]
    return (ap_dot_ab >= 0) & (ap_dot_ab <= norm_ab) & (ap_dot_ad >= 0) & (ap_dot_ad <= norm_ad)


def rotated_hulls(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyxy axis-aligned hulls of (..., 5) xywhr boxes (the corners' extent)."""
    corners = xywhr2xyxyxyxy(boxes)  # (..., 4, 2)
    return torch.cat([corners.amin(-2), corners.amax(-2)], -1)


def strictly_inside_rotated(points: torch.Tensor, boxes: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Whether points lie inside rotated boxes by more than `margin` from every side, measured in each box's own axes
    (the oriented form of `strictly_inside`; a NaN coordinate is never inside).

    Args:
        points (torch.Tensor): (..., 2) points.
        boxes (torch.Tensor): (..., 5) xywhr boxes, broadcastable with `points`.
        margin (float): Distance from every side, pixels.

    Returns:
        (torch.Tensor): (...) bool.
    """
    d = points - boxes[..., :2]
    cos, sin = boxes[..., 4].cos(), boxes[..., 4].sin()
    along_w = d[..., 0] * cos + d[..., 1] * sin  # d . e_w
    along_h = -d[..., 0] * sin + d[..., 1] * cos  # d . e_h
    return (along_w.abs() < boxes[..., 2] / 2 - margin) & (along_h.abs() < boxes[..., 3] / 2 - margin)


class RotatedGeometry:
    """The oriented-box geometry of any `PairAssigner` (xywhr pixels): probiou, centres, hulls, the inside test.
    Listed first among a rotated assigner's bases, it overrides the axis-aligned methods of the same names."""

    def pair_iou(self, gt_boxes: torch.Tensor, pd_boxes: torch.Tensor) -> torch.Tensor:
        """Probiou of each candidate pair, clamped at 0; (P, 5) xywhr in, (P,) out."""
        return probiou(gt_boxes, pd_boxes).squeeze(-1).clamp_(0)

    @staticmethod
    def box_centres(boxes: torch.Tensor) -> torch.Tensor:
        """(..., 2) centres of (..., 5) xywhr boxes."""
        return boxes[..., :2]

    @staticmethod
    def search_boxes(gt_bboxes: torch.Tensor) -> torch.Tensor:
        """(b, M, 4) xyxy hulls of the (b, M, 5) rotated GT boxes, one pixel wider on every side (rounding)."""
        hulls = rotated_hulls(gt_bboxes)
        return torch.cat([hulls[..., :2] - 1.0, hulls[..., 2:] + 1.0], -1)

    @staticmethod
    def anchor_iou(gt_boxes: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """(P,) probiou of each pair's GT box (P, 5) with the virtual square anchor of side `ANCHOR_SCALE` strides at
        angle 0 centred on its anchor (P, 2) of stride (P,), clamped at 0."""
        side = (ANCHOR_SCALE * strides)[:, None]
        anchor_boxes = torch.cat([anchors, side, side, torch.zeros_like(side)], -1)  # (P, 5) xywhr
        return probiou(gt_boxes, anchor_boxes).squeeze(-1).clamp_(0)

    @staticmethod
    def inside(anchors: torch.Tensor, gt_boxes: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
        """(P,) bool: anchor centre (P, 2) strictly inside its rotated GT box (P, 5) by more than `margin` px."""
        return strictly_inside_rotated(anchors, gt_boxes, margin)


class RotatedMaxIoUAssigner(RotatedGeometry, MaxIoUAssigner):
    """Max-IoU on oriented boxes: `MaxIoUAssigner`'s thresholds on the probiou of the GT with the virtual square
    anchor, candidates the anchors whose virtual box overlaps the rotated GT's hull."""


class RotatedATSSAssigner(RotatedGeometry, ATSSAssigner):
    """ATSS on oriented boxes: `ATSSAssigner`'s nearest anchors to the box centre, mean + std of their probiou with
    the virtual square anchor, anchor centre strictly inside the rotated GT."""


class RotatedSimOTAAssigner(RotatedGeometry, SimOTAAssigner):
    """SimOTA on oriented boxes: `SimOTAAssigner`'s pool, cost and dynamic k with the rotated box region (anchor
    centre strictly inside the rotated GT), the centre square about the box centre, and probiou."""


class RotatedFSSAssigner(RotatedGeometry, FSSAssigner):
    """FSS on oriented boxes (xywhr pixels): overrides `candidates` and `gaussian_prior`, and takes `pair_iou` and
    `box_centres` from `RotatedGeometry`.

    Examples:
        >>> assigner = RotatedFSSAssigner(num_classes=15, alpha=0.5, beta=6.0, u=2.0, q=10, stride=[8, 16, 32])
        >>> result, k = assigner.assign(pd_scores, pd_rboxes, anc_points, gt_labels, gt_rboxes, mask_gt, grid=grid)
    """

    def __init__(self, *args, **kwargs):
        """Arguments as for `FSSAssigner`; `radius` must be 0 (no centre region for rotated boxes)."""
        super().__init__(*args, **kwargs)
        if self.radius > 0:
            raise ValueError("RotatedFSSAssigner supports radius=0 only (fss_radius is an axis-aligned ablation)")

    def candidates(
        self,
        anc_points: torch.Tensor,
        gt_bboxes: torch.Tensor,
        valid: torch.Tensor,
        grid: list[tuple[int, int]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step 1 for rotated boxes: anchor centres inside the (floored) rotated GT box, by (image, GT, anchor).

        Args:
            anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
            gt_bboxes (torch.Tensor): (b, M, 5) xywhr GT boxes.
            valid (torch.Tensor): (b, M) bool, True for real GTs.
            grid (list[tuple[int, int]], optional): (height, width) of each level: O(P) listing; None: through the
                dense (b, M, N) mask of the same rule.

        Returns:
            (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): (P,) int64 image, GT and anchor index of each pair.
        """
        floored = floor_rotated_sides(gt_bboxes, valid, self.stride_val)  # (b, M, 5)
        corners = xywhr2xyxyxyxy(floored)  # (b, M, 4, 2)
        if grid is None:  # every (GT, anchor): (b, M, N)
            return (inside_rotated(anc_points, corners[:, :, None]) & valid[..., None]).nonzero(as_tuple=True)
        hull = self.search_boxes(floored)  # (b, M, 4) xyxy, 1 px margin
        bi, gi, ai = in_box_pairs(anc_points, hull, valid, self.stride, grid, stride_val=0.0)  # a superset
        keep = inside_rotated(anc_points[ai], corners[bi, gi]).nonzero().squeeze(1)  # the exact rule, same floats
        return bi[keep], gi[keep], ai[keep]

    def gaussian_prior(self, anchors: torch.Tensor, mu: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
        """Eq. (6) with the rotated covariance R diag(w^2, h^2) R^T, w and h floored to `stride_val`.

        Args:
            anchors (torch.Tensor): (P, 2) anchor centres.
            mu (torch.Tensor): (P, 2) centre of the pair's GT prior (its best sample).
            gt_boxes (torch.Tensor): (P, 5) xywhr GT boxes.

        Returns:
            (torch.Tensor): (P,) g in (0, 1].
        """
        wh = gt_boxes[:, 2:4].clamp(min=self.stride_val)  # (P, 2)
        cos, sin = gt_boxes[:, 4].cos(), gt_boxes[:, 4].sin()
        d = anchors - mu  # (P, 2)
        along_w = d[:, 0] * cos + d[:, 1] * sin  # d . e_w
        along_h = -d[:, 0] * sin + d[:, 1] * cos  # d . e_h
        return torch.exp(-0.5 * ((along_w / wh[:, 0]).square() + (along_h / wh[:, 1]).square()))  # Eq. (6)
