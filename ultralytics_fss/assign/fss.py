"""FSS label assignment: the math of sections 3.1 and 3.2 of the paper, and nothing else.

Reference:
    "FSS: Focusing on Suboptimal Samples for Detector-Agnostic Label Assignment in Object Detection" (2026),
    Eqs. (2)-(8). The loss of Eq. (9) lives in `ultralytics_fss.train.loss`.

Axes: b images, M ground truths (padded), N anchors, C classes, P candidate (GT, anchor) pairs. Boxes are xyxy
pixels, `pd_scores` are probabilities. Only the P in-box pairs (about 1% of b*M*N on dense images) are ever listed
and scored: with the feature-map grid (as `FSSDetectionLoss` passes it) step 1 enumerates them directly
(`ultralytics_fss.assign.candidates`), so every tensor is (P,), (b, M) or (b, N) sized and cost grows with P, not
with b*M*N as in Ultralytics' TaskAlignedAssigner (benchmarks/assigner.py). Sizes that depend on the data are read
back to the host only where a tensor's size needs them: 5 host synchronisations per call on CUDA (2 to list the
pairs, 1 for the NaN check, 2 for the selected pairs and the positives after conflicts; TAL makes 2; counted by
benchmarks/host_syncs.py).
"""

from __future__ import annotations

from typing import Callable

import torch

from ultralytics_fss.assign.candidates import in_box_mask, in_box_pairs
from ultralytics_fss.assign.pairs import (
    FSSAssignResult,
    PairAssigner,
    best_in_groups,
    first_in_groups,
    group_sizes,
    iou_sum_k,
    top_k_in_groups,
)


class FSSAssigner(PairAssigner):
    """Focusing on Suboptimal Samples: dynamic-k selection around a Gaussian prior, with Eq. (8) weights.

    A `PairAssigner`, sibling of the paper's baselines (`assign.baselines`): the pair listing, soft targets and result
    are theirs too. Each step below is one method (`candidates`, `pair_iou`, `pair_scores`, `best_sample`,
    `gaussian_prior`, `dynamic_k`, `select`, `resolve_conflicts`, `weights`), so a variant (rotated boxes, another
    candidate region) overrides the step that differs. Per image and per valid GT j (class c_j, size w_j x h_j), in
    order:

    1. Candidates C_j: anchor centres strictly inside the GT box, each side floored to `stride_val` about its
       centre (Ultralytics TAL's rule; `stride_val` = stride[1] with several levels, else stride[0]).
    2. Scores, Eq. (3): s_ij = (p_cls_i[c_j] * p_obj_i)^alpha * IoU_ij^beta, with plain IoU clamped at 0.
    3. Potentially optimal sample, Eq. (2): argmax_i s_ij; ties go to the centre nearest the GT centre, then to the
       lower anchor index.
    4. Gaussian prior, Eq. (6): g_ij = exp(-((x_i - mu_x)^2 / w_j^2 + (y_i - mu_y)^2 / h_j^2) / 2) around that
       anchor, with w_j, h_j floored to `stride_val` as in step 1.
    5. Dynamic k, Eqs. (4), (5), (7): k_j = max(1, floor(sum of IoU_ij over the top min(q, |C_j|) candidates by
       g_ij * IoU_ij)); ties in g*IoU go to the lower anchor index. (`min_k` > 1 raises the floor of 1.)
    6. Suboptimal samples: the top min(k_j, |C_j|) candidates by s_ij (ties: larger g_ij, then lower anchor index).
    7. Conflicts: an anchor chosen by several GTs keeps the one with the largest s_ij (ties: larger IoU, then lower
       GT index).
    8. Weights, Eq. (8): w_i = (s_ij / mean_{psi(j)} s)^(1 / (u * (alpha + beta))) over GT j's final positives
       psi(j); all w_i = 1 when that mean is 0.

    Options beyond the paper's method: `min_k` raises the smallest k of step 5 above the paper's 1 (tiny objects,
    whose predicted IoUs stay low, otherwise get k = 1); `prior=False` ranks step 5 by IoU alone (Eq. (4) instead of Eq. (7), for
    ablations); `fixed_k` replaces the dynamic k of step 5 by a constant (1 for end-to-end one-to-one heads);
    `rescue=True` adds step 7b: a GT that lost all its positives in step 7 (crowded scenes) takes its best candidate
    by the step-6 order that no positive holds yet, conflicts among those resolved again as in step 7;
    `radius` > 0 widens step 1 to the union with a centre square of half-side `radius` strides per level (YOLOX
    SimOTA's candidate region); `soft_target="tal"` scales the classification targets as TAL does (`soft_targets`).

    Examples:
        >>> assigner = FSSAssigner(num_classes=80, alpha=0.5, beta=6.0, u=2.0, q=10, stride=[8, 16, 32])
        >>> result, k = assigner.assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, grid=grid)
        >>> labels, bboxes, scores, fg_mask, gt_idx, weights = result
    """

    def __init__(
        self,
        num_classes: int = 80,
        alpha: float = 0.5,
        beta: float = 6.0,
        u: float = 2.0,
        q: int = 10,
        stride: list[int] | None = None,
        prior: bool = True,
        fixed_k: int | None = None,
        rescue: bool = False,
        radius: float = 0.0,
        soft_target: str = "iou",
        min_k: int = 1,
    ):
        """Initialize the assigner.

        Args:
            num_classes (int): Number of classes C.
            alpha (float): Exponent of the classification term in Eq. (3).
            beta (float): Exponent of the IoU term in Eq. (3).
            u (float): Smoothing factor of the Eq. (8) exponent 1 / (u * (alpha + beta)).
            q (int): Number of candidates summed into the dynamic k, Eqs. (4), (7).
            stride (list[int], optional): Feature-level strides, as in `TaskAlignedAssigner`; [8, 16, 32] if None.
            prior (bool): Rank the dynamic-k candidates by g * IoU (Eq. (7)) rather than IoU (Eq. (4)).
            fixed_k (int, optional): Use this k for every GT instead of the dynamic k.
            rescue (bool): Give a GT left without positives by step 7 its best free candidate (step 7b).
            radius (float): Also make candidates of the anchors within `radius` strides of the GT centre (step 1;
                YOLOX SimOTA's centre region is 2.5); 0 for the in-box rule alone.
            soft_target (str): Classification target of a positive: `iou` (Eq. (9)) or `tal` (s / max s over the
                GT's positives, times their max IoU: TaskAlignedAssigner's normalised metric, on FSS's s).
            min_k (int): Smallest dynamic k (the paper's max(1, ...) is 1); not applied to `fixed_k`.
        """
        super().__init__(num_classes=num_classes, alpha=alpha, beta=beta, stride=stride, soft_target=soft_target)
        self.stride_val = self.stride[1] if len(self.stride) > 1 else self.stride[0]  # TAL's smallest GT side
        self.u = u
        self.q = q
        self.prior = prior
        self.fixed_k = fixed_k
        self.rescue = rescue
        self.radius = radius
        self.min_k = min_k

    @torch.no_grad()
    def assign(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
        pd_obj: torch.Tensor | None = None,
        grid: list[tuple[int, int]] | None = None,
        trace: dict | None = None,
        overlap: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[FSSAssignResult, torch.Tensor]:
        """Run the eight assignment steps, in float32 whatever the input dtype, without gradient.

        Args:
            pd_scores (torch.Tensor): (b, N, C) class probabilities.
            pd_bboxes (torch.Tensor): (b, N, 4) predicted boxes, xyxy pixels.
            anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
            gt_labels (torch.Tensor): (b, M, 1) GT classes.
            gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels.
            mask_gt (torch.Tensor): (b, M, 1) 1 for real GTs, 0 for padding.
            pd_obj (torch.Tensor, optional): (b, N, 1) objectness probabilities; 1 when None.
            grid (list[tuple[int, int]], optional): (height, width) in cells of each level, in `stride` order, as
                the loss knows them from its feature maps: step 1 then lists the P candidate pairs directly, in O(P).
                None: through the dense (b, M, N) mask (same pairs, more time and memory).
            trace (dict, optional): Filled with the per-pair intermediate values, for pictures and debugging: `bi`,
                `gi`, `ai` (P,) image, GT and anchor of each candidate pair; `p`, `ious`, `s`, `prior` (P,) its class
                score, IoU, Eq. (3) score and Eq. (6) prior; `best` (G,) the pair index of each GT's potentially
                optimal sample; `pos` (F,) the pair index of each final positive and `weights` (F,) its Eq. (8) weight.
            overlap (Callable, optional): (bi, gi, ai) -> (P,) overlap of each candidate pair that replaces the box
                IoU in Eq. (3) only (a task's mask IoU or OKS: `FSSDetectionLoss.task_overlap`); None: box IoU.

        Returns:
            result (FSSAssignResult): Per-anchor targets and weights.
            k (torch.Tensor): (b, M) int64 number of suboptimal samples asked for per GT (0 for padding GTs).
        """
        x = self.pairs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj, grid)  # step 1
        bi, gi, ai, group, num_groups, gt_boxes, anchors, ious, p = (
            x.bi,
            x.gi,
            x.ai,
            x.group,
            x.num_groups,
            x.gt_boxes,
            x.anchors,
            x.ious,
            x.p,
        )
        scores = self.pair_scores(p, ious if overlap is None else overlap(bi, gi, ai).float())  # (P,) Eq. (3)

        best = self.best_sample(group, num_groups, scores, anchors, gt_boxes)  # (b*M,) Eq. (2)
        prior = self.gaussian_prior(anchors, anchors[best[group]], gt_boxes)  # (P,) Eq. (6) about each GT's best
        k = self.dynamic_k(group, num_groups, ious, prior) * x.valid.view(-1)  # (b*M,) Eqs. (4), (5), (7); 0: padding
        selected = self.select(group, num_groups, scores, prior, k)  # (P,) bool, step 6
        sel = selected.nonzero().squeeze(1)  # (S,) host sync: the conflicts step sorts these S pairs, not all P
        pos = self.resolve_conflicts(sel, x.anchor_id, scores, ious, x.num_anchors)  # (F,) step 7
        if self.rescue:
            pos = self.rescue_starving(pos, group, num_groups, x.anchor_id, x.num_anchors, scores, ious, prior)  # 7b
        weights = self.weights(group[pos], num_groups, scores[pos])  # (F,) Eq. (8)
        result = self.targets(x, pos, gt_bboxes, scores[pos], weights)  # with the Eq. (9) soft target
        if trace is not None:
            best = best[group_sizes(group, num_groups) > 0]  # (G,) the GTs with candidates
            trace.update(
                bi=bi, gi=gi, ai=ai, p=p, ious=ious, s=scores, prior=prior, best=best, pos=pos, weights=weights
            )
        return result, k.view(x.b, x.m)

    # ------------------------------------------------------------------------------------- steps, in paper order
    def candidates(
        self,
        anc_points: torch.Tensor,
        gt_bboxes: torch.Tensor,
        valid: torch.Tensor,
        grid: list[tuple[int, int]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step 1: the candidate (image, GT, anchor) pairs of the valid GTs, listed by (image, GT, anchor).

        Args:
            anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
            gt_bboxes (torch.Tensor): (b, M, 4) GT boxes.
            valid (torch.Tensor): (b, M) bool, True for real GTs.
            grid (list[tuple[int, int]], optional): (height, width) of each level: list the pairs in O(P)
                (`ultralytics_fss.assign.candidates`); None: through the dense (b, M, N) mask of TAL's rule.

        Returns:
            (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): (P,) int64 image, GT and anchor index of each pair.
        """
        if grid is not None:
            return in_box_pairs(anc_points, gt_bboxes, valid, self.stride, grid, self.stride_val, self.radius)
        if self.radius > 0:  # the centre region needs the stride of each anchor
            self.require_grid(grid, "(radius > 0)")
        return in_box_mask(anc_points, gt_bboxes, valid, self.stride_val).nonzero(as_tuple=True)

    def best_sample(
        self, group: torch.Tensor, num_groups: int, scores: torch.Tensor, anchors: torch.Tensor, gt_boxes: torch.Tensor
    ) -> torch.Tensor:
        """Eq. (2): each GT's potentially optimal sample, argmax s; ties to the centre nearest the GT's, then lower
        anchor index.

        Args:
            group (torch.Tensor): (P,) int64 (image, GT) group of each pair.
            num_groups (int): b * M.
            scores (torch.Tensor): (P,) s of Eq. (3).
            anchors (torch.Tensor): (P, 2) anchor centres.
            gt_boxes (torch.Tensor): (P, 4) GT boxes.

        Returns:
            (torch.Tensor): (b*M,) int64 pair index of each GT's best sample; for a GT without candidates any pair's
                index (never read: the prior is read through the pairs' own GTs).
        """
        dist = (anchors - self.box_centres(gt_boxes)).square().sum(-1)  # (P,) `PairAssigner.box_centres`
        return first_in_groups(group, scores, -dist, num_groups=num_groups)[0]  # fixed size: no host sync

    def gaussian_prior(self, anchors: torch.Tensor, mu: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
        """Eq. (6): Gaussian prior around the best sample, with the GT size floored to `stride_val` as in step 1.

        Args:
            anchors (torch.Tensor): (P, 2) anchor centres.
            mu (torch.Tensor): (P, 2) centre of the pair's GT prior (its best sample).
            gt_boxes (torch.Tensor): (P, 4) GT boxes, xyxy.

        Returns:
            (torch.Tensor): (P,) g in (0, 1].
        """
        wh = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=self.stride_val)  # (P, 2)
        return torch.exp(-0.5 * ((anchors - mu) / wh).square().sum(-1))  # Eq. (6)

    def dynamic_k(self, group: torch.Tensor, num_groups: int, ious: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Eqs. (4), (5), (7): k = max(`min_k`, floor(sum of IoU over the top-q candidates by g * IoU)), or `fixed_k`.

        Returns:
            (torch.Tensor): (b*M,) int64 k of each group (padding GTs included: the caller masks them).
        """
        if self.fixed_k is not None:
            return torch.full((num_groups,), self.fixed_k, dtype=torch.long, device=group.device)
        k = iou_sum_k(group, num_groups, ious, self.q, prior * ious if self.prior else ious)  # max(1, floor(sum))
        return k.clamp_(min=self.min_k) if self.min_k > 1 else k

    @staticmethod
    def select(
        group: torch.Tensor, num_groups: int, scores: torch.Tensor, prior: torch.Tensor, k: torch.Tensor
    ) -> torch.Tensor:
        """Step 6: the top-k suboptimal samples of each GT by s (ties: larger g, then lower anchor index).

        Returns:
            (torch.Tensor): (P,) bool, True for selected pairs.
        """
        return top_k_in_groups(group, num_groups, k, scores, prior)

    @staticmethod
    def resolve_conflicts(
        sel: torch.Tensor, anchor_id: torch.Tensor, scores: torch.Tensor, ious: torch.Tensor, num_anchors: int
    ) -> torch.Tensor:
        """Step 7: among pairs `sel` (P-indices in GT order) keep one per anchor: largest s, then IoU, then lower GT.

        Returns:
            (torch.Tensor): (F,) the kept P-indices, in (image, anchor) order.
        """
        return sel[best_in_groups(anchor_id[sel], scores[sel], ious[sel], num_groups=num_anchors)]

    def rescue_starving(
        self,
        pos: torch.Tensor,
        group: torch.Tensor,
        num_groups: int,
        anchor_id: torch.Tensor,
        num_anchors: int,
        scores: torch.Tensor,
        ious: torch.Tensor,
        prior: torch.Tensor,
    ) -> torch.Tensor:
        """Step 7b (opt-in): a GT that lost every positive in step 7 takes its best candidate still free.

        Returns:
            (torch.Tensor): (F',) `pos` followed by the rescued P-indices, conflicts among them resolved as in step 7.
        """
        has_pos = torch.zeros(num_groups, dtype=torch.bool, device=group.device)
        has_pos[group[pos]] = True
        taken = torch.zeros(num_anchors, dtype=torch.bool, device=group.device)
        taken[anchor_id[pos]] = True
        free = ~has_pos[group] & ~taken[anchor_id]  # (P,)
        _, best_free = first_in_groups(group, scores, prior, num_groups=num_groups, among=free)  # (P,) one per GT
        rescued = self.resolve_conflicts(best_free.nonzero().squeeze(1), anchor_id, scores, ious, num_anchors)
        return torch.cat([pos, rescued])

    def weights(self, g_pos: torch.Tensor, num_groups: int, s_pos: torch.Tensor) -> torch.Tensor:
        """Eq. (8): w = (s / mean s over the GT's final positives)^(1 / (u * (alpha + beta))); 1 when that mean is 0.

        Args:
            g_pos (torch.Tensor): (F,) int64 group of each final positive.
            num_groups (int): b * M.
            s_pos (torch.Tensor): (F,) s of each final positive.

        Returns:
            (torch.Tensor): (F,) float32 weights.
        """
        s_sum = s_pos.new_zeros(num_groups).index_add_(0, g_pos, s_pos)
        count = s_pos.new_zeros(num_groups).index_add_(0, g_pos, torch.ones_like(s_pos))
        s_mean = (s_sum / count.clamp(min=1))[g_pos]  # (F,)
        exponent = 1.0 / (self.u * (self.alpha + self.beta))
        ratio = torch.where(s_mean > 0, s_pos / torch.where(s_mean > 0, s_mean, 1.0), 1.0)  # exact for subnormal s too
        return ratio.pow(exponent)  # Eq. (8)
