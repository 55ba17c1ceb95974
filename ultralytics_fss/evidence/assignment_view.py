"""What the assigners choose on one image: FSS and Ultralytics' own assigner run on the same predictions of one model.

`assignment_view` letterboxes an image as Ultralytics' validator does, runs the model once, and replays one training
step on it (`evidence.replay`): the batch Ultralytics' loader would make of the image and its labels goes through the
FSS criterion the model trains with and through Ultralytics' own criterion of its task (detect, obb, segment or pose),
each assigner recorded as its loss calls it (FSS with its per-pair `trace`). For the chosen ground truths it keeps
everything the pictures of `evidence.pictures` draw: the GT as the assigners saw it (rotated boxes as polygons, with
the region whose anchors are candidates; a segment's outline, a pose's keypoints), its candidate anchors with their
class score, IoU, Gaussian prior and s, the potentially optimal sample, k, the FSS positives with their Eq. (8)
weights, and the positives of Ultralytics' assigner (TAL; `RotatedTaskAlignedAssigner` for obb, the mask-aware and
OKS variants for YOLO26 segment and pose).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from ultralytics.utils.metrics import box_iou
from ultralytics.utils.ops import xywhr2xyxyxyxy

from ultralytics_fss.assign import BASELINES, ROTATED_BASELINES
from ultralytics_fss.assign.rotated import RotatedFSSAssigner, floor_rotated_sides
from ultralytics_fss.evidence.gt_labels import GTLabels, checked, from_rows, letterboxed
from ultralytics_fss.evidence.replay import Recorded, Traced, replay
from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.seam import args_dict, loss_args, model_task, one_image_batch, saved_model_args


@dataclass
class GTView:
    """One ground truth and how both assigners treat it; boxes and points in letterboxed-image pixels.

    Attributes:
        index (int): Row of the GT in the label file.
        cls (int): Class id.
        box (np.ndarray): (4,) xyxy (for a rotated box: the axis-aligned box around it).
        anchors (np.ndarray): (P, 2) centres of its candidate anchors (rule 1).
        strides (np.ndarray): (P,) stride of each candidate.
        p (np.ndarray): (P,) predicted probability of the GT's class.
        ious (np.ndarray): (P,) IoU of the predicted box with the GT (probiou for rotated boxes).
        prior (np.ndarray): (P,) Eq. (6) Gaussian prior.
        s (np.ndarray): (P,) Eq. (3) score.
        best (int): Candidate index of the potentially optimal sample (Eq. (2)), -1 if it has no candidate.
        k (int): Dynamic k (Eqs. (4), (5), (7)).
        fss_pos (np.ndarray): (F,) candidate indices of its final FSS positives.
        fss_weights (np.ndarray): (F,) their Eq. (8) weights.
        tal_pos (np.ndarray): (T, 2) anchor centres of its TAL positives.
        tal_strides (np.ndarray): (T,) their strides.
        outline (np.ndarray | None): (4, 2) corners of the box the assigners saw (rotated boxes only).
        region (np.ndarray | None): (4, 2) corners of the rotated candidate region: the box with sides under the
            assigners' smallest side (`stride_val`) raised to it; anchors inside it are the candidates.
        polygon (np.ndarray | None): (k, 2) the object's outline from its label (segment).
        keypoints (np.ndarray | None): (K, 2 or 3) its keypoints, with visibility when labelled (pose).
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
    outline: np.ndarray | None = None
    region: np.ndarray | None = None
    polygon: np.ndarray | None = None
    keypoints: np.ndarray | None = None


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
        task (str): The model's task: `detect`, `obb`, `segment` or `pose`.
        stock (str): Class name of Ultralytics' assigner drawn beside it (`TaskAlignedAssigner`, ...).
        overlap (str): What Eq. (3) scored: `IoU`, `probiou` (rotated boxes), `OKS` or `mask IoU` (YOLO26 pose and
            segment with `fss_overlap`).
        settings (str): Where the `fss_*` values come from: `the model's training args` (read back from the
            checkpoint file for loaded weights), or why the package defaults stand in (a model trained without FSS,
            a model without training args); values given explicitly are named.
    """

    image: np.ndarray
    gts: list[GTView]
    names: dict[int, str]
    fss: dict[str, Any]
    num_gts: int = 0
    assigner: str = "fss"
    task: str = "detect"
    stock: str = "TaskAlignedAssigner"
    overlap: str = "IoU"
    settings: str = "the model's training args"


def letterbox(image: np.ndarray, labels: np.ndarray, imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize and pad a BGR image to `imgsz` x `imgsz` as Ultralytics' `LetterBox(auto=False)` does, and map YOLO
    detect labels (n, 5: class, normalised xywh of the original image) to xyxy pixels of the result.

    Returns:
        image (np.ndarray): (imgsz, imgsz, 3) uint8 RGB.
        boxes (np.ndarray): (n, 4) float32 xyxy pixels.
    """
    out, gt = letterboxed(image, from_rows(labels, "detect"), imgsz)
    xywh = gt.boxes
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    return np.ascontiguousarray(out[..., ::-1]), boxes.astype(np.float32)


def choose_gts(boxes: np.ndarray, n: int, order: str = "largest", areas: np.ndarray | None = None) -> list[int]:
    """Indices of the `n` GTs to draw: the `largest` by area (`areas`, else that of the (M, 4) xyxy `boxes`), or the
    most `crowded` (most other GTs overlapping; rotated boxes by the axis-aligned boxes around them)."""
    if order not in {"largest", "crowded"}:
        raise ValueError(f"order={order!r}; expected 'largest' or 'crowded'")
    if order == "largest":
        key = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if areas is None else areas
    else:
        key = (box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)) > 0).sum(1).numpy() - 1.0
    return [int(i) for i in np.argsort(-key, kind="stable")[:n]]


class _Scene(NamedTuple):
    """What both assigners were shown of the image: the arguments the FSS loss handed its assigner.

    Attributes:
        scores (torch.Tensor): (1, N, C) class probabilities (sigmoid of the logits).
        pd_boxes (torch.Tensor): (1, N, 4) decoded predicted boxes, xyxy pixels ((1, N, 5) xywhr: obb).
        anchors (torch.Tensor): (N, 2) anchor centres, pixels.
        strides (torch.Tensor): (N,) stride of each anchor.
        gt_labels (torch.Tensor): (1, M, 1) GT classes.
        gt_bboxes (torch.Tensor): (1, M, 4) GT boxes, xyxy pixels ((1, M, 5) xywhr: obb).
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
        gt_boxes (np.ndarray): (M, 4) xyxy or (M, 5) xywhr GT boxes, pixels, as the assigners saw them.
        regions (np.ndarray | None): (M, 4, 2) corners of each rotated GT's candidate region (obb), else None.
    """

    pairs: dict[str, np.ndarray]
    k: np.ndarray
    anchors: np.ndarray
    strides: np.ndarray
    tal_fg: np.ndarray
    tal_gt: np.ndarray
    gt_boxes: np.ndarray
    regions: np.ndarray | None = None


@torch.no_grad()
def assignment_view(
    model,
    image: np.ndarray,
    labels: np.ndarray | GTLabels,
    imgsz: int = 640,
    num_gts: int = 4,
    order: str = "largest",
    **fss: Any,
) -> AssignmentView:
    """Run `model` on `image`, replay one training step on its labels, and keep what the pictures need.

    Args:
        model (DetectionModel): A YOLO detect, obb, segment or pose model (trained or not); left in the mode it was in.
        image (np.ndarray): (H, W, 3) uint8 BGR, as cv2 reads it.
        labels (np.ndarray | GTLabels): The image's ground truths: `GTLabels`, or YOLO label rows of the model's task
            (see `evidence.gt_labels`), normalised.
        imgsz (int): Square input size (a multiple of the largest stride).
        num_gts (int): Ground truths to keep (see `choose_gts`).
        order (str): `largest` or `crowded`.
        **fss (Any): `fss_*` values; missing ones come from the model's training args (for weights: as saved in the
            file), else the defaults (`AssignmentView.settings` says which).

    Returns:
        (AssignmentView): The image as the model saw it and one `GTView` per chosen GT.

    Raises:
        ValueError: If `imgsz` is no multiple of the largest stride, a label row does not fit the task, there is no
            label, a class the model does not know, or an assigner that cannot be drawn (`fss_assigner=tal`; a
            baseline on rotated boxes).
    """
    task = model_task(model)
    stride = int(model.stride.max())
    if imgsz % stride:
        raise ValueError(f"imgsz={imgsz} is not a multiple of the model's largest stride {stride}")
    gt = labels if isinstance(labels, GTLabels) else from_rows(labels, task, getattr(model, "kpt_shape", None))
    gt = checked(gt, len(model.names))
    args, values, settings = _fss_settings(model, task, fss)
    bgr, px = letterboxed(image, gt, imgsz)
    batch, rows = one_image_batch(task, bgr, px.cls, px.boxes, px.polygons, px.keypoints)
    fss_loss, traced, recorded = replay(model, batch, loss_args({**args, **values}))
    scene = _gather_scene(traced)
    decisions = _on_host(traced.trace, _fss_k(traced, scene), scene, recorded, _regions(task, scene, traced))
    boxes = _hulls(decisions.gt_boxes)  # (M, 4) xyxy
    areas = decisions.gt_boxes[:, 2] * decisions.gt_boxes[:, 3] if task == "obb" else None
    gts = [_gt_view(j, rows, px, boxes, decisions) for j in choose_gts(boxes, num_gts, order, areas)]
    return AssignmentView(
        np.ascontiguousarray(batch["img"][0].permute(1, 2, 0).numpy()),
        gts,
        dict(model.names),
        values,
        num_gts=len(gt),
        assigner=values["fss_assigner"],
        task=task,
        stock=type(recorded.assigner).__name__,
        overlap=_overlap_name(task, fss_loss),
        settings=settings,
    )


def _fss_settings(model, task: str, fss: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The model's training args as a dict ({} for a bare model), the checked `fss_*` values (`fss` over those args,
    else the defaults) and where they come from (`AssignmentView.settings`).

    A model loaded from weights (`pt_path`) has lost its `fss_*` keys from `model.args` (`seam.saved_model_args` says
    why): they are read back from its file.

    Raises:
        ValueError: If `fss_assigner=tal` (TAL is the one drawn beside it anyway), or a baseline on rotated boxes.
    """
    args = args_dict(getattr(model, "args", None) or {})
    weights = getattr(model, "pt_path", None)
    if not _fss_keys(args) and weights and Path(weights).is_file():
        args = {**args, **saved_model_args(weights)}
    trained = _fss_keys(args)
    values = check_fss_args({**trained, **fss})
    if trained:
        settings = "the model's training args" + (f" ({weights})" if weights else "")
    else:
        what = f"{weights} was trained without FSS" if weights else "the model carries no training args"
        settings = f"the package defaults: {what}"
    if fss:
        settings += "; given: " + ", ".join(f"{k}={v}" for k, v in fss.items())
    name = values["fss_assigner"]
    if name == "tal":
        raise ValueError("fss_assigner=tal: TAL is drawn beside the assigner anyway; pick fss or a baseline: "
                         f"{', '.join(BASELINES)}")
    if task == "obb" and name in BASELINES and name not in ROTATED_BASELINES:
        raise ValueError(
            f"fss_assigner={name} assigns axis-aligned boxes; an obb model is drawn with fss, "
            f"{', '.join(ROTATED_BASELINES)} beside Ultralytics' RotatedTaskAlignedAssigner"
        )
    return args, values, settings


def _fss_keys(args: dict[str, Any]) -> dict[str, Any]:
    """The `fss_*` items of a model's args."""
    return {k: v for k, v in args.items() if k.startswith("fss_")}


def _gather_scene(traced: Traced) -> _Scene:
    """The assigners' inputs as the FSS loss handed them over; each anchor's stride from the grid's levels (in the
    assigner's `stride` order, as `make_anchors` lists them)."""
    scores, pd_boxes, anchors, gt_labels, gt_bboxes, mask_gt = traced.inputs
    levels = zip(traced.grid, traced.assigner.stride)
    strides = torch.cat([anchors.new_full((h * w,), float(s)) for (h, w), s in levels])  # (N,)
    return _Scene(scores, pd_boxes, anchors, strides, gt_labels, gt_bboxes, mask_gt, traced.grid)


def _fss_k(traced: Traced, scene: _Scene) -> torch.Tensor:
    """(1, M) int64 dynamic k of each GT; for baselines without one, the number of positives each GT got."""
    if traced.k is not None:
        return traced.k
    trace = traced.trace
    pos_gi = trace["gi"][trace["pos"]]  # (F,)
    k = torch.zeros_like(scene.mask_gt[..., 0], dtype=torch.long)  # (1, M)
    k.index_put_((torch.zeros_like(pos_gi), pos_gi), torch.ones_like(trace["pos"]), accumulate=True)
    return k


def _regions(task: str, scene: _Scene, traced: Traced) -> torch.Tensor | None:
    """(M, 4, 2) corners of each rotated GT's candidate region (sides floored to the assigner's `stride_val`, as its
    step 1 floors them), None for axis-aligned boxes and for the baselines (whose candidates are not one region)."""
    if task != "obb" or not isinstance(traced.assigner, RotatedFSSAssigner):
        return None
    valid = scene.mask_gt[..., 0].bool()  # (1, M)
    return xywhr2xyxyxyxy(floor_rotated_sides(scene.gt_bboxes, valid, traced.assigner.stride_val))[0]


def _overlap_name(task: str, fss_loss: Any) -> str:
    """What Eq. (3) scored: the task overlap of YOLO26 segment / pose with `fss_overlap`, probiou, or box IoU."""
    if getattr(fss_loss, "uses_task_overlap", False):
        return fss_loss.task_overlap_kind
    return "probiou" if task == "obb" else "IoU"


def _on_host(
    trace: dict[str, torch.Tensor], k: torch.Tensor, scene: _Scene, recorded: Recorded, regions: torch.Tensor | None
) -> _Decisions:
    """Both assigners' decisions as numpy, the FSS-only trace entries filled in for baselines (see `_Decisions`).

    Args:
        trace (dict[str, torch.Tensor]): The FSS assigner's trace.
        k (torch.Tensor): (1, M) from `_fss_k`.
        scene (_Scene): What the assigners saw.
        recorded (Recorded): Ultralytics' assigner's (1, N) positives and GT indices.
        regions (torch.Tensor, optional): (M, 4, 2) from `_regions`.
    """
    t = {name: v.cpu().numpy() for name, v in trace.items()}
    for name in ("s", "prior"):  # the baselines have no Eq. (3) score or Eq. (6) prior
        t.setdefault(name, np.zeros_like(t["p"]))
    t.setdefault("best", np.zeros(0, dtype=int))
    t.setdefault("weights", np.ones(len(t["pos"]), dtype=np.float32))
    return _Decisions(
        t,
        k[0].cpu().numpy(),
        scene.anchors.cpu().numpy(),
        scene.strides.cpu().numpy(),
        recorded.fg_mask[0].cpu().numpy(),
        recorded.gt_idx[0].long().cpu().numpy(),
        scene.gt_bboxes[0].float().cpu().numpy(),
        None if regions is None else regions.float().cpu().numpy(),
    )


def _hulls(gt_boxes: np.ndarray) -> np.ndarray:
    """(M, 4) xyxy boxes of (M, 4) xyxy (as they are) or (M, 5) xywhr boxes (the axis-aligned box around each)."""
    if gt_boxes.shape[1] == 4:
        return gt_boxes
    corners = xywhr2xyxyxyxy(torch.from_numpy(gt_boxes)).numpy()  # (M, 4, 2)
    return np.concatenate([corners.min(1), corners.max(1)], 1)


def _gt_view(j: int, rows: np.ndarray, px: GTLabels, boxes: np.ndarray, d: _Decisions) -> GTView:
    """The `GTView` of the assigners' GT `j` (label row `rows[j]`: preprocess sorts nothing within an image), from the
    pixel labels `px`, the (M, 4) xyxy `boxes` and the assigners' decisions `d`."""
    t = d.pairs
    pairs = np.nonzero(t["gi"] == j)[0]  # (P_j,) its candidates, in anchor order
    where = {int(pp): i for i, pp in enumerate(pairs)}  # pair index -> candidate index
    best = [int(b) for b in t["best"] if t["gi"][b] == j]
    mine = t["gi"][t["pos"]] == j  # (F,) its FSS positives
    tal_mine = d.tal_fg & (d.tal_gt == j)  # (N,) its TAL positives
    row = int(rows[j])
    rotated = d.gt_boxes.shape[1] == 5
    return GTView(
        index=row,
        cls=int(px.cls[row]),
        box=boxes[j],
        anchors=d.anchors[t["ai"][pairs]],
        strides=d.strides[t["ai"][pairs]],
        p=t["p"][pairs],
        ious=t["ious"][pairs],
        prior=t["prior"][pairs],
        s=t["s"][pairs],
        best=where[best[0]] if best else -1,
        k=int(d.k[j]),
        fss_pos=np.array([where[int(pp)] for pp in t["pos"][mine]], dtype=int),
        fss_weights=t["weights"][mine],
        tal_pos=d.anchors[tal_mine],
        tal_strides=d.strides[tal_mine],
        outline=xywhr2xyxyxyxy(torch.from_numpy(d.gt_boxes[j : j + 1])).numpy()[0] if rotated else None,
        region=None if d.regions is None else d.regions[j],
        polygon=None if px.polygons is None or rotated else px.polygons[row],
        keypoints=None if px.keypoints is None else px.keypoints[row],
    )
