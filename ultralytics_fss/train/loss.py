"""FSS loss, Eq. (9), on Ultralytics detection heads: the `FSSAssigner` result turned into weighted loss terms.

With w_i the Eq. (8) weight of positive i, t_i its soft classification target and D the normaliser:

    cls = (sum_pos w_i * BCE(p_i, t_i) + sum_neg BCE(p_i, 0)) / D      (BCE summed over classes)
    box = sum_pos v_i * (1 - CIoU_i) / D,   dfl (or l1) = sum_pos v_i * DFL_i / D

The paper's Eq. (9) is t_i = IoU_i (`fss_target=iou`), v_i = w_i (`fss_box=w`) and D = the number of positives
(`fss_norm=npos`). Eq. (9) leaves the loss scale to the host detector, and Ultralytics' gains (`box` 7.5, `cls` 0.5,
`dfl` 1.5) are tuned for TaskAlignedAssigner's: its targets are s / max s * max IoU per GT, its box terms weighted by
the target and everything divided by the sum of targets. The defaults put FSS's assignment on that scale:
t_i = s_i / max s * max IoU over the GT's positives (`fss_target=tal`), v_i = w_i * t_i (`fss_box=w_target`) and
D = sum_pos w_i * t_i (`fss_norm=target`); this measured best under Ultralytics' default recipe (docs/accuracy.md).
Ultralytics' gains and `class_weights` apply unchanged.

Every task loss is built one way: `class FSS<Task>Loss(FSSLoss, <Ultralytics' loss>)`. `FSSLoss.__init__` lets the
stock loss construct itself whole, then `FSSLoss.install_fss` puts FSS on it (the `fss_*` values, the assigner, the
statistics). What differs between head families lives on their leaf class, as named hooks that `FSSLoss` reads
(`baselines`, `assigner_class`, `task_overlap_kind`, `task_overlap_default`, `inputs`, `install_task_terms`,
`task_overlap_inputs`, and `loss` for oriented boxes): adding a family is one class. Eq. (9) is `FSSLoss.eq9`,
written once: detection, segmentation and pose return it from `get_assigned_targets_and_loss` (the step every stock
task loss calls before its mask or keypoint terms), oriented boxes add their angle term in `rotated_loss` (probiou
box term, DFL and angle weighted like the box term).
`TAL*Loss` are Ultralytics' own losses with their positives recorded (`install_recording`), for comparison runs.
Everything these classes borrow from Ultralytics' internals is in `ultralytics_fss.train.seam`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch
from ultralytics.utils import LOGGER
from ultralytics.utils.loss import PoseLoss26, SegmentLoss26, v8DetectionLoss, v8OBBLoss, v8PoseLoss, v8SegmentationLoss

from ultralytics_fss.assign import BASELINES, ROTATED_BASELINES, FSSAssigner, RotatedFSSAssigner
from ultralytics_fss.train import seam
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.seam import LossInputs, stock_loss_class
from ultralytics_fss.train.stats import AssignmentStats, RecordingAssigner

QFL_BETA = 2.0  # GFL's Quality Focal Loss exponent (the paper's beta = 2)
GAINS = ("box", "cls", "dfl", "angle")  # Ultralytics' gain of each loss slot, in its order


@functools.lru_cache(maxsize=None)
def _warn_box_overlap(loss_name: str) -> None:
    """Warn once per loss class that `fss_overlap=task` has no task overlap to use there."""
    LOGGER.warning(f"fss_overlap=task applies to YOLO26 segment and pose models; {loss_name} scores box IoU in Eq. (3)")


def install_recording(loss: v8DetectionLoss) -> None:
    """Record a stock Ultralytics loss's own assignment in `loss.stats` (its positives per GT, soft targets)."""
    loss.stats = AssignmentStats()
    loss.assigner = RecordingAssigner(loss.assigner, loss.stats)


class BatchState:
    """What one `loss` call shares between its steps, owned by that call (`FSSLoss.loss` opens it with
    `seam.scoped`, so it never outlives the call).

    Attributes:
        task_weights (torch.Tensor | None): (b, N) Eq. (8) weights of the batch, for the mask / keypoint terms with
            `fss_task_weights` (set by `get_assigned_targets_and_loss`), else None.
    """

    def __init__(self):
        self.task_weights: torch.Tensor | None = None


class Eq9(NamedTuple):
    """FSS's loss terms of one batch (`FSSLoss.eq9`), before Ultralytics' gains.

    Attributes:
        result (FSSAssignResult): The assignment.
        box (torch.Tensor): () box term; `cls` and `dfl` likewise (`dfl` is L1 for heads without DFL).
        target_bboxes (torch.Tensor): (b, N, 4 or 5) assigned boxes, grid units (angles as they are).
        box_weights (torch.Tensor): (b, N) v_i of the box, DFL and angle terms.
        norm (torch.Tensor): () D.
    """

    result: Any
    box: torch.Tensor
    cls: torch.Tensor
    dfl: torch.Tensor
    target_bboxes: torch.Tensor
    box_weights: torch.Tensor
    norm: torch.Tensor


class FSSLoss:
    """FSS on an Ultralytics dense-task loss: mixed in first, the stock loss second (`FSSDetectionLoss`, ...).

    The stock class keeps everything FSS does not change: its construction, its `loss` (mask, keypoint and RLE
    terms on the positives `get_assigned_targets_and_loss` returns), its box loss and decoding. FSS overrides the
    assignment and Eq. (9) (`get_assigned_targets_and_loss`, `eq9`; `rotated_loss` for oriented boxes, whose stock
    loss does not go through that step), and weights the mask and keypoint terms with `fss_task_weights`.
    Accepts `tal_topk`/`tal_topk2` because Ultralytics' `E2ELoss` passes them: `tal_topk2 == 1` marks the one-to-one
    branch of end-to-end heads, which uses FSS with k = 1 (`fss_o2o=fss`) or Ultralytics' own assignment.

    The hooks below are everything that differs between head families; each leaf class sets or overrides its own.

    Attributes:
        baselines (dict): `fss_assigner` name -> the paper's baselines that assign the family's boxes (oriented boxes:
            the Table 6 ones, `ROTATED_BASELINES`).
        assigner_class (type): The FSS assigner of the family (`RotatedFSSAssigner` for oriented boxes).
        task_overlap_kind (str | None): The overlap Ultralytics' assigner of the family scores besides box IoU, which
            Eq. (3) scores with `fss_overlap=task`: "mask IoU" (YOLO26 segment), "OKS" (YOLO26 pose); None: none.
        task_overlap_default (bool): Whether `fss_overlap=auto` scores that overlap (YOLO26 pose: measured better).
    """

    baselines: dict = BASELINES
    assigner_class: type = FSSAssigner
    task_overlap_kind: str | None = None
    task_overlap_default: bool = False

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss whole, then install FSS on it (`install_fss`)."""
        super().__init__(model, tal_topk, tal_topk2)
        self.install_fss(is_one2one=tal_topk2 == 1)

    def install_fss(self, is_one2one: bool = False) -> None:
        """Put FSS on the stock loss, which has finished its own construction.

        Sets `fss` (checked `fss_*` values from the model's args), `stats`, `is_one2one`, `use_fss` (False on a
        one-to-one branch with `fss_o2o=tal`), keeps the stock assigner as `stock_assigner` (its task overlap; the
        branch Ultralytics assigns), installs `make_assigner`'s, then the family's task terms (`install_task_terms`).

        Args:
            is_one2one (bool): This loss is the one-to-one branch of an end-to-end head (`E2ELoss` builds it with
                `tal_topk2=1`).
        """
        self.fss = check_fss_args(seam.args_dict(self.hyp))
        self.stats = AssignmentStats()  # updated every batch; the callbacks reset and publish it per epoch
        self.is_one2one = is_one2one
        self.use_fss = not (is_one2one and self.fss["fss_o2o"] == "tal")
        self.stock_assigner = self.assigner  # Ultralytics' (its pair_overlaps scores masks / OKS for YOLO26 tasks)
        self.batch: BatchState | None = None  # what one `loss` call shares between its steps, None between calls
        if self.use_fss:
            self.assigner = self.make_assigner()
        else:  # the one-to-one branch Ultralytics assigns (TAL, top-1): positives recorded, assignment unchanged
            self.assigner = RecordingAssigner(self.assigner, self.stats)
        self.install_task_terms()
        if self.fss["fss_overlap"] == "task" and self.task_overlap_kind is None:
            _warn_box_overlap(type(self).__name__)

    def make_assigner(self):
        """The assigner FSS installs: the family's FSS assigner (k = 1 on one-to-one branches) or the paper baseline
        `fss_assigner` names.

        Raises:
            ValueError: For a baseline without a version for the family's boxes.
        """
        fss = self.fss
        if fss["fss_assigner"] in BASELINES and not self.is_one2one:  # the paper's baselines
            if fss["fss_assigner"] not in self.baselines:
                raise ValueError(
                    f"fss_assigner={fss['fss_assigner']} assigns axis-aligned boxes (detect, segment, pose); "
                    f"oriented boxes take fss, tal or {', '.join(self.baselines)}"
                )
            return self.baselines[fss["fss_assigner"]](
                num_classes=self.nc,
                alpha=fss["fss_alpha"],
                beta=fss["fss_beta"],
                stride=self.stride.tolist(),
                soft_target=fss["fss_target"],  # TAL-scaled targets score the baseline's positives by FSS's s
            )
        return self.assigner_class(
            num_classes=self.nc,
            alpha=fss["fss_alpha"],
            beta=fss["fss_beta"],
            u=fss["fss_u"],
            q=fss["fss_q"],
            stride=self.stride.tolist(),
            prior=fss["fss_prior"],
            fixed_k=1 if self.is_one2one else None,
            rescue=fss["fss_rescue"],
            min_k=fss["fss_min_k"],
            radius=fss["fss_radius"],
            soft_target=fss["fss_target"],
        )

    # ----------------------------------------------------------------------------- hooks of the head families
    def install_task_terms(self) -> None:
        """Hook: what the family's mask or keypoint terms need once FSS is installed (nothing for boxes alone)."""

    def inputs(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
        """Hook: decoded predictions and padded targets, as the stock loss hands its assigner (`seam`)."""
        return seam.detect_inputs(self, preds, batch)

    def task_overlap_inputs(self, x: LossInputs, preds: dict, batch: dict, assign_inputs: dict) -> tuple[tuple, dict]:
        """Hook of families with a `task_overlap_kind`: the arguments of `seam.task_pair_overlaps` after the boxes.

        Returns:
            extra (tuple): Positional arguments (predicted scores and labels, or predicted and GT keypoints).
            kwargs (dict): Keyword arguments.
        """
        raise NotImplementedError(f"{type(self).__name__} has no task overlap")

    # -------------------------------------------------------------------------------------------- Eq. (3)-(9)
    @property
    def uses_task_overlap(self) -> bool:
        """Whether Eq. (3) scores Ultralytics' task overlap instead of box IoU: YOLO26 segment (mask-aware IoU) and
        pose (OKS) losses with `fss_overlap=task`, or `auto` for pose (measured better), and FSS (not a baseline)."""
        mode = self.fss["fss_overlap"]
        wanted = mode == "task" or (mode == "auto" and self.task_overlap_default)
        return wanted and self.task_overlap_kind is not None and self.fss["fss_assigner"] == "fss"

    def task_overlap(self, x: LossInputs, preds: dict, batch: dict, assign_inputs: dict):
        """The overlap of Eq. (3) as a function of candidate pairs' (image, GT, anchor) indices, or None for box IoU.

        Args:
            x (LossInputs): This batch's inputs.
            preds (dict), batch (dict): This batch.
            assign_inputs (dict): What the stock loss handed `get_assigned_targets_and_loss` for its assigner
                (`pd_kpts`, `gt_kpts` for YOLO26 pose).
        """
        if not self.uses_task_overlap:
            return None
        # float32 boxes (the GTs' dtype), as the stock loss hands its assigner (ultralytics/utils/loss.py, line 454):
        # under autocast the decoded boxes are half precision, and the YOLO26 mask overlap mixes them with float32
        boxes = (x.pred_bboxes.detach() * x.stride_tensor).type(x.gt_bboxes.dtype)
        extra, kwargs = self.task_overlap_inputs(x, preds, batch, assign_inputs)
        return lambda bi, gi, ai: seam.task_pair_overlaps(
            self.stock_assigner, (bi, gi, ai), x.gt_bboxes, boxes, *extra, **kwargs
        )

    def fss_assign(self, x: LossInputs, preds: dict[str, torch.Tensor], overlap=None) -> tuple:
        """Run the assigner on detached predictions with boxes in pixels, listing step 1 from the feature-map grid;
        `overlap` replaces the box IoU of Eq. (3) (see `task_overlap`).

        Returns:
            result (FSSAssignResult): Per-anchor targets and Eq. (8) weights.
            k (torch.Tensor): (b, M) number of suboptimal samples per GT.
        """
        pd_boxes = x.pred_bboxes.detach()
        pd_boxes = torch.cat([pd_boxes[..., :4] * x.stride_tensor, pd_boxes[..., 4:]], -1)  # pixels; angle as is
        return self.assigner.assign(
            x.pred_scores.detach().sigmoid(),
            pd_boxes.type(x.gt_bboxes.dtype),
            x.anchor_points * x.stride_tensor,
            x.gt_labels,
            x.gt_bboxes,
            x.mask_gt,
            grid=[tuple(f.shape[2:]) for f in preds["feats"]],  # step 1 in O(P), without the dense mask
            **({} if overlap is None else {"overlap": overlap}),
        )

    def fss_weighting(self, result) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. (9)'s per-positive weights and normaliser, as the `fss_*` keys choose them.

        Returns:
            weights (torch.Tensor): (b, N) w_i of the classification term (1 with fss_weights=False), 0 for background.
            box_weights (torch.Tensor): (b, N) v_i of the box, DFL and angle terms: w_i, or w_i * t_i.
            norm (torch.Tensor): () D: the sum of w_i * t_i, or the number of positives; at least 1.
        """
        fg_mask = result.fg_mask  # (b, N)
        weights = result.weights if self.fss["fss_weights"] else fg_mask.float()
        target = result.scores.sum(-1)  # (b, N) soft target t_i of each positive, 0 for background
        box_weights = weights * target if self.fss["fss_box"] == "w_target" else weights
        if self.fss["fss_norm"] == "target":
            norm = (weights * target).sum()
        else:
            norm = fg_mask.sum().to(weights.dtype)
        return weights, box_weights, norm.clamp(min=1)  # on the device: no host sync

    def fss_cls_loss(self, pred_scores: torch.Tensor, result, weights: torch.Tensor, norm: torch.Tensor):
        """Classification term of Eq. (9): w_i * BCE towards the soft target for positives, BCE towards 0 for
        background, 0 for ignored anchors (labels < 0), divided by `norm`; Ultralytics' `class_weights` apply.

        With `fss_cls=qfl` each BCE element is GFL's Quality Focal Loss (Li et al., NeurIPS 2020, Eq. 5):
        QFL(sigma) = |y - sigma|^beta * BCE(sigma, y), beta = 2, for every class of every anchor (y = 0 off target).

        A result with negative weights (DW, `assign.dw.DWAssignResult`) weights the two parts of each element
        apart: w_i * t * BCE(sigma, 1) + P_neg * sigma^gamma2 * BCE(sigma, 0), sigma^gamma2 with its gradient.
        Every other result has `neg_weights` None and takes the branch above it, unchanged.
        """
        target = result.scores.to(pred_scores.dtype)  # (b, N, C)
        if result.neg_weights is not None:  # DW: its positive and negative weights on the two parts of the BCE
            pos = self.bce(pred_scores, torch.ones_like(pred_scores)) * target * weights.unsqueeze(-1)  # (b, N, C)
            neg = self.bce(pred_scores, torch.zeros_like(pred_scores)) * result.neg_weights
            bce = pos + neg * pred_scores.sigmoid().pow(result.neg_gamma)
            if self.class_weights is not None:
                bce = bce * self.class_weights
            return bce.sum() / norm
        bce = self.bce(pred_scores, target)  # (b, N, C)
        if self.fss["fss_cls"] == "qfl":
            bce = bce * (target - pred_scores.sigmoid()).abs().pow(QFL_BETA)
        if self.class_weights is not None:
            bce = bce * self.class_weights
        cls_weights = torch.where(result.fg_mask, weights, (result.labels >= 0).to(weights.dtype))
        return (bce.sum(-1) * cls_weights).sum() / norm

    def eq9(self, x: LossInputs, preds: dict[str, torch.Tensor], overlap=None) -> tuple[Eq9, torch.Tensor]:
        """Eq. (9) for one batch: assign, weight, then the classification term and Ultralytics' box loss (CIoU or
        probiou, and DFL) with each positive weighted by v_i and divided by D; statistics recorded.

        Returns:
            terms (Eq9): The terms and what the task terms need of the assignment.
            weights (torch.Tensor): (b, N) Eq. (8) weight of each anchor (1 with fss_weights=False), 0 for background.
        """
        result, k = self.fss_assign(x, preds, overlap)
        weights, box_weights, norm = self.fss_weighting(result)
        cls = self.fss_cls_loss(x.pred_scores, result, weights, norm)
        target_bboxes = torch.cat([result.bboxes[..., :4] / x.stride_tensor, result.bboxes[..., 4:]], -1)
        # BboxLoss weights each positive by its `target_scores` summed over classes: pass v_i in that slot.
        box, dfl = self.bbox_loss(
            x.pred_distri,
            x.pred_bboxes,
            x.anchor_points,
            target_bboxes,
            box_weights.unsqueeze(-1),
            norm,
            result.fg_mask,
            x.imgsz,
            x.stride_tensor,
        )
        self.stats.update(result.fg_mask, result.gt_idx, x.mask_gt, k=k, weights=weights, scores=result.scores)
        return Eq9(result, box, cls, dfl, target_bboxes, box_weights, norm), weights

    def scaled(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Multiply each slot by Ultralytics' gain (`box`, `cls`, `dfl`, `angle`) in place; with the items by name."""
        for i, gain in enumerate(GAINS[: len(loss)]):
            loss[i] *= getattr(self.hyp, gain)
        return loss, dict(zip(self.loss_names, loss.detach()))

    def get_assigned_targets_and_loss(
        self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_inputs
    ) -> tuple:
        """Eq. (9) in place of Ultralytics' TAL-weighted box and classification terms.

        Returns:
            (tuple): Same layout as the stock method: (fg_mask, gt_idx, target_bboxes, anchor_points,
                stride_tensor), the gain-scaled (box, cls, dfl) loss, and a dict of detached loss items.
        """
        if not self.use_fss:
            return super().get_assigned_targets_and_loss(preds, batch, **assign_inputs)
        x = self.inputs(preds, batch)
        terms, weights = self.eq9(x, preds, self.task_overlap(x, preds, batch, assign_inputs))
        if self.fss["fss_task_weights"] and self.batch is not None:
            self.batch.task_weights = weights  # read by this `loss` call's mask / keypoint terms
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        loss[1] = terms.cls
        loss[0], loss[2] = terms.box, terms.dfl
        r = terms.result
        return (r.fg_mask, r.gt_idx, r.bboxes, x.anchor_points, x.stride_tensor), *self.scaled(loss)

    def rotated_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple:
        """Eq. (9) for oriented boxes: `eq9` plus the angle term, weighted by v_i and divided by D like the box term.

        Returns:
            (tuple): (box, cls, dfl, angle) losses times the batch size, and their detached values by name.
        """
        x = self.inputs(preds, batch)
        terms, _ = self.eq9(x, preds)
        fg_mask = terms.result.fg_mask
        loss = torch.zeros(4, device=self.device)  # box, cls, dfl, angle
        loss[1] = terms.cls
        loss[0], loss[2] = terms.box, terms.dfl
        loss[3], keeper = seam.obb_angle_term(
            self, x, terms.target_bboxes, fg_mask, terms.box_weights[fg_mask], terms.norm
        )
        loss[0] += keeper  # the angle and distribution outputs stay in the graph without positives (DDP)
        loss, items = self.scaled(loss)
        return loss * x.pred_scores.shape[0], items

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple:
        """The stock task loss on FSS's assignment; the stock loss unchanged on a branch without FSS
        (`fss_o2o=tal`). What its steps share (`BatchState`) lives for this call only."""
        if not self.use_fss:
            return super().loss(preds, batch)
        with seam.scoped(self, "batch", BatchState()):
            return super().loss(preds, batch)

    @property
    def task_weights(self) -> torch.Tensor | None:
        """(b, N) Eq. (8) weights for the mask / keypoint terms of the batch in hand, None when they are unweighted
        (`fss_task_weights=False`) or outside a `loss` call."""
        return None if self.batch is None else self.batch.task_weights

    def calculate_segmentation_loss(
        self, fg_mask, masks, target_gt_idx, target_bboxes, batch_idx, proto, pred_masks, imgsz
    ):
        """Segmentation losses: Ultralytics' mask term, each positive's times its Eq. (8) weight with
        `fss_task_weights` (`seam.weighted_segmentation_loss`)."""
        args = (fg_mask, masks, target_gt_idx, target_bboxes, batch_idx, proto, pred_masks, imgsz)
        if self.task_weights is None:
            return super().calculate_segmentation_loss(*args)
        return seam.weighted_segmentation_loss(self, self.task_weights, *args)

    def calculate_keypoints_loss(self, masks, target_gt_idx, keypoints, stride_tensor, target_bboxes, pred_kpts):
        """Pose losses: Ultralytics' keypoint terms; the OKS term of each positive times its Eq. (8) weight with
        `fss_task_weights` (in the row order of `pred_kpts[masks]`); visibility and RLE terms unchanged."""
        args = (masks, target_gt_idx, keypoints, stride_tensor, target_bboxes, pred_kpts)
        if self.task_weights is None:
            return super().calculate_keypoints_loss(*args)
        with self.keypoint_loss.weighted(self.task_weights[masks]):
            return super().calculate_keypoints_loss(*args)


class RecordingLoss:
    """Ultralytics' own loss, its assignment unchanged, its positives recorded in `stats`: mixed in first, the stock
    loss second (`TALDetectionLoss`, ...)."""

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        """Build the stock loss whole, then wrap its assigner in a `RecordingAssigner` (`install_recording`)."""
        super().__init__(model, tal_topk, tal_topk2)
        install_recording(self)


# One way for every task: the mixin first, Ultralytics' loss second, and the family's hooks.
class FSSDetectionLoss(FSSLoss, v8DetectionLoss):
    """FSS on Ultralytics' detection loss (every YOLO detection family; `E2ELoss` wraps it for end-to-end heads)."""


class FSSOBBLoss(FSSLoss, v8OBBLoss):
    """FSS on Ultralytics' oriented-box loss (`RotatedFSSAssigner`; Eq. (9) on every term, angle included)."""

    baselines = ROTATED_BASELINES
    assigner_class = RotatedFSSAssigner

    def inputs(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> LossInputs:
        """Rotated boxes, as `v8OBBLoss.loss` hands its assigner (`seam.obb_inputs`)."""
        return seam.obb_inputs(self, preds, batch)

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple:
        """`rotated_loss` (the stock OBB loss does not go through `get_assigned_targets_and_loss`); the stock loss
        unchanged on a branch without FSS."""
        return self.rotated_loss(preds, batch) if self.use_fss else super().loss(preds, batch)


class FSSSegmentationLoss(FSSLoss, v8SegmentationLoss):
    """FSS on Ultralytics' YOLOv8/11 segmentation loss (box IoU in Eq. (3))."""


class FSSSegmentLoss26(FSSLoss, SegmentLoss26):
    """FSS on Ultralytics' YOLO26 segmentation loss; Eq. (3) scores box IoU, or with `fss_overlap=task` Ultralytics'
    mask-aware overlap ((CIoU + predicted-mask IoU) / 2, `SegTaskAlignedAssigner.pair_overlaps`)."""

    task_overlap_kind = "mask IoU"

    def install_task_terms(self) -> None:
        """The stock mask-aware assigner, kept for its overlap, ranks pairs by FSS's q, alpha, beta."""
        if self.use_fss:
            self.stock_assigner = seam.segment26_overlap_assigner(
                self, self.fss["fss_q"], self.fss["fss_alpha"], self.fss["fss_beta"]
            )

    def task_overlap_inputs(self, x: LossInputs, preds: dict, batch: dict, assign_inputs: dict) -> tuple[tuple, dict]:
        """Predicted scores and GT labels, and the masks and prototypes (`seam.segment26_assigner_inputs`)."""
        return (x.pred_scores.detach().sigmoid(), x.gt_labels), seam.segment26_assigner_inputs(self, preds, batch)


class FSSPoseLoss(FSSLoss, v8PoseLoss):
    """FSS on Ultralytics' YOLOv8/11 pose loss (box IoU in Eq. (3))."""

    def install_task_terms(self) -> None:
        """The keypoint loss that `fss_task_weights` can weight (`seam.WeightedKeypointLoss`)."""
        self.keypoint_loss = seam.WeightedKeypointLoss(self.keypoint_loss.sigmas)


class FSSPoseLoss26(FSSLoss, PoseLoss26):
    """FSS on Ultralytics' YOLO26 pose loss; Eq. (3) scores Ultralytics' keypoint OKS (`PoseTaskAlignedAssigner.
    pair_overlaps`; box CIoU for GTs without visible keypoints) with `fss_overlap=auto` (default) or `task`."""

    task_overlap_kind = "OKS"
    task_overlap_default = True
    install_task_terms = FSSPoseLoss.install_task_terms

    def task_overlap_inputs(self, x: LossInputs, preds: dict, batch: dict, assign_inputs: dict) -> tuple[tuple, dict]:
        """The predicted and GT keypoints the stock loss hands its assigner."""
        return (assign_inputs["pd_kpts"], assign_inputs["gt_kpts"]), {}


class TALDetectionLoss(RecordingLoss, v8DetectionLoss):
    """Ultralytics' own detection loss, unchanged, with its positives recorded in `stats` (comparison runs)."""


class TALOBBLoss(RecordingLoss, v8OBBLoss):
    """Ultralytics' own oriented-box loss, positives recorded."""


class TALSegmentationLoss(RecordingLoss, v8SegmentationLoss):
    """Ultralytics' own YOLOv8/11 segmentation loss, positives recorded."""


class TALSegmentLoss26(RecordingLoss, SegmentLoss26):
    """Ultralytics' own YOLO26 segmentation loss, positives recorded."""


class TALPoseLoss(RecordingLoss, v8PoseLoss):
    """Ultralytics' own YOLOv8/11 pose loss, positives recorded."""


class TALPoseLoss26(RecordingLoss, PoseLoss26):
    """Ultralytics' own YOLO26 pose loss, positives recorded."""


# Ultralytics' loss of each dense task -> (its FSS version, its recording version)
LOSSES: dict[type, tuple[type, type]] = {
    v8DetectionLoss: (FSSDetectionLoss, TALDetectionLoss),
    v8OBBLoss: (FSSOBBLoss, TALOBBLoss),
    v8SegmentationLoss: (FSSSegmentationLoss, TALSegmentationLoss),
    SegmentLoss26: (FSSSegmentLoss26, TALSegmentLoss26),
    v8PoseLoss: (FSSPoseLoss, TALPoseLoss),
    PoseLoss26: (FSSPoseLoss26, TALPoseLoss26),
}


def build_criterion(model, loss_fn: type | None = None, stock: bool = False):
    """Return the FSS (or, with `stock`, the recording stock) version of `model`'s own loss as its criterion,
    wrapped in `E2ELoss` for end-to-end heads (YOLO26, YOLOv10) as `init_criterion` does (`seam.criterion`).

    Args:
        model (DetectionModel): A detect, OBB, segment or pose model.
        loss_fn (type, optional): A loss class to use instead (a user's subclass).
        stock (bool): Ultralytics' assignment with its positives recorded, instead of FSS.

    Raises:
        NotImplementedError: For models of other tasks (see `seam.stock_loss_class`).
    """
    return seam.criterion(model, loss_fn or LOSSES[stock_loss_class(model)][int(stock)])


def build_fss_criterion(model):
    """Return the FSS criterion for `model` (see `build_criterion`); with `fss_assigner=tal` in its args, Ultralytics'
    own (`build_tal_criterion`), so that such a run equals a stock run seed for seed."""
    if check_fss_args(seam.args_dict(getattr(model, "args", None) or {}))["fss_assigner"] == "tal":
        return build_tal_criterion(model)
    return build_criterion(model)


def build_tal_criterion(model):
    """Return Ultralytics' own criterion for `model`, recording its assignment statistics (see `build_criterion`)."""
    return build_criterion(model, stock=True)
