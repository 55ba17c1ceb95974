"""PAA, Probabilistic Anchor Assignment (Table 5 of the FSS paper), on FSS's pair lists and result structure.

Reference:
    K. Kim and H. S. Lee, "Probabilistic Anchor Assignment with IoU Prediction for Object Detection", ECCV 2020
    (arXiv:2007.08103), Section 3.1 and Algorithm 1; the authors' code (kkhoot/PAA,
    `paa_core/modeling/rpn/paa/loss.py`, `PAALossComputation`) and MMDetection's port (`PAAHead.paa_reassign`,
    `gmm_separation_scheme`).

Where the paper leaves a detail open we follow the authors' code, which MMDetection ports, and say where the two
differ. The GMM is scikit-learn's `GaussianMixture` as both call it, written here as EM vectorised over GTs (a loop over
EM iterations only): two components, weights (0.5, 0.5), means at the min and max of the GT's candidate scores,
precisions 1, `tol` 1e-3, `reg_covar` 1e-6, at most 100 iterations, stopping at the first iteration whose mean
log-likelihood changed by less than `tol` (its M-step applied). In one dimension the authors' 'full' covariance and
MMDetection's 'diag' are the same model; the variance is computed centred (sklearn's 'full' form).

The IoU-prediction branch of the paper (an extra head output trained on the IoU of each positive, multiplied into the
classification score for NMS and score voting) is out of scope: Ultralytics' heads have no such output. Without it PAA
is its anchor assignment alone: the anchor score (Section 3.1) from the classification and localisation losses of the
current predictions, the GMM split of Algorithm 1, and Ultralytics' own NMS on the class score at inference. Positives
get weight 1 and the soft target of the loss keys, as every baseline here (`assign.baselines`).
"""

from __future__ import annotations

import math

import torch
from ultralytics.utils.metrics import bbox_iou

from ultralytics_fss.assign.baselines import MaxIoUAssigner
from ultralytics_fss.assign.candidates import device_constant
from ultralytics_fss.assign.pairs import Pairs, _order_within_groups, group_sizes, top_k_in_groups

PAA_IOU = 0.1  # first pass: MaxIoUAssigner(pos_iou_thr=0.1, neg_iou_thr=0.1, min_pos_iou=0) (PAA's configs)
PAA_TOPK = 9  # candidates per pyramid level (the paper's K; MMDetection's `topk`)
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0  # RetinaNet's focal loss, PAA's classification loss
BCE_LOG_CAP = 100.0  # torch's binary_cross_entropy caps -log at 100 (p = 0 or 1 exactly)
GIOU_WORST = 2.0  # GIoU loss of a NaN/inf predicted box: the largest GIoU loss (GIoU = -1)
GMM_TOL, GMM_REG, GMM_MAX_ITER = 1e-3, 1e-6, 100  # sklearn GaussianMixture's defaults, as PAA calls it
GMM_EPS = 10 * torch.finfo(torch.float64).eps  # sklearn adds it to each component's responsibility sum
GMM_CHECK = 5  # EM iterations between two reads of "all GTs converged" (a host sync on CUDA each)


def gmm_em_1d(
    values: torch.Tensor, valid: torch.Tensor, max_iter: int = GMM_MAX_ITER, tol: float = GMM_TOL, reg: float = GMM_REG
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit one two-component 1-D Gaussian mixture per row by EM, as sklearn's `GaussianMixture(2, weights_init=[0.5,
    0.5], means_init=[min, max], precisions_init=[1, 1])` fits it, all rows at once; then each sample's component and
    log density (`predict`, `score_samples`).

    Args:
        values (torch.Tensor): (G, K) samples of each row, any float dtype (computed in float64).
        valid (torch.Tensor): (G, K) bool, the real samples of each row (rows with fewer than 2 give meaningless
            output: read them only where the row has 2 or more).
        max_iter (int): EM iterations at most.
        tol (float): A row stops after the iteration whose mean log-likelihood changed by less than this.
        reg (float): Added to each variance.

    Returns:
        component (torch.Tensor): (G, K) int64 0 (the component initialised at the row's min) or 1; ties to 0.
        log_density (torch.Tensor): (G, K) float64 log of the fitted mixture's density at each sample.
    """
    x = values.double()  # (G, K)
    w = valid.double()  # (G, K) 1 for real samples
    n = w.sum(1).clamp(min=1)  # (G,)
    lo = torch.where(valid, x, math.inf).amin(1)  # (G,)
    hi = torch.where(valid, x, -math.inf).amax(1)
    mean = torch.stack([lo, hi], 1).nan_to_num(0.0, posinf=0.0, neginf=0.0)  # (G, 2), rows without samples: 0
    var = torch.ones_like(mean)  # precisions_init = 1
    log_w = torch.full_like(mean, math.log(0.5))
    bound = torch.full_like(n, -math.inf)  # (G,) mean log-likelihood of the previous iteration
    active = torch.ones_like(n, dtype=torch.bool)  # (G,) rows still iterating

    def weighted_log_prob(mean, var, log_w):  # (G, K, 2): log N(x | mean_c, var_c) + log weight_c
        d = x[..., None] - mean[:, None]
        return -0.5 * (math.log(2 * math.pi) + d.square() / var[:, None] + var.log()[:, None]) + log_w[:, None]

    for it in range(max_iter):
        wlp = weighted_log_prob(mean, var, log_w)  # E-step
        lpn = wlp.logsumexp(-1)  # (G, K)
        resp = (wlp - lpn[..., None]).exp() * w[..., None]  # (G, K, 2), 0 on padding
        nk = resp.sum(1) + GMM_EPS  # (G, 2) M-step
        new_mean = (resp * x[..., None]).sum(1) / nk
        new_var = (resp * (x[..., None] - new_mean[:, None]).square()).sum(1) / nk + reg
        new_log_w = (nk / nk.sum(1, keepdim=True)).log()
        keep = active[:, None]  # rows that converged earlier keep their parameters
        mean, var, log_w = (
            torch.where(keep, new, old) for new, old in ((new_mean, mean), (new_var, var), (new_log_w, log_w))
        )
        new_bound = (lpn * w).sum(1) / n  # mean log-likelihood under the parameters before this M-step
        active = active & ~((new_bound - bound).abs() < tol)
        bound = torch.where(active, new_bound, bound)
        if (it + 1) % GMM_CHECK == 0 and not bool(active.any()):  # host sync: stop once every row converged
            break
    wlp = weighted_log_prob(mean, var, log_w)
    return wlp.argmax(-1), wlp.logsumexp(-1)  # argmax: the first maximum, component 0 on ties


class PAAAssigner(MaxIoUAssigner):
    """PAA's anchor assignment (Algorithm 1 of the paper), per image and valid GT g, with the semantics of the
    authors' code where the paper is not specific:

    1. First pass: each anchor to its max-IoU GT when that IoU >= `pos_iou` (0.1), every GT's best anchors forced to
       it (`MaxIoUAssigner(pos_iou=0.1, neg_iou=0.1)`, PAA's configs); IoU of the virtual square anchor of side 8
       strides (`baselines.ANCHOR_SCALE`, as for ATSS and Max-IoU here). This pass settles which GT an anchor can
       belong to: a later step never gives an anchor to two GTs.
    2. Scores (Section 3.1) as their negative log: cost = FL(p, onehot(c_g)) summed over classes (focal loss,
       alpha 0.25, gamma 2, on p_cls * p_obj) + `lam` (1) * (1 - GIoU(predicted box, g)); lower cost, better anchor.
    3. Candidates: per pyramid level the `topk` (9) first-pass anchors of g with the lowest cost (ties: lower anchor
       index); sorted by cost (ties: lower anchor index): the candidates in score order.
    4. A two-component 1-D GMM fitted by EM to the candidates' costs (`gmm_em_1d`; component 0 starts at the lowest
       cost): the foreground component.
    5. Split, Fig. 3(c) as the authors' code does it: the positives are the candidates in score order up to and
       including the foreground sample of highest mixture density (the first such sample on ties), whichever
       component the candidates before it fall in; every other first-pass anchor of g is a negative. A GT with one
       candidate keeps it; a GT whose candidates all fall in component 1 keeps them all ("for high recall").

    MMDetection's `PAAHead` differs in three places, all rare: it keeps only the foreground-component candidates of
    that prefix, gives no positive to a GT with a single candidate or without foreground sample, and weights the
    GIoU term of the cost 1.3 (its `loss_bbox` weight) instead of 1.
    """

    def __init__(
        self,
        *args,
        topk: int = PAA_TOPK,
        lam: float = 1.0,
        pos_iou: float = PAA_IOU,
        neg_iou: float = PAA_IOU,
        **kwargs,
    ):
        """Arguments of `PairAssigner`, and PAA's: the candidates per level `topk`, the weight `lam` of the
        localisation loss in the score, the first pass's Max-IoU thresholds `pos_iou`, `neg_iou`."""
        if topk < 1:
            raise ValueError(f"PAAAssigner(topk={topk}): at least 1")
        super().__init__(*args, pos_iou=pos_iou, neg_iou=neg_iou, **kwargs)
        self.topk = topk
        self.lam = lam

    def choose(self, x, strides, pd_scores, pd_bboxes, pd_obj, trace=None):
        first, _, _ = super().choose(x, strides, pd_scores, pd_bboxes, pd_obj)  # step 1: (F1,) one pair per anchor
        cost = self.cost(x, first, pd_scores, pd_bboxes, pd_obj)  # step 2: (F1,)
        cand = self.gmm_candidates(x, first, cost, strides)  # step 3: (F1,) bool
        c_pair, c_cost = first[cand], cost[cand]  # (Q,)
        order, rank, _ = _order_within_groups(x.group[c_pair], -c_cost, -x.ai[c_pair].float(),
                                              num_groups=x.num_groups)  # fmt: skip # by cost, then anchor
        keep = self.split(x.group[c_pair[order]], rank, c_cost[order], x.num_groups)  # steps 4, 5: (Q,) bool
        pos = c_pair[order][keep]
        if trace is not None:  # per pair: its cost (inf outside the first pass), whether it was a GMM candidate
            trace["cost"] = torch.full_like(x.ious, math.inf).index_put_((first,), cost)
            trace["gmm"] = torch.zeros_like(x.ious, dtype=torch.bool).index_fill_(0, c_pair, True)
        return pos[torch.sort(pos).indices], None, None

    def cost(
        self, x: Pairs, sel: torch.Tensor, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, pd_obj: torch.Tensor | None
    ) -> torch.Tensor:
        """Step 2: (F1,) float32 cost of the pairs `sel` (F1,): focal loss summed over classes + lam * GIoU loss."""
        bi, ai = x.bi[sel], x.ai[sel]
        probs = pd_scores[bi, ai].float()  # (F1, C)
        if pd_obj is not None:
            probs = probs * pd_obj[bi, ai].float()
        probs = probs.nan_to_num(0.0).clamp(0, 1)
        # Every class as a negative, then the GT's class swapped to its positive term: two (F1, C) passes, no one-hot.
        # -log is capped at 100 as BCE caps it (p = 0 or 1 exactly stays finite).
        neg = (1 - FOCAL_ALPHA) * probs.pow(FOCAL_GAMMA) * (-torch.log1p(-probs)).clamp(max=BCE_LOG_CAP)  # (F1, C)
        p_c = probs.gather(1, x.gt_labels[bi, x.gi[sel]][:, None]).squeeze(1)  # (F1,) at the GT's class
        pos_c = FOCAL_ALPHA * (1 - p_c).pow(FOCAL_GAMMA) * (-torch.log(p_c)).clamp(max=BCE_LOG_CAP)
        neg_c = (1 - FOCAL_ALPHA) * p_c.pow(FOCAL_GAMMA) * (-torch.log1p(-p_c)).clamp(max=BCE_LOG_CAP)
        focal = neg.sum(-1) - neg_c + pos_c  # (F1,) focal loss summed over classes
        giou = bbox_iou(x.gt_boxes[sel], pd_bboxes[bi, ai].float(), xywh=False, GIoU=True).squeeze(-1)
        return focal + self.lam * torch.where(torch.isfinite(giou), 1 - giou, GIOU_WORST)

    def gmm_candidates(self, x: Pairs, sel: torch.Tensor, cost: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """Step 3: (F1,) bool, the `topk` lowest-cost pairs of `sel` per (GT, level); ties to the lower anchor."""
        n_levels = len(self.stride)
        level = torch.bucketize(strides[x.ai[sel]], device_constant(self.stride, strides.dtype, strides.device))
        group = x.group[sel] * n_levels + level  # (F1,) one group per (image, GT, level)
        return top_k_in_groups(group, x.num_groups * n_levels, self.topk, -cost, -x.ai[sel].float())

    def split(self, group: torch.Tensor, rank: torch.Tensor, cost: torch.Tensor, num_groups: int) -> torch.Tensor:
        """Steps 4 and 5 for every GT at once.

        Args:
            group (torch.Tensor): (Q,) int64 GT of each candidate, candidates sorted by GT then by cost.
            rank (torch.Tensor): (Q,) int64 position of each candidate in its GT's score order.
            cost (torch.Tensor): (Q,) float32 cost of each candidate.
            num_groups (int): b * M.

        Returns:
            (torch.Tensor): (Q,) bool, the positives.
        """
        count = group_sizes(group, num_groups)  # (G,)
        width = max(self.topk * len(self.stride), 1)  # candidates of a GT at most
        values = cost.new_zeros(num_groups, width).index_put_((group, rank), cost)  # (G, K) in score order
        valid = torch.zeros_like(values, dtype=torch.bool).index_put_((group, rank), torch.ones_like(rank).bool())
        component, density = gmm_em_1d(values, valid)  # (G, K) each
        fg = valid & (component == 0)
        best = torch.where(fg, density, -math.inf).argmax(1)  # (G,) position of the densest fg sample (first on ties)
        limit = torch.where(fg.any(1), best + 1, count)  # (G,) positives per GT: the prefix; no fg sample: all
        limit = torch.where(count < 2, count, limit)  # a single candidate is positive
        return rank < limit[group]
