"""Mixed precision: one training step of every task with every assigner under autocast, on CPU.

Ultralytics runs the forward pass and the loss inside `torch.autocast("cuda")` when `amp=True`. No GPU is needed to
find what breaks there: CPU autocast (bf16, fp16) casts the same op classes, so dtype mismatches show on CPU, and the
op CUDA autocast refuses whatever its inputs (`binary_cross_entropy`: aten/src/ATen/autocast_mode.cpp registers
`binary_cross_entropy_banned` for the CUDA autocast key only) is caught by `AutocastRefusedOps`, which records every
such op called while autocast is on: exactly the calls that raise on CUDA.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_seam import model_and_batch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ultralytics_fss.train.loss import build_fss_criterion

aten = torch.ops.aten
# Ops CUDA autocast refuses whatever the dtype (`*_banned` kernels of aten/src/ATen/autocast_mode.cpp, torch 2.x).
REFUSED_BY_CUDA_AUTOCAST = {aten.binary_cross_entropy.default, aten.binary_cross_entropy.out}
DEVICE_TYPES = ("cpu", "cuda")

# (task, model) of every task. The fast lane: every assigner on yolo11n.yaml, FSS on one model of each other task
# (as in test_seam.py); the rest is marked slow.
MODELS = [("detect", "yolo11n.yaml"), ("obb", "yolo11n-obb.yaml"), ("segment", "yolo26n-seg.yaml"),
          ("pose", "yolo26n-pose.yaml"), ("detect", "yolo26n.yaml"), ("obb", "yolo26n-obb.yaml"),
          ("segment", "yolo11n-seg.yaml"), ("pose", "yolo11n-pose.yaml")]  # fmt: skip
FAST = {m for _, m in MODELS[:4]}
AXIS_ALIGNED = ("fss", "tal", "maxiou", "atss", "simota", "paa", "dw")  # every fss_assigner
ORIENTED = ("fss", "tal", "maxiou", "atss", "simota")  # obb: the Table 6 baselines have oriented versions
CASES = [pytest.param(task, model, name, marks=() if model in ("yolo11n.yaml", "yolo11n-obb.yaml")
                      or (model in FAST and name == "fss") else pytest.mark.slow)
         for task, model in MODELS for name in (ORIENTED if task == "obb" else AXIS_ALIGNED)]  # fmt: skip


class _Ops(TorchDispatchMode):
    """The aten side of `AutocastRefusedOps`: records refused ops run while its owner says autocast was on."""

    def __init__(self, owner: AutocastRefusedOps):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in REFUSED_BY_CUDA_AUTOCAST and self.owner.under_autocast:
            self.owner.refused.append(str(func))
        return func(*args, **(kwargs or {}))


class AutocastRefusedOps(TorchFunctionMode):
    """Record each op of `REFUSED_BY_CUDA_AUTOCAST` run by a torch call made while autocast is on (`refused`).

    Autocast's state is read where the call enters torch (this function mode): inside the dispatcher autocast
    switches itself off while it casts, so `torch.is_autocast_enabled` reads False there. The ops the call runs are
    seen by a dispatch mode (`_Ops`), whatever Python function (`F.binary_cross_entropy`, `nn.BCELoss`) reached them.
    """

    def __init__(self):
        super().__init__()
        self.refused: list[str] = []
        self.under_autocast = False
        self._ops = _Ops(self)

    def __enter__(self):
        self._ops.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._ops.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        outer, self.under_autocast = self.under_autocast, any(torch.is_autocast_enabled(d) for d in DEVICE_TYPES)
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.under_autocast = outer


def autocast_step(task: str, cfg: str, dtype: torch.dtype, **fss) -> tuple[torch.Tensor, list[str]]:
    """One training step as Ultralytics' trainer makes it: forward and loss inside autocast, backward outside.

    Returns:
        (tuple): The loss vector and the refused ops called under autocast.
    """
    model, batch = model_and_batch(task, cfg)
    for key, value in fss.items():
        setattr(model.args, key, value)
    model.criterion = build_fss_criterion(model)
    with AutocastRefusedOps() as guard, torch.autocast("cpu", dtype=dtype):
        loss, items = model.loss(batch)
    loss.sum().backward()
    assert all(torch.isfinite(v) for v in items.values()), items
    assert torch.isfinite(loss).all() and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    return loss, guard.refused


def test_guard_catches_what_cuda_autocast_refuses():
    """The check is real: BCE under autocast is recorded, BCE with autocast switched off (as CUDA allows) is not."""
    p, y = torch.rand(4), torch.ones(4)
    with AutocastRefusedOps() as guard:
        F.binary_cross_entropy(p, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            F.binary_cross_entropy(p, y)
            with torch.autocast("cpu", enabled=False):
                F.binary_cross_entropy(p, y)
            F.binary_cross_entropy_with_logits(p, y)  # the autocast-safe form
    assert guard.refused == ["aten.binary_cross_entropy.default"]


@pytest.mark.parametrize("task, cfg, assigner", CASES)
def test_every_task_and_assigner_trains_one_step_under_autocast(task, cfg, assigner):
    """bf16 autocast: finite loss and gradients, and no op that CUDA autocast refuses (SimOTA's BCE cost was one)."""
    _, refused = autocast_step(task, cfg, torch.bfloat16, fss_assigner=assigner)
    assert not refused, f"{refused} would raise under CUDA autocast"


@pytest.mark.parametrize(
    "task, cfg, dtype",
    [("segment", "yolo26n-seg.yaml", torch.bfloat16), pytest.param("segment", "yolo26n-seg.yaml", torch.float16,
     marks=pytest.mark.slow), pytest.param("pose", "yolo26n-pose.yaml", torch.bfloat16, marks=pytest.mark.slow),
     pytest.param("pose", "yolo26n-pose.yaml", torch.float16, marks=pytest.mark.slow)],
)  # fmt: skip
def test_task_overlap_under_autocast(task, cfg, dtype):
    """`fss_overlap=task` hands Ultralytics' mask / OKS overlap float32 boxes, as the stock loss does: under autocast
    the predicted boxes are half precision and the YOLO26 mask overlap failed on the dtype mismatch."""
    _, refused = autocast_step(task, cfg, dtype, fss_overlap="task")
    assert not refused
