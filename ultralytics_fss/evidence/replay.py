"""One training step replayed on one image: the FSS criterion a model trains with and Ultralytics' own criterion of
its task run on the same predictions and batch, each assigner recorded as its loss calls it.

The losses are called whole (`loss(preds, batch)`), so each assigner gets exactly what it gets in training, whatever the
task: the rotated boxes of obb, the keypoints that YOLO26 pose scores OKS with, the masks of YOLO26 segment's
mask-aware TAL. Only the assigners' calls are kept; the loss values are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

from ultralytics_fss.train.loss import build_fss_criterion
from ultralytics_fss.train.seam import criterion, main_branch, stock_loss_class, training_preds


class Replayed(NamedTuple):
    """What a replayed step leaves.

    Attributes:
        fss_loss (Any): The FSS loss (the one-to-many branch of end-to-end heads), its assigner replaced by `traced`.
        traced (Traced): The FSS (or baseline) assigner's call.
        recorded (Recorded): Ultralytics' assigner's call.
    """

    fss_loss: Any
    traced: Traced
    recorded: Recorded


class Traced:
    """Stands in for the FSS (or baseline) assigner during one loss call: runs it with its `trace` and keeps what it
    was handed and what it decided."""

    def __init__(self, assigner: Any):
        self.assigner = assigner
        self.inputs: tuple[torch.Tensor, ...] = ()
        self.grid: list[tuple[int, int]] = []
        self.trace: dict[str, torch.Tensor] = {}
        self.k: torch.Tensor | None = None

    def assign(self, *inputs: torch.Tensor, grid: list[tuple[int, int]], **kwargs: Any) -> tuple:
        """`PairAssigner.assign`, recorded."""
        self.inputs, self.grid = inputs, grid
        result, self.k = self.assigner.assign(*inputs, grid=grid, trace=self.trace, **kwargs)
        return result, self.k


class Recorded:
    """Stands in for Ultralytics' assigner during one loss call: runs it and keeps its positives and GT indices."""

    def __init__(self, assigner: Any):
        self.assigner = assigner
        self.fg_mask: torch.Tensor | None = None
        self.gt_idx: torch.Tensor | None = None

    def __call__(self, *inputs: Any, **kwargs: Any) -> tuple:
        """`TaskAlignedAssigner.forward` (or a variant's), recorded: (1, N) bool positives, (1, N) GT indices."""
        out = self.assigner(*inputs, **kwargs)
        self.fg_mask, self.gt_idx = out[3], out[4]
        return out


@torch.no_grad()
def replay(model, batch: dict[str, torch.Tensor], args: Any) -> Replayed:
    """Run `model` on the batch image and both criteria on its predictions and the batch, with `args` lent to the
    model (what the criteria read); the model is handed back with its own args and train/eval mode.

    Args:
        model (DetectionModel): A YOLO detect, obb, segment or pose model.
        batch (dict[str, torch.Tensor]): One image as Ultralytics' loader gives it (`seam.one_image_batch`).
        args (Any): The `model.args` the criteria read (`seam.loss_args`).
    """
    with _lent(model, args):
        fss_loss, stock_loss = _criteria(model)
        preds = _predict(model, batch["img"])
        device = preds["feats"][0].device
        fss_loss.assigner = traced = Traced(fss_loss.assigner)
        stock_loss.assigner = recorded = Recorded(stock_loss.assigner)
        for loss in (fss_loss, stock_loss):  # each on its own copy of the batch, on the model's device
            loss.loss(preds, {k: v.to(device, copy=True) if torch.is_tensor(v) else v for k, v in batch.items()})
    return Replayed(fss_loss, traced, recorded)


@contextmanager
def _lent(model, args: Any) -> Iterator[None]:
    """Give `model` these `args` (what the criteria read) for the block; hand it back with its own args (or none) and
    train/eval mode, whatever the block did or raised."""
    missing = object()
    original, was_training = getattr(model, "args", missing), model.training
    model.args = args
    try:
        yield
    finally:
        if original is missing:
            del model.args
        else:
            model.args = original
        model.train(was_training)


def _criteria(model) -> tuple[Any, Any]:
    """The FSS loss the model trains with and Ultralytics' own loss of its task (the one-to-many branch of end-to-end
    heads for both, the branch FSS drives); both read `model.args`."""
    return main_branch(build_fss_criterion(model)), main_branch(criterion(model, stock_loss_class(model)))


def _predict(model, img: torch.Tensor) -> dict[str, Any]:
    """Run `model` in eval mode (the caller restores its mode) on a (1, 3, S, S) uint8 RGB batch image.

    Returns:
        (dict[str, Any]): The training-format predictions (of the one-to-many branch of end-to-end heads), with
            `feats`, the per-level (1, C + 4 * reg_max, h, w) feature maps, and the task's outputs.
    """
    model.eval()
    return training_preds(model(img.to(next(model.parameters()).device).float() / 255))  # as `preprocess_batch`
