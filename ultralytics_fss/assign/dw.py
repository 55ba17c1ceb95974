"""DW, Dual Weighting (Table 5 of the FSS paper), on FSS's pair lists and result structure.

Reference:
    S. Li, C. He, R. Li and L. Zhang, "A Dual Weighting Label Assignment Scheme for Object Detection", CVPR 2022
    (arXiv:2203.09730), Section 3; the authors' code (strongwolf/DW, `dw_head.py`, `DWHead._loss_single` and
    `CenterPrior`, MMDetection-based), whose semantics we follow where the paper is not specific, and say so.

Every anchor inside a GT box is a candidate of that GT and gets both a positive and a negative weight on the
classification term: the positive weight grows with the consistency of its classification and localisation scores,
the negative weight is the probability that it is a negative times its importance as a negative. Every other anchor
is a negative of every class with the importance weight alone (a focal term). The box refinement module of the paper
(a deformable-convolution branch that re-samples the box prediction around its first estimate) changes the head, not
the assignment, and is out of scope: Ultralytics' heads keep their own box branch (the authors' `reg_refine=False`
configuration).
"""

from __future__ import annotations

import torch
from ultralytics.utils.metrics import bbox_iou

from ultralytics_fss.assign.baselines import anchor_strides
from ultralytics_fss.assign.candidates import in_box_pairs, xyxy_centres
from ultralytics_fss.assign.pairs import FSSAssignResult, PairAssigner, Pairs, best_in_groups

DW_SIGMA = 1.11  # centre prior's standard deviation in strides: the authors' `CenterPrior` (1 + 0.11, not learned)
DW_BETA = 5.0  # u^beta of the consistency t, estimated as exp(-beta * GIoU loss) (the authors' code)
DW_MU = 5.0  # positive weight e^(mu t) * t
DW_MU_SUM = 3.0  # the authors' code normalises by the GT's sum of e^(3 t) * t * prior (not e^(mu t))
DW_IOU_NEG = 0.5  # below this IoU a candidate is a negative with probability 1
DW_GAMMA1 = 2.0  # exponent of the IoU in P_neg between 0.5 and the GT's max IoU
DW_GAMMA2 = 2.0  # importance of a negative: s^gamma2
DW_EPS = 1e-12  # floor of the positive weights' normaliser (the authors' EPS)


class DWAssignResult(FSSAssignResult):
    """`FSSAssignResult` of `DWAssigner`: the six fields (positives: DW's candidates, one GT each; `scores` 1 at the
    GT's class: DW's target is the label, its quality lives in the weights; `weights` the positive weights), plus the
    negative side of the classification term, which the loss (`FSSLoss.fss_cls_loss`) applies when present.

    Attributes:
        neg_weights (torch.Tensor): (b, N, C) float32 P_neg, the probability that each (anchor, class) is a negative:
            in [0, 1] at the class of each GT whose candidate the anchor is (the smallest over such GTs), 1 elsewhere.
        neg_gamma (float): gamma2: the negative term of (anchor, class) is P_neg * s^gamma2 * BCE(s, 0).
    """

    def __new__(cls, *fields: torch.Tensor, neg_weights: torch.Tensor, neg_gamma: float):
        """The six `FSSAssignResult` fields, and DW's negative weights (keyword-only)."""
        self = super().__new__(cls, *fields)
        self.neg_weights, self.neg_gamma = neg_weights, neg_gamma
        return self


class DWAssigner(PairAssigner):
    """DW's assignment and weights, per image and valid GT g (class c_g):

    1. Candidates: the anchors whose centre lies strictly inside g (all pyramid levels), each with the centre prior
       pi = exp(-(dx^2 + dy^2) / (2 sigma^2)), (dx, dy) the offset from g's centre in strides, sigma = 1.11.
    2. Consistency: t = s * u^beta, s = p_cls[c_g] * p_obj, u^beta estimated as exp(-beta * (1 - GIoU)) of the
       predicted box (beta = 5; the authors' code: "we represent IoU score as an exponential function of reg loss").
    3. Positive weight: w_pos = e^(mu t) * t * pi / sum over g's candidates of e^(3 t) * t * pi (mu = 5; the sum's
       exponent 3 and the prior as in the authors' code). In [0, e^2] (each term of the sum is at least the
       anchor's own numerator divided by e^(2 t)).
    4. Negative weight of the candidate at class c_g: P_neg * s^gamma2 (gamma2 = 2), with the probability of being
       a negative P_neg(u) = 1 for IoU u < 0.5, k u^gamma1 + b between 0.5 and u_max (the curve through (0.5, 1) and
       (u_max, 0), gamma1 = 2), 0 for u >= u_max, u_max the largest IoU among g's candidates (the paper's piecewise
       function; the authors' code rescales the curve to the GT's smallest candidate IoU instead of 0.5 when all are
       above 0.5). Every other (anchor, class): P_neg = 1, weight s^gamma2 (the focal negative term).
    5. Conflicts: an anchor inside several GTs is a positive of the one with the largest w_pos (ties: lower GT
       index; DW sums a positive term per GT, the result here holds one GT per anchor); its P_neg at a class is the
       smallest over the GTs of that class it lies in (DW's code keeps whichever it writes last).

    The loss takes the two sides on the classification term (`FSSLoss.fss_cls_loss`): w_pos * BCE(s, 1) at the
    positive's class, P_neg * s^gamma2 * BCE(s, 0) at every (anchor, class), s^gamma2 with its gradient as in the
    authors' code; the box terms weight each positive by w_pos (`fss_box`; its target is 1) and everything is divided
    by the loss keys' normaliser (`fss_norm`: the sum of w_pos by default), where the authors divide the positive
    terms by the number of GTs (times 0.25) and the negative one by the sum of 1 - P_neg. `soft_target` is accepted
    and not used: DW's target is the label.
    """

    def __init__(
        self,
        *args,
        sigma: float = DW_SIGMA,
        beta_loc: float = DW_BETA,
        mu: float = DW_MU,
        gamma1: float = DW_GAMMA1,
        gamma2: float = DW_GAMMA2,
        **kwargs,
    ):
        """Arguments of `PairAssigner`, and DW's (see the class docstring): the prior's `sigma`, the consistency's
        `beta_loc`, the positive weights' `mu`, the negative weights' `gamma1`, `gamma2`."""
        super().__init__(*args, **kwargs)
        self.sigma, self.beta_loc, self.mu, self.gamma1, self.gamma2 = sigma, beta_loc, mu, gamma1, gamma2

    def candidates(self, anc_points, gt_bboxes, valid, grid=None):
        """Step 1: the anchors whose centre lies strictly inside the GT box (TAL's 1e-9 px margin), every level."""
        self.require_grid(grid)
        return in_box_pairs(anc_points, gt_bboxes, valid, self.stride, grid, 0.0)

    def soft_targets(self, g_pos, num_groups, s_pos, iou_pos):
        """DW's classification target: 1 (the label) for every positive; its quality is in the weights."""
        return torch.ones_like(iou_pos)

    @torch.no_grad()
    def assign(
        self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj=None, grid=None, trace=None
    ) -> tuple[DWAssignResult, None]:
        """Assign with DW's rule; arguments as for `PairAssigner.assign`, `grid` required.

        Returns:
            result (DWAssignResult): Positives with their w_pos and target 1, and the negative weights P_neg.
            k (None): DW asks for no number of positives.
        """
        self.require_grid(grid)
        x = self.pairs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, pd_obj, grid)
        strides = anchor_strides(grid, self.stride, anc_points.device)[x.ai]  # (P,)
        prior = self.centre_prior(x, strides)  # (P,) step 1
        w_pos = self.pos_weights(x, prior, pd_bboxes)  # (P,) steps 2, 3
        p_neg = self.neg_probability(x)  # (P,) step 4
        pos = best_in_groups(x.anchor_id, w_pos, -x.gi.float(), num_groups=x.num_anchors)  # (F,) step 5
        pos = pos[torch.sort(pos).indices]
        result = self.targets(x, pos, gt_bboxes, torch.ones_like(w_pos[pos]), w_pos[pos])
        neg = torch.ones_like(result.scores).view(-1)  # (b*N*C,) P_neg, 1 off the candidates' classes
        neg.scatter_reduce_(0, x.anchor_id * self.num_classes + x.gt_labels[x.bi, x.gi], p_neg, "amin")
        if trace is not None:
            trace.update(
                bi=x.bi,
                gi=x.gi,
                ai=x.ai,
                p=x.p,
                ious=x.ious,
                pos=pos,
                prior=prior,
                w_pos=w_pos,
                p_neg=p_neg,
                weights=w_pos[pos],
            )
        return DWAssignResult(*result, neg_weights=neg.view_as(result.scores), neg_gamma=self.gamma2), None

    def centre_prior(self, x: Pairs, strides: torch.Tensor) -> torch.Tensor:
        """Step 1: (P,) float32 Gaussian centre prior of each pair, offsets in strides of the anchor's level."""
        d = (x.anchors - xyxy_centres(x.gt_boxes)) / strides[:, None]  # (P, 2)
        return torch.exp(-d.square().sum(-1) / (2 * self.sigma**2))

    def pos_weights(self, x: Pairs, prior: torch.Tensor, pd_bboxes: torch.Tensor) -> torch.Tensor:
        """Steps 2 and 3: (P,) float32 positive weight of each pair, in [0, e^2]."""
        giou = bbox_iou(x.gt_boxes, pd_bboxes[x.bi, x.ai].float(), xywh=False, GIoU=True).squeeze(-1)  # (P,)
        u_beta = torch.where(torch.isfinite(giou), torch.exp(-self.beta_loc * (1 - giou)), 0.0)
        t = x.p * u_beta  # (P,) consistency
        num = torch.exp(self.mu * t) * t * prior
        den = x.ious.new_zeros(x.num_groups).index_add_(0, x.group, torch.exp(DW_MU_SUM * t) * t * prior)  # (b*M,)
        return num / den.clamp(min=DW_EPS)[x.group]

    def neg_probability(self, x: Pairs) -> torch.Tensor:
        """Step 4: (P,) float32 P_neg of each pair from its IoU and its GT's largest candidate IoU, in [0, 1]."""
        u = x.ious
        u_max = u.new_zeros(x.num_groups).scatter_reduce_(0, x.group, u, "amax")[x.group]  # (P,)
        g1 = self.gamma1
        curve = (u.pow(g1) - u_max.pow(g1)) / (DW_IOU_NEG**g1 - u_max.pow(g1)).clamp(max=-DW_EPS)  # (0.5,1),(u_max,0)
        return torch.where(u < DW_IOU_NEG, 1.0, torch.where(u >= u_max, 0.0, curve.clamp(0, 1)))
