"""What the assigners choose on one image: FSS and Ultralytics' TAL run on the same predictions of one model.

`assignment_view` letterboxes an image as Ultralytics' validator does, runs the model once, hands the loss's own
inputs (`FSSDetectionLoss.inputs`) to the FSS assigner (with its per-pair `trace`) and to the stock loss's
`TaskAlignedAssigner`, and keeps, for the chosen ground truths, everything the pictures of `evidence.pictures` draw:
candidate anchors with their class score, IoU, Gaussian prior and s, the potentially optimal sample, k, the FSS
positives with their Eq. (8) weights, and TAL's positives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import box_iou

from ultralytics_fss.train.cfg import check_fss_args
from ultralytics_fss.train.loss import build_fss_criterion


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
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5) if len(labels) else np.zeros((0, 5), np.float32)
    if not len(labels):
        raise ValueError("the image has no ground truth to assign (empty labels)")
    nc = len(model.names)
    if labels[:, 0].min() < 0 or labels[:, 0].max() >= nc:
        raise ValueError(f"label classes {sorted(set(labels[:, 0].astype(int)))} outside the model's {nc} classes")
    original = model.args
    args = original if isinstance(original, dict) else vars(original)
    values = check_fss_args({**{k: v for k, v in args.items() if k.startswith("fss_")}, **fss})
    if values["fss_assigner"] == "tal":
        raise ValueError("fss_assigner=tal: TAL is drawn beside the assigner anyway; pick fss, maxiou, atss or simota")
    was_training = model.training
    model.args = {**args, **values}  # what the criteria read
    try:
        crit = build_fss_criterion(model)
        crit = getattr(crit, "one2many", crit)  # end-to-end heads: the one-to-many branch FSS drives
        tal = v8DetectionLoss(model).assigner  # what the stock loss would assign with
        rgb, boxes = letterbox(image, labels, imgsz)
        device = next(model.parameters()).device
        img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).to(device)
        model.eval()
        out = model(img)
        preds = out[1] if isinstance(out, tuple) else out
        preds = preds.get("one2many", preds)
        xywhn = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / imgsz
        batch = dict(batch_idx=torch.zeros(len(labels)), cls=torch.from_numpy(labels[:, :1]),
                     bboxes=torch.from_numpy(xywhn.astype(np.float32)))  # fmt: skip
        x = crit.inputs(preds, batch)
        scores = x.pred_scores.sigmoid()
        pd_boxes = (x.pred_bboxes * x.stride_tensor).type(x.gt_bboxes.dtype)
        anchors = x.anchor_points * x.stride_tensor
        trace = {}
        result, k = crit.assigner.assign(scores, pd_boxes, anchors, x.gt_labels, x.gt_bboxes, x.mask_gt,
                                         grid=[tuple(f.shape[2:]) for f in preds["feats"]], trace=trace)  # fmt: skip
        if k is None:  # baselines without a k: draw the number of positives each GT got
            k = torch.zeros_like(x.mask_gt[..., 0], dtype=torch.long).index_put_(
                (torch.zeros_like(trace["gi"][trace["pos"]]), trace["gi"][trace["pos"]]),
                torch.ones_like(trace["pos"]), accumulate=True)
        _, _, _, tal_fg, tal_gt = tal(scores, pd_boxes, anchors, x.gt_labels, x.gt_bboxes, x.mask_gt)
    finally:
        model.args = original
        model.train(was_training)

    # preprocess sorts nothing within an image: GT row m of the padded batch is label row m.
    t = {name: v.cpu().numpy() for name, v in trace.items()}
    for name in ("s", "prior"):  # the baselines have no Eq. (3) score or Eq. (6) prior
        t.setdefault(name, np.zeros_like(t["p"]))
    t.setdefault("best", np.zeros(0, dtype=int))
    t.setdefault("weights", np.ones(len(t["pos"]), dtype=np.float32))
    anc, strides = anchors.cpu().numpy(), x.stride_tensor[:, 0].cpu().numpy()
    tal_fg, tal_gt = tal_fg[0].cpu().numpy(), tal_gt[0].cpu().numpy()
    pos_gt = t["gi"][t["pos"]]
    views = []
    for j in choose_gts(boxes, num_gts, order):
        pairs = np.nonzero(t["gi"] == j)[0]  # its candidates, in anchor order
        where = {int(pp): i for i, pp in enumerate(pairs)}
        best = [int(b) for b in t["best"] if t["gi"][b] == j]
        mine = pos_gt == j
        tal_mine = tal_fg & (tal_gt == j)
        views.append(GTView(
            index=j, cls=int(labels[j, 0]), box=boxes[j], anchors=anc[t["ai"][pairs]], strides=strides[t["ai"][pairs]],
            p=t["p"][pairs], ious=t["ious"][pairs], prior=t["prior"][pairs], s=t["s"][pairs],
            best=where[best[0]] if best else -1, k=int(k[0, j]),
            fss_pos=np.array([where[int(pp)] for pp in t["pos"][mine]], dtype=int), fss_weights=t["weights"][mine],
            tal_pos=anc[tal_mine], tal_strides=strides[tal_mine],
        ))  # fmt: skip
    return AssignmentView(rgb, views, dict(model.names), values, num_gts=len(labels),
                          assigner=values["fss_assigner"])  # fmt: skip
