"""The paper's baseline assigners (Tables 2, 3), on FSS's pair lists and result structure.

Each is a `PairAssigner` (`assign.pairs`), a sibling of `FSSAssigner`: it lists its own candidate pairs
(`candidates`) and chooses its positives by its own rule (`choose`); the pair listing, the soft targets and the
result are the ones FSS uses. Positives get weight 1 and FSS's soft target (`soft_target`: the prediction IoU, or
TAL-scaled with s = p^alpha * IoU^beta computed on the baseline's own positives, as TaskAlignedAssigner scales its
targets), so under the same `fss_target` / `fss_box` / `fss_norm` keys the loss (`train/loss.py`) treats every
assigner alike and a comparison changes the assignment only. Each takes `PairAssigner`'s arguments (`num_classes`,
`alpha`, `beta`, `stride`, `soft_target`) and its own rule's, by keyword.

    MaxIoUAssigner   RetinaNet's thresholds (Lin et al., ICCV 2017) on a virtual square anchor of side
                     8 * stride at each point, as the ATSS paper does for anchor-free heads; semantics of
                     MMDetection's `MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0)`
                     (`pos_iou`, `neg_iou`).
    ATSSAssigner     ATSS (Zhang et al., CVPR 2020): per level the 9 anchors nearest the GT centre, IoU threshold
                     mean + std of their anchor-box IoUs, anchor centre inside the GT; semantics of MMDetection's
                     `ATSSAssigner(topk=9)` (`topk`).
    SimOTAAssigner   SimOTA (YOLOX, Ge et al., 2021): the pool of anchors in any GT's box or within 2.5 strides of
                     any GT's centre, cost = cls BCE + 3 * (-log IoU) + 1e5 outside the GT's own box-and-centre,
                     dynamic k from the top-10 IoUs over the pool, the cheapest GT of all wins a contested anchor;
                     the rule of YOLOX 0.1.x's `get_in_boxes_info` / `dynamic_k_matching` and MMDetection's
                     `SimOTAAssigner(center_radius=2.5, candidate_topk=10, iou_weight=3.0)` (`radius`,
                     `candidate_topk`, `iou_weight`).
"""

from __future__ import annotations

import torch
from ultralytics.utils.metrics import bbox_iou

from ultralytics_fss.assign.candidates import (
    centre_region,
    device_constant,
    in_box_pairs,
    strictly_inside,
)
from ultralytics_fss.assign.pairs import (
    FSSAssignResult,
    PairAssigner,
    Pairs,
    best_in_groups,
    iou_sum_k,
    top_k_in_groups,
)

ANCHOR_SCALE = 8  # side of the virtual square anchor, in strides (ATSS paper, anchor-free setting)
ATSS_WINDOW = 4.5  # strides either side of the GT centre that hold its 9 nearest anchors (`ATSSAssigner.candidates`)
ATSS_INSIDE_MARGIN = 0.01  # px; MMDetection's `ATSSAssigner` keeps anchor centres more than 0.01 inside the GT
SIMOTA_LOG_EPS = 1e-8  # YOLOX's `-torch.log(pair_wise_ious + 1e-8)`: IoU 0 costs 3 * 18.4, finite
SIMOTA_OUTSIDE_COST = 1e5  # YOLOX's penalty for an anchor outside the GT's own box-and-centre region


def anchor_strides(grid: list[tuple[int, int]], strides: list[float], device: torch.device) -> torch.Tensor:
    """(N,) stride of each anchor, level by level as `make_anchors` lists them (filled on the device: no host sync)."""
    return torch.cat([torch.full((h * w,), s, dtype=torch.float32, device=device) for s, (h, w) in zip(strides, grid)])


def anchor_boxes(anchors: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """(P, 4) xyxy virtual square anchors of side ANCHOR_SCALE * stride centred on (P, 2) anchor points."""
    half = (ANCHOR_SCALE * strides / 2)[:, None]
    return torch.cat([anchors - half, anchors + half], -1)


class BaselineAssigner(PairAssigner):
    """The baselines' shared frame: pair listing, then `choose` (the subclass's rule), unit weights, soft targets.

    The rules read boxes only through `box_centres`, `pair_iou` and the three geometry methods below (xyxy boxes
    here), so their oriented-box versions (`assign.rotated`) override the geometry and keep the rules.
    """

    # ------------------------------------------------------------------- geometry (xywhr: `assign.rotated`)
    @staticmethod
    def search_boxes(gt_bboxes: torch.Tensor) -> torch.Tensor:
        """(b, M, 4) xyxy boxes whose in-box anchors (`in_box_pairs`, grown as each rule says) hold every candidate
        of the rule: the GT boxes themselves."""
        return gt_bboxes

    @staticmethod
    def anchor_iou(gt_boxes: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """(P,) IoU of each pair's GT box (P, 4) with the virtual square anchor (`anchor_boxes`) at its anchor
        centre (P, 2) of stride (P,), clamped at 0."""
        return bbox_iou(gt_boxes, anchor_boxes(anchors, strides), xywh=False).squeeze(-1).clamp_(0)

    @staticmethod
    def inside(anchors: torch.Tensor, gt_boxes: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
        """(P,) bool: anchor centre (P, 2) inside its GT box (P, 4) by more than `margin` px from every side."""
        return strictly_inside(anchors, gt_boxes[..., :2], gt_boxes[..., 2:], margin)

    @torch.no_grad()
    def assign(
        self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, grid=None, trace=None
    ) -> tuple[FSSAssignResult, torch.Tensor | None]:
        """Assign with the baseline's rule; arguments as for `PairAssigner.assign`, `grid` required.

        Returns:
            result (FSSAssignResult): Weights 1 on positives; soft target as FSS's (`soft_target`): the prediction
                IoU, or TAL-scaled with s = p^alpha * IoU^beta of the baseline's own positives; labels -1 on
                anchors to ignore (Max-IoU only).
            k (torch.Tensor | None): (b, M) dynamic k (SimOTA), else None.
        """
        self.require_grid(grid)
        x = self.pairs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj, grid)
        strides = anchor_strides(grid, self.stride, anc_points.device)
        pos, k, ignore = self.choose(x, strides, pd_scores, pd_bboxes, pd_obj, trace)
        scores = self.pair_scores(x.p[pos], x.ious[pos])  # (F,) s of Eq. (3), for TAL-scaled targets only
        result = self.targets(x, pos, gt_bboxes, scores, torch.ones_like(scores))
        if ignore is not None:
            result.labels.view(-1)[ignore & ~result.fg_mask.view(-1)] = -1
        if trace is not None:
            trace.update(bi=x.bi, gi=x.gi, ai=x.ai, p=x.p, ious=x.ious, pos=pos)
        return result, None if k is None else k.view(x.b, x.m)

    def choose(
        self,
        x: Pairs,
        strides: torch.Tensor,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        pd_obj: torch.Tensor | None,
        trace: dict | None = None,
    ):
        """The baseline's rule on the pairs `x` (`strides` (N,) of each anchor; the predictions as `assign` got them;
        `trace` for any per-pair values of its own). Return (pos (F,) pair indices of the positives, k (b*M,) or None,
        ignore (b*N,) bool or None)."""
        raise NotImplementedError

    @staticmethod
    def keep_best_per_anchor(x: Pairs, sel: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Among the pairs `sel` keep one per (image, anchor): largest `key`, then lower GT index."""
        return sel[best_in_groups(x.anchor_id[sel], key[sel], -x.gi[sel].float(), num_groups=x.num_anchors)]


class MaxIoUAssigner(BaselineAssigner):
    """Max-IoU (RetinaNet) on virtual anchors: IoU >= 0.5 positive, < 0.4 negative, between ignored; every anchor
    holding a GT's max IoU (> 0) is made that GT's positive too (MMDetection `min_pos_iou=0, gt_max_assign_all=True`;
    with anchors larger than the object all anchors whose box contains it tie), later GTs winning an anchor two GTs
    call best, as MMDetection's loop does."""

    def __init__(self, *args, pos_iou: float = 0.5, neg_iou: float = 0.4, **kwargs):
        """Arguments of `PairAssigner`, and the thresholds: IoU >= `pos_iou` positive, < `neg_iou` negative."""
        super().__init__(*args, **kwargs)
        self.pos_iou = pos_iou
        self.neg_iou = neg_iou

    def candidates(self, anc_points, gt_bboxes, valid, grid=None):
        """Anchors whose virtual box overlaps the GT: centre strictly inside the GT grown by half an anchor."""
        self.require_grid(grid)
        boxes = self.search_boxes(gt_bboxes)
        return in_box_pairs(anc_points, boxes, valid, self.stride, grid, 0.0, grow=ANCHOR_SCALE / 2)

    def choose(self, x, strides, pd_scores, pd_bboxes, pd_obj, trace=None):
        a_iou = self.anchor_iou(x.gt_boxes, x.anchors, strides[x.ai])  # (P,)
        # Per anchor: its max IoU over GTs and the GT holding it.
        best_of_anchor = self.keep_best_per_anchor(x, torch.arange(len(a_iou), device=a_iou.device), a_iou)
        max_iou = torch.zeros(x.num_anchors, device=a_iou.device)
        max_iou[x.anchor_id[best_of_anchor]] = a_iou[best_of_anchor]
        pos = best_of_anchor[a_iou[best_of_anchor] >= self.pos_iou]
        ignore = (max_iou >= self.neg_iou) & (max_iou < self.pos_iou)
        # Each GT's best anchors: every anchor with the GT's max IoU (> 0), later GTs winning shared anchors.
        gt_max = torch.zeros(x.num_groups, device=a_iou.device).scatter_reduce_(0, x.group, a_iou, "amax")
        gt_best = ((a_iou == gt_max[x.group]) & (a_iou > 0)).nonzero().squeeze(1)
        forced = self.keep_best_per_anchor(x, gt_best, x.gi.float())  # the later (larger) GT index wins
        taken = torch.zeros(x.num_anchors, dtype=torch.bool, device=a_iou.device)
        taken[x.anchor_id[forced]] = True
        pos = torch.cat([pos[~taken[x.anchor_id[pos]]], forced])
        return pos, None, ignore


class ATSSAssigner(BaselineAssigner):
    """ATSS: per level the `topk` (9) anchors nearest the GT centre (ties: lower anchor index), IoU threshold
    mean + std (unbiased) of their virtual-anchor IoUs; positive if IoU >= threshold and the anchor centre lies
    inside the GT (more than 0.01 px from every side); an anchor several GTs select goes to the larger IoU."""

    def __init__(self, *args, topk: int = 9, **kwargs):
        """Arguments of `PairAssigner`, and `topk` (1 to 9: the candidate window holds the 9 nearest anchors)."""
        if not 1 <= topk <= 9:
            raise ValueError(f"ATSSAssigner(topk={topk}): 1 to 9 (the {ATSS_WINDOW}-stride window holds 9 anchors)")
        super().__init__(*args, **kwargs)
        self.topk = topk

    def candidates(self, anc_points, gt_bboxes, valid, grid=None):
        """The `topk` anchors nearest the GT centre on each level, ties to the lower anchor index: enumerated from
        the anchors within `ATSS_WINDOW` (4.5) strides of the centre on both axes, then the nearest by distance. That
        window holds them: any point of the image has 9 anchors within 2.5 strides per axis (3.54 strides away at
        most, even in a corner), and every anchor outside the window is more than 4.5 strides away."""
        self.require_grid(grid)
        centres = self.box_centres(gt_bboxes)
        points = torch.cat([centres, centres], -1)  # (b, M, 4) zero-size boxes at the GT centres
        bi, gi, ai = in_box_pairs(anc_points, points, valid, self.stride, grid, 0.0, grow=ATSS_WINDOW)  # windows
        strides = anchor_strides(grid, self.stride, anc_points.device)[ai]
        d = (anc_points[ai] - centres[bi, gi]).float()
        level = torch.bucketize(strides, device_constant(self.stride, strides.dtype, strides.device))
        m, n_levels = gt_bboxes.shape[1], len(self.stride)
        group = (bi * m + gi) * n_levels + level  # (P',) one group per (image, GT, level)
        keep = top_k_in_groups(group, gt_bboxes.shape[0] * m * n_levels, self.topk, -d.square().sum(-1), -ai.float())
        keep = keep.nonzero().squeeze(1)  # one host sync for the three index tensors
        return bi[keep], gi[keep], ai[keep]  # in the (image, GT, anchor) order of `in_box_pairs`

    def choose(self, x, strides, pd_scores, pd_bboxes, pd_obj, trace=None):
        a_iou = self.anchor_iou(x.gt_boxes, x.anchors, strides[x.ai])  # (P,)
        count = torch.zeros(x.num_groups, device=a_iou.device).index_add_(0, x.group, torch.ones_like(a_iou))
        mean = torch.zeros_like(count).index_add_(0, x.group, a_iou) / count.clamp(min=1)
        var = torch.zeros_like(count).index_add_(0, x.group, (a_iou - mean[x.group]).square())
        std = (var / (count - 1).clamp(min=1)).sqrt()
        inside = self.inside(x.anchors, x.gt_boxes, ATSS_INSIDE_MARGIN)
        sel = ((a_iou >= (mean + std)[x.group]) & inside).nonzero().squeeze(1)
        return self.keep_best_per_anchor(x, sel, a_iou), None, None


class SimOTAAssigner(BaselineAssigner):
    """SimOTA as YOLOX 0.1.x defines it (`YOLOXHead.get_in_boxes_info`, `dynamic_k_matching`; MMDetection's
    `SimOTAAssigner(center_radius=2.5)` is the same rule; YOLOX >= 0.3 changed the geometry to the centre region
    alone). Per image:

    1. The pool: every anchor whose centre lies strictly inside some GT box or strictly within `radius` strides
       of some GT centre (boxes not floored). Every pool anchor is a candidate of every GT.
    2. cost_ij = BCE(sqrt(p_cls * p_obj), one-hot of c_j) summed over classes + `iou_weight` (3) *
       (-log(IoU_ij + 1e-8)) + 1e5 unless anchor i lies in both GT j's box and GT j's centre region.
    3. k_j = max(1, floor(sum of GT j's top-min(`candidate_topk` (10), pool) IoUs over the pool)) (the dynamic k
       of FSS's Eq. (5), ranked by IoU); GT j takes its k_j cheapest anchors (ties: lower anchor index), anchors
       outside its own region included, at the 1e5 penalty.
    4. An anchor taken by several GTs goes to the cheapest GT among all GTs of the image (ties: lower GT index),
       even one that did not take it, as YOLOX's `cost.min(0)` over the whole column does.
    """

    def __init__(self, *args, radius: float = 2.5, candidate_topk: int = 10, iou_weight: float = 3.0, **kwargs):
        """Arguments of `PairAssigner`, and SimOTA's: the centre region's half-side `radius` in strides, the IoUs
        `candidate_topk` summed into k, the weight `iou_weight` of the IoU cost."""
        super().__init__(*args, **kwargs)
        self.radius = radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight

    def candidates(self, anc_points, gt_bboxes, valid, grid=None):
        """Step 1: every (valid GT, pool anchor) pair of each image, listed by (image, GT, anchor)."""
        self.require_grid(grid)
        b, n = valid.shape[0], anc_points.shape[0]
        # A superset of each GT's box-or-centre anchors (grown by half a stride), then the exact rule on it.
        boxes = self.search_boxes(gt_bboxes)  # their centres are the GTs' (a rotated box's hull is centred on it)
        bi, gi, ai = in_box_pairs(anc_points, boxes, valid, self.stride, grid, 0.0, self.radius, grow=0.5)
        strides = anchor_strides(grid, self.stride, anc_points.device)[ai]
        in_box, in_centre = self.regions(anc_points[ai], gt_bboxes[bi, gi], strides)
        hits = torch.zeros(b * n, dtype=torch.long, device=anc_points.device)  # a count: no boolean indexing
        hits.index_add_(0, bi * n + ai, (in_box | in_centre).long())
        return (valid[:, :, None] & (hits.view(b, 1, n) > 0)).nonzero(as_tuple=True)

    def regions(self, anchors: torch.Tensor, gt_boxes: torch.Tensor, strides: torch.Tensor):
        """(P,) bool each: anchor centre strictly inside the GT box; strictly within `radius` strides of the GT
        centre on both axes (YOLOX's `> 0.0` on the four deltas)."""
        in_box = self.inside(anchors, gt_boxes)
        in_centre = strictly_inside(anchors, *centre_region(self.box_centres(gt_boxes), self.radius, strides[:, None]))
        return in_box, in_centre

    def choose(self, x, strides, pd_scores, pd_bboxes, pd_obj, trace=None):
        in_box, in_centre = self.regions(x.anchors, x.gt_boxes, strides[x.ai])
        probs = pd_scores[x.bi, x.ai].float()  # (P, C)
        if pd_obj is not None:
            probs = probs * pd_obj[x.bi, x.ai].float()
        probs = probs.nan_to_num(0.0).clamp(0, 1).sqrt()
        onehot = torch.nn.functional.one_hot(x.gt_labels[x.bi, x.gi], probs.shape[-1]).float()
        with torch.autocast(probs.device.type, enabled=False):  # CUDA autocast refuses BCE whatever the dtype
            cls_cost = torch.nn.functional.binary_cross_entropy(probs, onehot, reduction="none").sum(-1)
        outside = (~(in_box & in_centre)).float()
        cost = cls_cost + self.iou_weight * -torch.log(x.ious + SIMOTA_LOG_EPS) + SIMOTA_OUTSIDE_COST * outside
        # Step 3: dynamic k from the top-`candidate_topk` IoUs of the pool, then the k cheapest anchors of each GT.
        k = iou_sum_k(x.group, x.num_groups, x.ious, self.candidate_topk, x.ious) * x.valid.view(-1)  # (b*M,)
        sel = top_k_in_groups(x.group, x.num_groups, k, -cost)  # (P,) lowest cost first
        # Step 4: an anchor taken by several GTs goes to its cheapest pair among all its pairs (all GTs).
        taken = torch.zeros(x.num_anchors, dtype=torch.long, device=cost.device).index_add_(0, x.anchor_id, sel.long())
        single = (sel & (taken[x.anchor_id] == 1)).nonzero().squeeze(1)
        contested = (taken[x.anchor_id] > 1).nonzero().squeeze(1)  # every pair of each contested anchor
        pos = torch.cat([single, self.keep_best_per_anchor(x, contested, -cost)])
        return pos[torch.sort(pos).indices], k, None

