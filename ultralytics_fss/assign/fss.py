"""FSS label assignment: the math of sections 3.1 and 3.2 of the paper, and nothing else.

Reference:
    "FSS: Focusing on Suboptimal Samples for Detector-Agnostic Label Assignment in Object Detection" (2026),
    Eqs. (2)-(8). The loss of Eq. (9) lives in `ultralytics_fss.train.loss`.

Axes: b images, M ground truths (padded), N anchors, C classes, P candidate (GT, anchor) pairs. Boxes are xyxy
pixels, `pd_scores` are probabilities. Only the P in-box pairs (about 1% of b*M*N on dense images) are ever listed
and scored: with the feature-map grid (as `FSSDetectionLoss` passes it) step 1 enumerates them directly
(`ultralytics_fss.assign.candidates`), so every tensor is (P,), (b, M) or (b, N) sized and cost grows with P, not
with b*M*N as in Ultralytics' TaskAlignedAssigner (benchmarks/assigner.py).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import torch
from ultralytics.utils import LOGGER
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import TaskAlignedAssigner

from ultralytics_fss.assign.candidates import in_box_pairs


@functools.lru_cache(maxsize=None)
def _warn_non_finite() -> None:
    """Warn once per process that predictions held NaN or inf (diverging run, fp16 overflow)."""
    LOGGER.warning(
        "FSSAssigner: NaN or inf in predicted scores or boxes; those anchors were treated as the worst candidates "
        "(s = 0, IoU 0), so targets and weights stay finite. The loss itself may still be NaN: check lr and AMP."
    )


class FSSAssignResult(NamedTuple):
    """Result of `FSSAssigner`, one row per anchor; unpacks positionally like the six-tuple interface.

    Attributes:
        labels (torch.Tensor): (b, N) int64 class of the assigned GT; `num_classes` for background.
        bboxes (torch.Tensor): (b, N, 4) assigned GT box, xyxy pixels in `gt_bboxes`' dtype; 0 for background.
        scores (torch.Tensor): (b, N, C) float32 soft classification target (IoU_i, or TAL-scaled: `soft_targets`)
            at the assigned class, else 0.
        fg_mask (torch.Tensor): (b, N) bool, True for positives.
        gt_idx (torch.Tensor): (b, N) int64 0-based index of the assigned GT; 0 for background (read with fg_mask).
        weights (torch.Tensor): (b, N) float32 Eq. (8) weight of each positive; 0 for background.
    """

    labels: torch.Tensor
    bboxes: torch.Tensor
    scores: torch.Tensor
    fg_mask: torch.Tensor
    gt_idx: torch.Tensor
    weights: torch.Tensor


class Pairs(NamedTuple):
    """The candidate (image, GT, anchor) pairs of a batch and what every assigner reads of them (`FSSAssigner.pairs`).

    Attributes:
        b, n, m (int): Images, anchors, GT rows (padding included).
        valid (torch.Tensor): (b, M) bool, real and finite GTs.
        gt_labels (torch.Tensor): (b, M) int64 GT classes.
        bi, gi, ai (torch.Tensor): (P,) int64 image, GT and anchor of each pair, listed by (image, GT, anchor).
        group (torch.Tensor): (P,) int64 (image, GT) group, bi * M + gi.
        num_groups (int): b * M.
        gt_boxes (torch.Tensor): (P, 4) float32 GT box of each pair.
        anchors (torch.Tensor): (P, 2) float32 anchor centre of each pair.
        ious (torch.Tensor): (P,) float32 IoU of the predicted box with the GT, clamped at 0.
        p (torch.Tensor): (P,) float32 predicted probability of the GT's class (times objectness when given).
    """

    b: int
    n: int
    m: int
    valid: torch.Tensor
    gt_labels: torch.Tensor
    bi: torch.Tensor
    gi: torch.Tensor
    ai: torch.Tensor
    group: torch.Tensor
    num_groups: int
    gt_boxes: torch.Tensor
    anchors: torch.Tensor
    ious: torch.Tensor
    p: torch.Tensor


def _order_within_groups(group: torch.Tensor, *keys: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, ...]:
    """Sort pairs by `group` ascending, then by each key descending; remaining ties keep their input order.

    Args:
        group (torch.Tensor): (P,) int64 group id of each pair (a GT, or an anchor), in [0, num_groups).
        *keys (torch.Tensor): (P,) sort keys, most significant first, each sorted descending.
        num_groups (int): Number of groups.

    Returns:
        order (torch.Tensor): (P,) int64 permutation of the pairs.
        rank (torch.Tensor): (P,) int64 position of `order[p]` inside its group (0 = best).
    """
    order = torch.arange(group.numel(), device=group.device)
    for key in reversed(keys):  # stable sorts from least to most significant key (LSD radix order)
        order = order[torch.sort(key[order], descending=True, stable=True).indices]
    order = order[torch.sort(group[order], stable=True).indices]
    counts = torch.bincount(group, minlength=num_groups)  # (num_groups,)
    starts = counts.cumsum(0) - counts  # first position of each group in `order`
    rank = torch.arange(order.numel(), device=group.device) - starts[group[order]]
    return order, rank


class FSSAssigner(TaskAlignedAssigner):
    """Focusing on Suboptimal Samples: dynamic-k selection around a Gaussian prior, with Eq. (8) weights.

    Subclasses Ultralytics' `TaskAlignedAssigner` only to reuse its candidate rule (`select_candidates_in_gts`);
    `forward` is FSS's own. Each step below is one method (`candidates`, `pair_iou`, `pair_scores`, `best_sample`,
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
       g_ij * IoU_ij)); ties in g*IoU go to the lower anchor index.
    6. Suboptimal samples: the top min(k_j, |C_j|) candidates by s_ij (ties: larger g_ij, then lower anchor index).
    7. Conflicts: an anchor chosen by several GTs keeps the one with the largest s_ij (ties: larger IoU, then lower
       GT index).
    8. Weights, Eq. (8): w_i = (s_ij / mean_{psi(j)} s)^(1 / (u * (alpha + beta))) over GT j's final positives
       psi(j); all w_i = 1 when that mean is 0.

    Options beyond the paper's method: `prior=False` ranks step 5 by IoU alone (Eq. (4) instead of Eq. (7), for
    ablations); `fixed_k` replaces the dynamic k of step 5 by a constant (1 for end-to-end one-to-one heads);
    `rescue=True` adds step 7b: a GT that lost all its positives in step 7 (crowded scenes) takes its best candidate
    by the step-6 order that no positive holds yet, conflicts among those resolved again as in step 7;
    `radius` > 0 widens step 1 to the union with a centre square of half-side `radius` strides per level (YOLOX
    SimOTA's candidate region); `soft_target="tal"` scales the classification targets as TAL does (`soft_targets`).

    Examples:
        >>> assigner = FSSAssigner(num_classes=80, alpha=0.5, beta=6.0, u=2.0, q=10, stride=[8, 16, 32])
        >>> labels, bboxes, scores, fg_mask, gt_idx, weights = assigner(
        ...     pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt
        ... )
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
    ):
        """Initialize the assigner.

        Args:
            num_classes (int): Number of classes C.
            alpha (float): Exponent of the classification term in Eq. (3).
            beta (float): Exponent of the IoU term in Eq. (3).
            u (float): Smoothing factor of the Eq. (8) exponent 1 / (u * (alpha + beta)).
            q (int): Number of candidates summed into the dynamic k, Eqs. (4), (7).
            stride (list[int], optional): Feature-level strides, as in `TaskAlignedAssigner`.
            prior (bool): Rank the dynamic-k candidates by g * IoU (Eq. (7)) rather than IoU (Eq. (4)).
            fixed_k (int, optional): Use this k for every GT instead of the dynamic k.
            rescue (bool): Give a GT left without positives by step 7 its best free candidate (step 7b).
            radius (float): Also make candidates of the anchors within `radius` strides of the GT centre (step 1;
                YOLOX SimOTA's centre region is 2.5); 0 for the in-box rule alone.
            soft_target (str): Classification target of a positive: `iou` (Eq. (9)) or `tal` (s / max s over the
                GT's positives, times their max IoU: TaskAlignedAssigner's normalised metric, on FSS's s).
        """
        if soft_target not in {"iou", "tal"}:
            raise ValueError(f"soft_target={soft_target!r}; expected 'iou' or 'tal'")
        super().__init__(topk=q, num_classes=num_classes, alpha=alpha, beta=beta, stride=stride)
        self.u = u
        self.q = q
        self.prior = prior
        self.fixed_k = fixed_k
        self.rescue = rescue
        self.radius = radius
        self.soft_target = soft_target

    @torch.no_grad()
    def forward(
        self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, grid=None
    ) -> FSSAssignResult:
        """Assign GTs to anchors; see `assign` for arguments. Returns the `FSSAssignResult` only."""
        return self.assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj, grid)[0]

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
            pd_scores (torch.Tensor): (b, N, C) class probabilities p_cls.
            pd_bboxes (torch.Tensor): (b, N, 4) decoded predicted boxes, xyxy pixels.
            anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
            gt_labels (torch.Tensor): (b, M, 1) GT classes.
            gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels.
            mask_gt (torch.Tensor): (b, M, 1) 1 for real GTs, 0 for padding.
            pd_obj (torch.Tensor, optional): (b, N, 1) objectness probabilities p_obj; 1 when None.
            grid (list[tuple[int, int]], optional): (height, width) in cells of each level, in `stride` order, as
                the loss knows them from its feature maps: step 1 then lists the P candidate pairs directly, in O(P).
                None: through the dense (b, M, N) mask (same pairs, more time and memory).
            trace (dict, optional): Filled with the per-pair intermediate values, for pictures and debugging: `bi`,
                `gi`, `ai` (P,) image, GT and anchor of each candidate pair; `p`, `ious`, `s`, `prior` (P,) its class
                score, IoU, Eq. (3) score and Eq. (6) prior; `best` (G,) the pair index of each GT's potentially
                optimal sample; `pos` (F,) the pair index of each final positive and `weights` (F,) its Eq. (8) weight.

        Returns:
            result (FSSAssignResult): Per-anchor targets and weights.
            k (torch.Tensor): (b, M) int64 number of suboptimal samples asked for per GT (0 for padding GTs).
        """
        x = self.pairs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj, grid)  # step 1
        b, n, m = x.b, x.n, x.m
        bi, gi, ai, group, num_groups, gt_boxes, anchors, ious, p = (
            x.bi, x.gi, x.ai, x.group, x.num_groups, x.gt_boxes, x.anchors, x.ious, x.p)  # fmt: skip
        valid, gt_labels = x.valid, x.gt_labels
        scores = self.pair_scores(p, ious if overlap is None else overlap(bi, gi, ai).float())  # (P,) Eq. (3)

        best = self.best_sample(group, num_groups, scores, anchors, gt_boxes)  # (G,) Eq. (2)
        mu = anchors.new_zeros(num_groups, 2)
        mu[group[best]] = anchors[best]  # (b*M, 2) centre of each GT's prior
        prior = self.gaussian_prior(anchors, mu[group], gt_boxes)  # (P,) Eq. (6)
        k = self.dynamic_k(group, num_groups, ious, prior) * valid.view(-1)  # (b*M,) Eqs. (4), (5), (7); 0: padding
        selected = self.select(group, num_groups, scores, prior, k)  # (P,) bool, step 6
        anchor_id = bi * n + ai  # (P,) one id per (image, anchor)
        pos = self.resolve_conflicts(selected.nonzero().squeeze(1), anchor_id, scores, ious, b * n)  # (F,) step 7
        if self.rescue:
            pos = self.rescue_starving(pos, group, num_groups, anchor_id, b * n, scores, ious, prior)  # step 7b
        weights = self.weights(group[pos], num_groups, scores[pos])  # (F,) Eq. (8)
        soft = self.soft_targets(group[pos], num_groups, scores[pos], ious[pos])  # (F,) Eq. (9) target
        result = self.targets(b, n, bi[pos], ai[pos], gi[pos], gt_labels, gt_bboxes, soft, weights)
        if trace is not None:
            trace.update(bi=bi, gi=gi, ai=ai, p=p, ious=ious, s=scores, prior=prior, best=best, pos=pos,
                         weights=weights)  # fmt: skip
        return result, k.view(b, m)

    def pairs(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
        pd_obj: torch.Tensor | None = None,
        grid: list[tuple[int, int]] | None = None,
    ) -> Pairs:
        """Step 1 and the per-pair inputs of Eq. (3), shared by FSS and the baselines (`assign.baselines`): the
        candidate pairs (`candidates`), their prediction IoU and class score (NaN/inf predictions: the worst
        candidate, IoU 0 and p 0), in float32 whatever the input dtype. Arguments as for `assign`."""
        b, n = pd_scores.shape[:2]
        m = gt_bboxes.shape[1]
        gt_labels = gt_labels.long().view(b, m)  # (b, M)
        gt32, anc32 = gt_bboxes.float(), anc_points.float()  # fp16/bf16 inputs assign as their float32 values do
        valid = mask_gt.view(b, m).bool() & torch.isfinite(gt32).all(-1)  # (b, M) a NaN/inf GT is no GT
        bi, gi, ai = self.candidates(anc32, gt32, valid, grid)  # (P,) each
        gt_boxes = gt32[bi, gi]  # (P, 4)
        ious = self.pair_iou(gt_boxes, pd_bboxes[bi, ai].float())  # (P,)
        p = pd_scores[bi, ai, gt_labels[bi, gi]].float()  # (P,)
        if pd_obj is not None:
            p = p * pd_obj[bi, ai, 0].float()
        finite = torch.isfinite(ious) & torch.isfinite(p)  # (P,)
        if not finite.all():
            _warn_non_finite()
            ious, p = torch.where(finite, ious, 0.0), torch.where(finite, p, 0.0)
        return Pairs(b, n, m, valid, gt_labels, bi, gi, ai, bi * m + gi, b * m, gt_boxes, anc32[ai], ious, p)

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
                (`ultralytics_fss.assign.candidates`); None: through TAL's dense (b, M, N) mask.

        Returns:
            (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): (P,) int64 image, GT and anchor index of each pair.
        """
        if grid is not None:
            return in_box_pairs(anc_points, gt_bboxes, valid, self.stride, grid, self.stride_val, self.radius)
        if self.radius > 0:
            raise ValueError("FSSAssigner(radius > 0) needs `grid` (the level of each anchor); pass it to assign()")
        b, m = valid.shape
        if m:
            in_gts = self.select_candidates_in_gts(anc_points, gt_bboxes, valid[..., None])  # (b, M, N)
        else:
            in_gts = valid.new_zeros(b, 0, anc_points.shape[0])
        return (in_gts.bool() & valid[..., None]).nonzero(as_tuple=True)

    def pair_iou(self, gt_boxes: torch.Tensor, pd_boxes: torch.Tensor) -> torch.Tensor:
        """IoU of each candidate pair, clamped at 0 (the IoU of Eq. (3), the soft target and the dynamic k).

        Args:
            gt_boxes (torch.Tensor): (P, 4) float32 GT boxes, xyxy.
            pd_boxes (torch.Tensor): (P, 4) float32 predicted boxes, xyxy.

        Returns:
            (torch.Tensor): (P,) float32.
        """
        return bbox_iou(gt_boxes, pd_boxes, xywh=False).squeeze(-1).clamp_(0)

    def pair_scores(self, p: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        """Eq. (3): s = (p_cls * p_obj)^alpha * IoU^beta for each candidate pair; (P,) in, (P,) out."""
        return p.pow(self.alpha) * ious.pow(self.beta)

    @staticmethod
    def box_centres(gt_boxes: torch.Tensor) -> torch.Tensor:
        """(P, 2) centres of (P, 4) xyxy GT boxes (the tie-break of Eq. (2))."""
        return (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2

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
            (torch.Tensor): (G,) int64 pair index of the best sample of each GT that has candidates.
        """
        dist = (anchors - self.box_centres(gt_boxes)).square().sum(-1)  # (P,)
        order, rank = _order_within_groups(group, scores, -dist, num_groups=num_groups)
        return order[rank == 0]

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
        """Eqs. (4), (5), (7): k = max(1, floor(sum of IoU over the top-q candidates by g * IoU)), or `fixed_k`.

        Returns:
            (torch.Tensor): (b*M,) int64 k of each group (padding GTs included: the caller masks them).
        """
        if self.fixed_k is not None:
            return torch.full((num_groups,), self.fixed_k, dtype=torch.long, device=group.device)
        order, rank = _order_within_groups(group, prior * ious if self.prior else ious, num_groups=num_groups)
        top_q = order[rank < self.q]  # (<= q*G,)
        iou_sum = ious.new_zeros(num_groups).index_add_(0, group[top_q], ious[top_q])  # Eq. (5)
        return iou_sum.floor().long().clamp_(min=1)

    @staticmethod
    def select(
        group: torch.Tensor, num_groups: int, scores: torch.Tensor, prior: torch.Tensor, k: torch.Tensor
    ) -> torch.Tensor:
        """Step 6: the top-k suboptimal samples of each GT by s (ties: larger g, then lower anchor index).

        Returns:
            (torch.Tensor): (P,) bool, True for selected pairs.
        """
        order, rank = _order_within_groups(group, scores, prior, num_groups=num_groups)
        selected = torch.zeros_like(group, dtype=torch.bool)
        selected[order[rank < k[group[order]]]] = True
        return selected

    @staticmethod
    def resolve_conflicts(
        sel: torch.Tensor, anchor_id: torch.Tensor, scores: torch.Tensor, ious: torch.Tensor, num_anchors: int
    ) -> torch.Tensor:
        """Step 7: among pairs `sel` (P-indices in GT order) keep one per anchor: largest s, then IoU, then lower GT.

        Returns:
            (torch.Tensor): (F,) the kept P-indices.
        """
        order, rank = _order_within_groups(anchor_id[sel], scores[sel], ious[sel], num_groups=num_anchors)
        return sel[order[rank == 0]]

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
        free = (~has_pos[group] & ~taken[anchor_id]).nonzero().squeeze(1)  # (E,)
        order, rank = _order_within_groups(group[free], scores[free], prior[free], num_groups=num_groups)
        best_free = free[order[rank == 0]]  # one pair per starving GT, in GT order
        return torch.cat([pos, self.resolve_conflicts(best_free, anchor_id, scores, ious, num_anchors)])

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

    def soft_targets(self, g_pos: torch.Tensor, num_groups: int, s_pos: torch.Tensor, iou_pos: torch.Tensor):
        """The classification target of each final positive: its IoU (Eq. (9)), or with `soft_target="tal"`
        s / max s times max IoU over the GT's positives (the scale of TaskAlignedAssigner's targets).

        Args:
            g_pos (torch.Tensor): (F,) int64 group of each final positive.
            num_groups (int): b * M.
            s_pos (torch.Tensor): (F,) s of each final positive.
            iou_pos (torch.Tensor): (F,) IoU of each final positive.

        Returns:
            (torch.Tensor): (F,) float32 targets in [0, 1].
        """
        if self.soft_target == "iou":
            return iou_pos
        s_max = s_pos.new_zeros(num_groups).scatter_reduce_(0, g_pos, s_pos, "amax", include_self=False)[g_pos]
        iou_max = iou_pos.new_zeros(num_groups).scatter_reduce_(0, g_pos, iou_pos, "amax", include_self=False)[g_pos]
        return torch.where(s_max > 0, s_pos / torch.where(s_max > 0, s_max, 1.0), 1.0) * iou_max

    def targets(
        self,
        b: int,
        n: int,
        b_pos: torch.Tensor,
        a_pos: torch.Tensor,
        gt_pos: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        target_pos: torch.Tensor,
        weights: torch.Tensor,
    ) -> FSSAssignResult:
        """Scatter the F final positives into dense per-anchor targets (background values: see `FSSAssignResult`).

        Args:
            b (int): Images.
            n (int): Anchors.
            b_pos, a_pos, gt_pos (torch.Tensor): (F,) int64 image, anchor and GT of each positive.
            gt_labels (torch.Tensor): (b, M) int64 GT classes.
            gt_bboxes (torch.Tensor): (b, M, D) GT boxes (D = 4, or 5 for rotated boxes).
            target_pos (torch.Tensor): (F,) soft classification target of each positive (`soft_targets`).
            weights (torch.Tensor): (F,) Eq. (8) weights.
        """
        device = gt_labels.device
        labels = torch.full((b, n), self.num_classes, dtype=torch.long, device=device)
        labels[b_pos, a_pos] = gt_labels[b_pos, gt_pos]
        bboxes = gt_bboxes.new_zeros(b, n, gt_bboxes.shape[-1])
        bboxes[b_pos, a_pos] = gt_bboxes[b_pos, gt_pos]
        scores = torch.zeros(b, n, self.num_classes, dtype=torch.float32, device=device)
        scores[b_pos, a_pos, labels[b_pos, a_pos]] = target_pos  # soft target
        fg_mask = torch.zeros(b, n, dtype=torch.bool, device=device)
        fg_mask[b_pos, a_pos] = True
        gt_idx = torch.zeros(b, n, dtype=torch.long, device=device)
        gt_idx[b_pos, a_pos] = gt_pos
        w = torch.zeros(b, n, dtype=torch.float32, device=device)
        w[b_pos, a_pos] = weights
        return FSSAssignResult(labels, bboxes, scores, fg_mask, gt_idx, w)
