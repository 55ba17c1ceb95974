"""What every assigner of this package shares: the candidate pairs, their scores, the ranking helpers, the result.

Axes: b images, M ground truths (padded), N anchors, C classes, P candidate (image, GT, anchor) pairs, G = b * M
(image, GT) groups. Boxes are xyxy pixels (xywhr for oriented boxes), `pd_scores` are probabilities.

`PairAssigner` is the base of FSS (`assign.fss`) and of the paper's baselines (`assign.baselines`), siblings: a
subclass lists its candidates (`candidates`) and chooses its positives among them (`assign`); the per-pair inputs
(`pairs`), the soft classification targets and the dense per-anchor result (`targets`) are written once, here, as are
the ranking helpers every step uses (`_order_within_groups` and those built on it). The helpers return fixed-size
tensors (no host synchronisation on CUDA) except `best_in_groups`, whose result size depends on the data.
"""

from __future__ import annotations

import abc
import functools
from typing import NamedTuple

import torch
from ultralytics.utils import LOGGER
from ultralytics.utils.metrics import bbox_iou

from ultralytics_fss.assign.candidates import xyxy_centres

SOFT_TARGETS = ("iou", "tal")  # the classification target of a positive (`PairAssigner.soft_targets`)


@functools.lru_cache(maxsize=None)
def _warn_non_finite() -> None:
    """Warn once per process that predictions held NaN or inf (diverging run, fp16 overflow)."""
    LOGGER.warning(
        "Label assignment: NaN or inf in predicted scores or boxes; those anchors were treated as the worst candidates "
        "(s = 0, IoU 0), so targets and weights stay finite. The loss itself may still be NaN: check lr and AMP."
    )


class FSSAssignResult(NamedTuple):
    """Result of every `PairAssigner`, one row per anchor; unpacks positionally like the six-tuple interface.

    Attributes:
        labels (torch.Tensor): (b, N) int64 class of the assigned GT; `num_classes` for background (-1 for anchors
            to ignore: Max-IoU only).
        bboxes (torch.Tensor): (b, N, 4) assigned GT box, xyxy pixels in `gt_bboxes`' dtype; 0 for background.
        scores (torch.Tensor): (b, N, C) float32 soft classification target (IoU_i, or TAL-scaled: `soft_targets`)
            at the assigned class, else 0.
        fg_mask (torch.Tensor): (b, N) bool, True for positives.
        gt_idx (torch.Tensor): (b, N) int64 0-based index of the assigned GT; 0 for background (read with fg_mask).
        weights (torch.Tensor): (b, N) float32 Eq. (8) weight of each positive (1 for most baselines, DW's positive
            weight for DW); 0 for background.
        neg_weights (None): Not a field: the negative weights of the classification term, None here (the loss's
            plain BCE towards 0); DW's result (`assign.dw.DWAssignResult`) carries them.
    """

    labels: torch.Tensor
    bboxes: torch.Tensor
    scores: torch.Tensor
    fg_mask: torch.Tensor
    gt_idx: torch.Tensor
    weights: torch.Tensor
    neg_weights = None  # not a field (no annotation): positional unpacking stays six; see `assign.dw.DWAssignResult`


class Pairs(NamedTuple):
    """The candidate (image, GT, anchor) pairs of a batch and what every assigner reads of them (`PairAssigner.pairs`).

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
        anchor_id (torch.Tensor): (P,) int64 (image, anchor) of each pair, bi * N + ai: the groups of conflicts.
        num_anchors (int): b * N.
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
    anchor_id: torch.Tensor
    num_anchors: int


def group_sizes(group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(num_groups,) int64 number of pairs in each group. Counted with `index_add_`: `torch.bincount` reads its input's
    maximum back to the host on CUDA to size its output (a host synchronisation), whatever `minlength` says."""
    return torch.zeros(num_groups, dtype=torch.long, device=group.device).index_add_(0, group, torch.ones_like(group))


def _order_within_groups(group: torch.Tensor, *keys: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, ...]:
    """Sort pairs by `group` ascending, then by each key descending; remaining ties keep their input order.

    Args:
        group (torch.Tensor): (P,) int64 group id of each pair (a GT, or an anchor), in [0, num_groups).
        *keys (torch.Tensor): (P,) sort keys, most significant first, each sorted descending.
        num_groups (int): Number of groups.

    Returns:
        order (torch.Tensor): (P,) int64 permutation of the pairs.
        rank (torch.Tensor): (P,) int64 position of `order[p]` inside its group (0 = best).
        starts (torch.Tensor): (num_groups,) int64 position in `order` of each group's first pair (of the next group's
            for an empty group).
    """
    order = torch.arange(group.numel(), device=group.device)
    for key in reversed(keys):  # stable sorts from least to most significant key (LSD radix order)
        order = order[torch.sort(key[order], descending=True, stable=True).indices]
    order = order[torch.sort(group[order], stable=True).indices]
    counts = group_sizes(group, num_groups)  # (num_groups,)
    starts = counts.cumsum(0) - counts  # first position of each group in `order`
    rank = torch.arange(order.numel(), device=group.device) - starts[group[order]]
    return order, rank, starts


def best_in_groups(group: torch.Tensor, *keys: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(G',) int64 index of each non-empty group's first pair by `keys` (`_order_within_groups`), in group order. Its
    size depends on the data: one host synchronisation on CUDA (`first_in_groups` has a fixed size)."""
    order, rank, _ = _order_within_groups(group, *keys, num_groups=num_groups)
    return order[rank == 0]


def first_in_groups(
    group: torch.Tensor, *keys: torch.Tensor, num_groups: int, among: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each group's first pair by `keys` (`_order_within_groups`; with `among` ((P,) bool), the first among those
    pairs), in fixed-size tensors: no host synchronisation.

    Returns:
        first (torch.Tensor): (num_groups,) int64 its pair index; for a group without one, some other pair's index
            (0 when P = 0): read it only for groups that have one.
        is_first (torch.Tensor): (P,) bool, True on those pairs.
    """
    if among is not None:  # the other pairs: one more group, after the real ones, never first
        group, groups = torch.where(among, group, num_groups), num_groups + 1
    else:
        groups = num_groups
    order, rank, starts = _order_within_groups(group, *keys, num_groups=groups)
    is_first = torch.empty_like(group, dtype=torch.bool)
    is_first[order] = (rank == 0) & (group[order] < num_groups)
    first = order[starts[:num_groups].clamp(max=order.numel() - 1)] if order.numel() else starts[:num_groups] * 0
    return first, is_first


def top_k_in_groups(group: torch.Tensor, num_groups: int, k: torch.Tensor | int, *keys: torch.Tensor) -> torch.Tensor:
    """(P,) bool: the first k pairs of each group by `keys` (`_order_within_groups`); `k` an int or (num_groups,)."""
    order, rank, _ = _order_within_groups(group, *keys, num_groups=num_groups)
    selected = torch.empty_like(group, dtype=torch.bool)
    selected[order] = rank < (k[group[order]] if isinstance(k, torch.Tensor) else k)  # `order` is a permutation
    return selected


def iou_sum_k(group: torch.Tensor, num_groups: int, ious: torch.Tensor, q: int, key: torch.Tensor) -> torch.Tensor:
    """Dynamic k (FSS's Eqs. (4), (5), (7); YOLOX SimOTA's `dynamic_k_matching`): each group's k = max(1, floor(sum of
    IoU over its top-q pairs by `key`)), ties in `key` to the lower pair index.

    Args:
        group (torch.Tensor): (P,) int64 group of each pair.
        num_groups (int): Number of groups.
        ious (torch.Tensor): (P,) float32 IoU of each pair.
        q (int): Pairs summed per group.
        key (torch.Tensor): (P,) ranking of the pairs (the IoU itself, or FSS's g * IoU).

    Returns:
        (torch.Tensor): (num_groups,) int64, 1 for groups without pairs.
    """
    order, rank, _ = _order_within_groups(group, key, num_groups=num_groups)
    # Every pair in `order`, those past the top q adding 0: the top-q sum of each group in the same order, no sync.
    top_q = torch.where(rank < q, ious[order], 0.0)  # (P,)
    iou_sum = ious.new_zeros(num_groups).index_add_(0, group[order], top_q)  # Eq. (5)
    return iou_sum.floor().long().clamp_(min=1)


class PairAssigner(abc.ABC):
    """Base of the assigners: candidate pairs in, one `FSSAssignResult` out.

    A subclass lists its candidate pairs (`candidates`; `pair_iou` for another overlap) and chooses its positives
    (`assign`); `pairs` gathers each pair's inputs, `targets` scatters the positives into per-anchor targets with their
    soft classification target (`soft_targets`). Everything runs without gradient, in float32 whatever the input
    dtype. Not an `nn.Module` nor a `TaskAlignedAssigner`: it holds no parameters or buffers, its one entry point
    `assign` returns `(result, k)` where TAL's `forward` returns five tensors, and no Ultralytics code calls it (the
    FSS losses override every stock method that calls `self.assigner`).

    Attributes:
        num_classes (int): Number of classes C (the background label).
        stride (list[float]): Feature-level strides.
        alpha, beta (float): Exponents of s = p^alpha * IoU^beta (Eq. (3)): FSS's score, and for every assigner the
            scale of TAL-scaled soft targets (`soft_target="tal"`).
        soft_target (str): `iou` or `tal` (`soft_targets`).
    """

    def __init__(
        self,
        num_classes: int = 80,
        alpha: float = 0.5,
        beta: float = 6.0,
        stride: list[float] | None = None,
        soft_target: str = "iou",
    ):
        """Initialize the shared settings (see the class Attributes); `stride` defaults to [8, 16, 32]."""
        if soft_target not in SOFT_TARGETS:
            raise ValueError(f"soft_target={soft_target!r}; expected 'iou' or 'tal'")
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.stride = stride if stride is not None else [8, 16, 32]
        self.soft_target = soft_target

    @abc.abstractmethod
    def assign(
        self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, grid=None, trace=None
    ) -> tuple[FSSAssignResult, torch.Tensor | None]:
        """Assign GTs to anchors, without gradient.

        Args:
            pd_scores (torch.Tensor): (b, N, C) class probabilities p_cls.
            pd_bboxes (torch.Tensor): (b, N, 4) decoded predicted boxes, xyxy pixels ((b, N, 5) xywhr: oriented).
            anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
            gt_labels (torch.Tensor): (b, M, 1) GT classes.
            gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels ((b, M, 5) xywhr: oriented).
            mask_gt (torch.Tensor): (b, M, 1) 1 for real GTs, 0 for padding.
            pd_obj (torch.Tensor, optional): (b, N, 1) objectness probabilities p_obj; 1 when None.
            grid (list[tuple[int, int]], optional): (height, width) in cells of each level, in `stride` order, as
                the loss knows them from its feature maps: candidates are listed in O(P).
            trace (dict, optional): Filled with per-pair intermediate values (pictures, debugging): at least `bi`,
                `gi`, `ai`, `p`, `ious` (P,) and `pos` (F,) the pair index of each final positive.

        Returns:
            result (FSSAssignResult): Per-anchor targets and weights.
            k (torch.Tensor | None): (b, M) int64 number of positives asked for per GT (0 for padding GTs); None for
                assigners without one.
        """

    @abc.abstractmethod
    def candidates(self, anc_points, gt_bboxes, valid, grid=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The candidate (image, GT, anchor) pairs of the valid GTs, listed by (image, GT, anchor).

        Args:
            anc_points (torch.Tensor): (N, 2) float32 anchor centres, pixels.
            gt_bboxes (torch.Tensor): (b, M, 4) float32 GT boxes.
            valid (torch.Tensor): (b, M) bool, True for real GTs.
            grid (list[tuple[int, int]], optional): (height, width) of each level.

        Returns:
            (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): (P,) int64 image, GT and anchor index of each pair.
        """

    def require_grid(self, grid: list[tuple[int, int]] | None, what: str = "") -> None:
        """Raise ValueError when `grid` (the level of each anchor) is None; `what` names the option that needs it."""
        if grid is None:
            name = type(self).__name__ + what
            raise ValueError(f"{name} needs `grid` (the level of each anchor); pass it to assign()")

    def pairs(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, grid=None) -> Pairs:
        """The candidate pairs (`candidates`), their prediction IoU and class score (NaN/inf predictions: the worst
        candidate, IoU 0 and p 0), in float32 whatever the input dtype. Arguments (tensors) as for `assign`."""
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
        return Pairs(
            b, n, m, valid, gt_labels, bi, gi, ai, bi * m + gi, b * m, gt_boxes, anc32[ai], ious, p, bi * n + ai, b * n
        )

    def pair_iou(self, gt_boxes: torch.Tensor, pd_boxes: torch.Tensor) -> torch.Tensor:
        """IoU of each candidate pair, clamped at 0 (the IoU of Eq. (3), the soft target and the dynamic k).

        Args:
            gt_boxes (torch.Tensor): (P, 4) float32 GT boxes, xyxy.
            pd_boxes (torch.Tensor): (P, 4) float32 predicted boxes, xyxy.

        Returns:
            (torch.Tensor): (P,) float32.
        """
        return bbox_iou(gt_boxes, pd_boxes, xywh=False).squeeze(-1).clamp_(0)

    @staticmethod
    def box_centres(boxes: torch.Tensor) -> torch.Tensor:
        """(..., 2) centres of (..., 4) xyxy boxes (FSS's tie-break of Eq. (2), the baselines' centre rules)."""
        return xyxy_centres(boxes)

    def pair_scores(self, p: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        """Eq. (3): s = (p_cls * p_obj)^alpha * IoU^beta for each candidate pair; (P,) in, (P,) out."""
        return p.pow(self.alpha) * ious.pow(self.beta)

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
        self, x: Pairs, pos: torch.Tensor, gt_bboxes: torch.Tensor, s_pos: torch.Tensor, weights: torch.Tensor
    ) -> FSSAssignResult:
        """Scatter the F final positives into dense per-anchor targets (background values: see `FSSAssignResult`).

        Args:
            x (Pairs): The candidate pairs.
            pos (torch.Tensor): (F,) int64 pair index of each positive, at most one per (image, anchor).
            gt_bboxes (torch.Tensor): (b, M, D) GT boxes as given (D = 4, or 5 for rotated boxes).
            s_pos (torch.Tensor): (F,) s of each positive (Eq. (3)), the scale of TAL-scaled soft targets.
            weights (torch.Tensor): (F,) weight of each positive (Eq. (8)).
        """
        b_pos, a_pos, gt_pos = x.bi[pos], x.ai[pos], x.gi[pos]
        target_pos = self.soft_targets(x.group[pos], x.num_groups, s_pos, x.ious[pos])  # (F,)
        device = x.gt_labels.device
        labels = torch.full((x.b, x.n), self.num_classes, dtype=torch.long, device=device)
        labels[b_pos, a_pos] = x.gt_labels[b_pos, gt_pos]
        bboxes = gt_bboxes.new_zeros(x.b, x.n, gt_bboxes.shape[-1])
        bboxes[b_pos, a_pos] = gt_bboxes[b_pos, gt_pos]
        scores = torch.zeros(x.b, x.n, self.num_classes, dtype=torch.float32, device=device)
        scores[b_pos, a_pos, labels[b_pos, a_pos]] = target_pos  # soft target
        fg_mask = torch.zeros(x.b, x.n, dtype=torch.bool, device=device)
        fg_mask[b_pos, a_pos] = True
        gt_idx = torch.zeros(x.b, x.n, dtype=torch.long, device=device)
        gt_idx[b_pos, a_pos] = gt_pos
        w = torch.zeros(x.b, x.n, dtype=torch.float32, device=device)
        w[b_pos, a_pos] = weights
        return FSSAssignResult(labels, bboxes, scores, fg_mask, gt_idx, w)
