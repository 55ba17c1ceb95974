"""What the assigners choose on one image: FSS and Ultralytics' TAL run on the same predictions of one model.

`assignment_view` letterboxes an image as Ultralytics' validator does, runs the model once, hands the loss's own
inputs (`FSSDetectionLoss.inputs`) to the FSS assigner (with its per-pair `trace`) and to the stock loss's
`TaskAlignedAssigner`, and keeps, for the chosen ground truths, everything the pictures of `evidence.pictures` draw:
candidate anchors with their class score, IoU, Gaussian prior and s, the potentially optimal sample, k, the FSS
positives with their Eq. (8) weights, and TAL's positives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import box_iou
from ultralytics.utils.tal import TaskAlignedAssigner

from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.loss import build_fss_criterion
from ultralytics_fss.train.seam import args_dict, main_branch


@dataclass
class GTView:
    """One ground truth and how both assigners treat it; boxes and points in letterboxed-image pixels.

    Attributes:
        index (int): Row of the GT in the label file.
        cls (int): Class id.
        box (np.ndarray): (4,) xyxy.
        anchors (np.ndarray): (P, 2) centres of its candidate anchors (rule 1).
        strides (np.ndarray): (P,) stride of each candidate.
        p (np.ndarray): (P,) predicted probability of the GT's class.
        ious (np.ndarray): (P,) IoU of the predicted box with the GT.
        prior (np.ndarray): (P,) Eq. (6) Gaussian prior.
        s (np.ndarray): (P,) Eq. (3) score.
        best (int): Candidate index of the potentially optimal sample (Eq. (2)), -1 if it has no candidate.
        k (int): Dynamic k (Eqs. (4), (5), (7)).
        fss_pos (np.ndarray): (F,) candidate indices of its final FSS positives.
        fss_weights (np.ndarray): (F,) their Eq. (8) weights.
        tal_pos (np.ndarray): (T, 2) anchor centres of its TAL positives.
        tal_strides (np.ndarray): (T,) their strides.
    """

    index: int
    cls: int
    box: np.ndarray
    anchors: np.ndarray
    strides: np.ndarray
    p: np.ndarray
    ious: np.ndarray
    prior: np.ndarray
    s: np.ndarray
    best: int
    k: int
    fss_pos: np.ndarray
    fss_weights: np.ndarray
    tal_pos: np.ndarray
    tal_strides: np.ndarray


@dataclass
class AssignmentView:
    """The letterboxed image, the chosen GTs and the settings behind them.

    Attributes:
        image (np.ndarray): (H, W, 3) uint8 RGB, letterboxed to the model's input.
        gts (list[GTView]): The chosen ground truths, in drawing order.
        names (dict[int, str]): Class names.
        fss (dict[str, Any]): The `fss_*` values the FSS assigner ran with.
        num_gts (int): Ground truths on the image (chosen or not).
        assigner (str): The `fss_assigner` drawn beside TAL (`fss`, or a baseline: no prior, unit weights).
    """

    image: np.ndarray
    gts: list[GTView]
    names: dict[int, str]
    fss: dict[str, Any]
    num_gts: int = 0
    assigner: str = "fss"


def letterbox(image: np.ndarray, labels: np.ndarray, imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize and pad a BGR image to `imgsz` x `imgsz` as Ultralytics' `LetterBox(auto=False)` does, and map YOLO
    labels (n, 5: class, normalised xywh of the original image) to xyxy pixels of the result.

    Returns:
        image (np.ndarray): (imgsz, imgsz, 3) uint8 RGB.
        boxes (np.ndarray): (n, 4) float32 xyxy pixels.
    """
    from ultralytics.data.augment import LetterBox

    h, w = image.shape[:2]
    r = min(imgsz / h, imgsz / w)
    new_w, new_h = round(w * r), round(h * r)
    left, top = round((imgsz - new_w) / 2 - 0.1), round((imgsz - new_h) / 2 - 0.1)  # LetterBox's own rounding
    out = LetterBox((imgsz, imgsz), auto=False)(image=image)
    xywh = labels[:, 1:5] * [w, h, w, h] * r + [left, top, 0, 0]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    return np.ascontiguousarray(out[..., ::-1]), boxes.astype(np.float32)


def choose_gts(boxes: np.ndarray, n: int, order: str = "largest") -> list[int]:
    """Indices of the `n` GTs to draw: the `largest` by area, or the most `crowded` (most other GTs overlapping)."""
    if order not in {"largest", "crowded"}:
        raise ValueError(f"order={order!r}; expected 'largest' or 'crowded'")
    if order == "largest":
        key = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    else:
        key = (box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)) > 0).sum(1).numpy() - 1.0
    return [int(i) for i in np.argsort(-key, kind="stable")[:n]]


class _Scene(NamedTuple):
    """What both assigners are shown of the image: the loss's own inputs, in the units the assigners take.

    Attributes:
        scores (torch.Tensor): (1, N, C) class probabilities (sigmoid of the logits).
        pd_boxes (torch.Tensor): (1, N, 4) decoded predicted boxes, xyxy pixels, in the GT boxes' dtype.
        anchors (torch.Tensor): (N, 2) anchor centres, pixels.
        strides (torch.Tensor): (N,) stride of each anchor.
        gt_labels (torch.Tensor): (1, M, 1) GT classes.
        gt_bboxes (torch.Tensor): (1, M, 4) GT boxes, xyxy pixels.
        mask_gt (torch.Tensor): (1, M, 1) 1 for real GTs.
        grid (list[tuple[int, int]]): (height, width) in cells of each level.
    """

    scores: torch.Tensor
    pd_boxes: torch.Tensor
    anchors: torch.Tensor
    strides: torch.Tensor
    gt_labels: torch.Tensor
    gt_bboxes: torch.Tensor
    mask_gt: torch.Tensor
    grid: list[tuple[int, int]]

    def assigner_args(self) -> tuple[torch.Tensor, ...]:
        """The six positional arguments that `FSSAssigner.assign` and `TaskAlignedAssigner.forward` share."""
        return self.scores, self.pd_boxes, self.anchors, self.gt_labels, self.gt_bboxes, self.mask_gt


@dataclass
class _Decisions:
    """What both assigners decided on the image, as numpy arrays on the host.

    Attributes:
        pairs (dict[str, np.ndarray]): The FSS assigner's `trace`: `gi`, `ai`, `p`, `ious`, `s`, `prior` (P,) per
            candidate pair; `best` (G,) and `pos`, `weights` (F,). Baselines get `s` and `prior` 0, no `best` and
            weights 1.
        k (np.ndarray): (M,) int64 dynamic k of each GT (baselines without one: its number of positives).
        anchors (np.ndarray): (N, 2) anchor centres, pixels.
        strides (np.ndarray): (N,) stride of each anchor.
        tal_fg (np.ndarray): (N,) bool, TAL positive.
        tal_gt (np.ndarray): (N,) int64 GT index TAL gave each anchor.
    """

    pairs: dict[str, np.ndarray]
    k: np.ndarray
    anchors: np.ndarray
    strides: np.ndarray
    tal_fg: np.ndarray
    tal_gt: np.ndarray


@torch.no_grad()
def assignment_view(
    model: DetectionModel,
    image: np.ndarray,
    labels: np.ndarray,
    imgsz: int = 640,
    num_gts: int = 4,
    order: str = "largest",
    **fss: Any,
) -> AssignmentView:
    """Run `model` on `image` and both assigners on its predictions; keep what the pictures need.

    Args:
        model (DetectionModel): A YOLO detection model (trained or not); left in the mode it was in.
        image (np.ndarray): (H, W, 3) uint8 BGR, as cv2 reads it.
        labels (np.ndarray): (n, 5) YOLO labels of the image: class, normalised xywh.
        imgsz (int): Square input size (a multiple of the largest stride).
        num_gts (int): Ground truths to keep (see `choose_gts`).
        order (str): `largest` or `crowded`.
        **fss (Any): `fss_*` values; missing ones come from the model's training args, else the defaults.

    Returns:
        (AssignmentView): The image as the model saw it and one `GTView` per chosen GT.

    Raises:
        ValueError: If `labels` is not (n, 5) with n >= 1, or holds a class the model does not know.
    """
    labels = _checked_labels(labels, len(model.names))
    args, values = _fss_settings(model, fss)
    rgb, boxes = letterbox(image, labels, imgsz)
    with _lent(model, {**args, **values}):  # what the criteria read
        crit, tal = _criteria(model)
        preds = _predict(model, rgb)
        scene = _gather_scene(crit.inputs(preds, _gt_batch(labels, boxes, imgsz)), preds)
        trace, k = _assign_fss(crit.assigner, scene)
        tal_fg, tal_gt = _assign_tal(tal, scene)
    decisions = _on_host(trace, k, scene, tal_fg, tal_gt)
    gts = [_gt_view(j, labels, boxes, decisions) for j in choose_gts(boxes, num_gts, order)]
    return AssignmentView(rgb, gts, dict(model.names), values, num_gts=len(labels), assigner=values["fss_assigner"])


def _checked_labels(labels: np.ndarray, nc: int) -> np.ndarray:
    """YOLO labels as a (n, 5) float32 array, checked against a model of `nc` classes.

    Raises:
        ValueError: If there is no label, or a class outside [0, nc).
    """
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5) if len(labels) else np.zeros((0, 5), np.float32)
    if not len(labels):
        raise ValueError("the image has no ground truth to assign (empty labels)")
    if labels[:, 0].min() < 0 or labels[:, 0].max() >= nc:
        raise ValueError(f"label classes {sorted(set(labels[:, 0].astype(int)))} outside the model's {nc} classes")
    return labels


def _fss_settings(model: DetectionModel, fss: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's training args as a dict, and the checked `fss_*` values: `fss` over those args, else defaults.

    Raises:
        ValueError: If `fss_assigner=tal` (TAL is the one drawn beside it anyway).
    """
    args = args_dict(model.args)
    values = check_fss_args({**{k: v for k, v in args.items() if k.startswith("fss_")}, **fss})
    if values["fss_assigner"] == "tal":
        raise ValueError("fss_assigner=tal: TAL is drawn beside the assigner anyway; pick fss, maxiou, atss or simota")
    return args, values


@contextmanager
def _lent(model: DetectionModel, args: dict[str, Any]) -> Iterator[None]:
    """Give `model` these `args` (what the criteria read) for the block; hand it back with its own args object and
    train/eval mode, whatever the block did or raised."""
    original, was_training = model.args, model.training
    model.args = args
    try:
        yield
    finally:
        model.args = original
        model.train(was_training)


def _criteria(model: DetectionModel) -> tuple[Any, TaskAlignedAssigner]:
    """The FSS criterion the model trains with (its one-to-many branch for end-to-end heads), and the
    `TaskAlignedAssigner` the stock loss would assign with; both read `model.args`."""
    crit = build_fss_criterion(model)
    return main_branch(crit), v8DetectionLoss(model).assigner


def _predict(model: DetectionModel, rgb: np.ndarray) -> dict[str, Any]:
    """Run `model` in eval mode (the caller restores its mode) on a (S, S, 3) uint8 RGB image.

    Returns:
        (dict[str, Any]): The training-format predictions (of the one-to-many branch of end-to-end heads), with
            `feats`, the per-level (1, C + 4 * reg_max, h, w) feature maps.
    """
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)  # (1, 3, S, S) in [0, 1]
    model.eval()
    out = model(img.to(next(model.parameters()).device))
    preds = out[1] if isinstance(out, tuple) else out
    return preds.get("one2many", preds)


def _gt_batch(labels: np.ndarray, boxes: np.ndarray, imgsz: int) -> dict[str, torch.Tensor]:
    """A one-image batch as Ultralytics' loss reads it: (n,) `batch_idx`, (n, 1) `cls`, (n, 4) `bboxes` as
    normalised xywh of the letterboxed image, from (n, 5) labels and their (n, 4) xyxy pixel `boxes`."""
    xywhn = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / imgsz  # (n, 4)
    return dict(batch_idx=torch.zeros(len(labels)), cls=torch.from_numpy(labels[:, :1]),
                bboxes=torch.from_numpy(xywhn.astype(np.float32)))  # fmt: skip


def _gather_scene(x: Any, preds: dict[str, Any]) -> _Scene:
    """The assigners' inputs from the criterion's `inputs(preds, batch)` result `x` (Ultralytics' loss inputs:
    logits and grid units there, probabilities and pixels here) and the predictions' feature maps (the grid)."""
    return _Scene(
        scores=x.pred_scores.sigmoid(),  # (1, N, C)
        pd_boxes=(x.pred_bboxes * x.stride_tensor).type(x.gt_bboxes.dtype),  # (1, N, 4)
        anchors=x.anchor_points * x.stride_tensor,  # (N, 2)
        strides=x.stride_tensor[:, 0],  # (N,)
        gt_labels=x.gt_labels,
        gt_bboxes=x.gt_bboxes,
        mask_gt=x.mask_gt,
        grid=[tuple(f.shape[2:]) for f in preds["feats"]],
    )


def _assign_fss(assigner: Any, scene: _Scene) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run the FSS (or baseline) assigner with its per-pair `trace`.

    Returns:
        trace (dict[str, torch.Tensor]): See `FSSAssigner.assign`.
        k (torch.Tensor): (1, M) int64 dynamic k; for baselines without one, the number of positives of each GT.
    """
    trace = {}
    _result, k = assigner.assign(*scene.assigner_args(), grid=scene.grid, trace=trace)
    if k is None:  # baselines without a k: draw the number of positives each GT got
        pos_gi = trace["gi"][trace["pos"]]  # (F,)
        k = torch.zeros_like(scene.mask_gt[..., 0], dtype=torch.long)  # (1, M)
        k.index_put_((torch.zeros_like(pos_gi), pos_gi), torch.ones_like(trace["pos"]), accumulate=True)
    return trace, k


def _assign_tal(tal: TaskAlignedAssigner, scene: _Scene) -> tuple[torch.Tensor, torch.Tensor]:
    """Run Ultralytics' TAL on the same inputs; return its (1, N) bool positives and (1, N) int64 GT indices."""
    _labels, _boxes, _scores, fg_mask, target_gt_idx = tal(*scene.assigner_args())
    return fg_mask, target_gt_idx


def _on_host(
    trace: dict[str, torch.Tensor], k: torch.Tensor, scene: _Scene, tal_fg: torch.Tensor, tal_gt: torch.Tensor
) -> _Decisions:
    """Both assigners' decisions as numpy, the FSS-only trace entries filled in for baselines (see `_Decisions`).

    Args:
        trace (dict[str, torch.Tensor]): From `_assign_fss`.
        k (torch.Tensor): (1, M) from `_assign_fss`.
        scene (_Scene): What the assigners saw.
        tal_fg (torch.Tensor): (1, N) bool, TAL positive.
        tal_gt (torch.Tensor): (1, N) int64, TAL's GT index of each anchor.
    """
    t = {name: v.cpu().numpy() for name, v in trace.items()}
    for name in ("s", "prior"):  # the baselines have no Eq. (3) score or Eq. (6) prior
        t.setdefault(name, np.zeros_like(t["p"]))
    t.setdefault("best", np.zeros(0, dtype=int))
    t.setdefault("weights", np.ones(len(t["pos"]), dtype=np.float32))
    return _Decisions(t, k[0].cpu().numpy(), scene.anchors.cpu().numpy(), scene.strides.cpu().numpy(),
                     tal_fg[0].cpu().numpy(), tal_gt[0].cpu().numpy())  # fmt: skip


def _gt_view(j: int, labels: np.ndarray, boxes: np.ndarray, d: _Decisions) -> GTView:
    """The `GTView` of GT `j` (label row j: preprocess sorts nothing within an image, so it is GT row j of the
    padded batch), from (n, 5) `labels`, (n, 4) xyxy pixel `boxes` and the assigners' decisions `d`."""
    t = d.pairs
    pairs = np.nonzero(t["gi"] == j)[0]  # (P_j,) its candidates, in anchor order
    where = {int(pp): i for i, pp in enumerate(pairs)}  # pair index -> candidate index
    best = [int(b) for b in t["best"] if t["gi"][b] == j]
    mine = t["gi"][t["pos"]] == j  # (F,) its FSS positives
    tal_mine = d.tal_fg & (d.tal_gt == j)  # (N,) its TAL positives
    return GTView(
        index=j, cls=int(labels[j, 0]), box=boxes[j], anchors=d.anchors[t["ai"][pairs]],
        strides=d.strides[t["ai"][pairs]], p=t["p"][pairs], ious=t["ious"][pairs], prior=t["prior"][pairs],
        s=t["s"][pairs], best=where[best[0]] if best else -1, k=int(d.k[j]),
        fss_pos=np.array([where[int(pp)] for pp in t["pos"][mine]], dtype=int), fss_weights=t["weights"][mine],
        tal_pos=d.anchors[tal_mine], tal_strides=d.strides[tal_mine],
    )  # fmt: skip
