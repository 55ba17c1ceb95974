"""Host synchronisations per label-assignment call: FSS (and the paper's baselines) vs Ultralytics' TAL.

    python benchmarks/host_syncs.py                        # 16 images, 640 px, 32 GTs: one call of each assigner
    python benchmarks/host_syncs.py --shapes 16x640x32 4x1024x300 --step   # and one yolo11n training step
    python benchmarks/host_syncs.py --verbose              # which op synchronises, how often

What it counts, and what it does not: this is a count of the operations that make the host wait for a CUDA device
(a "host synchronisation"), made on whatever device the script runs on, by rule. It is not a CUDA measurement: no
CUDA device was used to make these numbers, and `torch.cuda.set_sync_debug_mode`, the CUDA-side check, needs one.
The rule is what PyTorch's CUDA implementation does (aten/src/ATen/native: `nonzero`, `bincount` in SummaryOps.cu,
`repeat_interleave`, `_index_put_impl_`, the copy of a pageable host buffer):

- results whose size depends on the data: `nonzero` (and `argwhere`, `x.nonzero()`), `masked_select`, indexing
  with a boolean mask (`x[mask]`, which runs `nonzero`; `x[mask] = value` too unless `value` is one number, which
  PyTorch hands to `masked_fill_`), `unique` and its variants, `repeat_interleave` without `output_size`, `bincount`
  (its CUDA kernel reads the input's minimum and maximum back, the latter to size its output, whatever `minlength`:
  counted once here);
- values read back to Python: `.item()`, `bool(t)`, `int(t)`, `float(t)` (aten `_local_scalar_dense`), `equal`,
  `.tolist()`, `.numpy()`, `.cpu()`;
- host-to-device copies: `torch.tensor(data, device=...)`, `torch.as_tensor(data, device=...)` of Python data
  (a pageable copy, which `copy_` finishes with a stream synchronisation); counted here whatever the device, since
  on CUDA it would be one.

Ops are seen through two PyTorch hooks active during the call: a `TorchDispatchMode` (every aten op the call runs:
the first two groups) and a `TorchFunctionMode` (Python-level tensor creation and reads the dispatcher does not see
on CPU: `torch.tensor`, `as_tensor`, `tolist`, `numpy`, `cpu`). Ops PyTorch runs inside another op (the `nonzero`
of a boolean index) are counted once, as the outer op. Not counted: synchronisations inside kernels the rule does
not list (none is known for the ops these assigners run) and the CUDA caching allocator's own (`cudaMalloc` when its
cache is empty, which no count made without a device can see).

One call = one `assign` (FSS, `FSSDetectionLoss`'s arguments, the feature-map grid) or one `forward` (TAL, built as
`v8DetectionLoss` builds it), after one warm-up call, on the inputs of `benchmarks/assigner.py` (same shapes, same
seed). With `--step`, also one training step of `yolo11n.yaml` at the shape's batch and image size: forward, loss
(Ultralytics' stock criterion vs `build_fss_criterion`), backward; its GTs are the shape's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/assigner.py, when imported from a test
from assigner import NUM_CLASSES, STRIDES, make_inputs, parse_shape  # noqa: E402

aten = torch.ops.aten
# aten ops that synchronise on CUDA whatever their arguments (see the module docstring)
ALWAYS = {
    aten.nonzero.default: "nonzero",
    aten.nonzero.out: "nonzero",
    aten.masked_select.default: "masked_select",
    aten._local_scalar_dense.default: "item",
    aten.equal.default: "equal",
    aten.bincount.default: "bincount",
    aten.unique_consecutive.default: "unique",
    aten.unique_dim.default: "unique",
    aten._unique.default: "unique",
    aten._unique2.default: "unique",
}
BOOL = (torch.bool, torch.uint8)
HOST_READS = {"tolist", "numpy", "cpu"}  # Tensor methods that copy device memory to the host
HOST_WRITES = {"tensor", "as_tensor", "asarray"}  # torch functions that copy Python data to a device


def _bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in BOOL for i in indices if i is not None)


def syncing_op(func, args, kwargs) -> str | None:
    """The name under which an aten call counts as a host synchronisation on CUDA, or None."""
    if func in ALWAYS:
        return ALWAYS[func]
    if func in (aten.index.Tensor, aten.index.Tensor_out) and _bool_index(args[1]):
        return "index[bool]"
    if func in (aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default):
        if _bool_index(args[1]) and args[2].numel() != 1:
            return "index_put[bool]"
    if func in (aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor):
        if kwargs.get("output_size") is None:
            return "repeat_interleave"
    return None


class _Ops(TorchDispatchMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = syncing_op(func, args, kwargs)
        if name:
            self.counts[name] += 1
        return func(*args, **kwargs)


class _Python(TorchFunctionMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_READS and args and isinstance(args[0], torch.Tensor):
            self.counts[name] += 1
        elif name in HOST_WRITES and kwargs.get("device") is not None and not isinstance(args[0], torch.Tensor):
            self.counts[f"{name}(device=)"] += 1
        return func(*args, **kwargs)


class SyncCounter:
    """Count the ops of a block that synchronise the host on CUDA (module docstring), by name in `counts`.

    Examples:
        >>> with SyncCounter() as c:
        ...     assigner.assign(*inputs, grid=grid)
        >>> c.total, dict(c.counts)
    """

    def __init__(self):
        self.counts: Counter = Counter()
        self._modes = (_Python(self.counts), _Ops(self.counts))

    def __enter__(self) -> SyncCounter:
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for m in reversed(self._modes):
            m.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count(fn, *args, **kwargs) -> SyncCounter:
    """Run `fn` once as warm-up, then once more inside a `SyncCounter`; return the counter."""
    fn(*args, **kwargs)
    with SyncCounter() as c:
        fn(*args, **kwargs)
    return c


def assigners(imgsz: int) -> dict:
    """Each assigner as the training criterion builds and calls it: name -> callable(*inputs)."""
    from ultralytics.utils.tal import TaskAlignedAssigner

    from ultralytics_fss.assign import BASELINES, FSSAssigner

    grid = [(imgsz // s, imgsz // s) for s in STRIDES]
    kw = dict(num_classes=NUM_CLASSES, alpha=0.5, beta=6.0, stride=list(STRIDES))
    tal = TaskAlignedAssigner(topk=10, **kw)
    fss = FSSAssigner(u=2.0, q=10, soft_target="tal", **kw)
    out = {"tal": tal, "fss": lambda *x: fss.assign(*x, grid=grid)}
    for name, cls in BASELINES.items():
        out[name] = (lambda a: lambda *x: a.assign(*x, grid=grid))(cls(soft_target="tal", **kw))
    return out


def step_counts(shape: str) -> dict[str, SyncCounter]:
    """Syncs of one training step (forward, loss, backward) of yolo11n.yaml, stock criterion vs FSS's."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_fss import FSS_DEFAULTS, build_fss_criterion

    b, _, m, imgsz, _ = parse_shape(shape)
    _, _, _, gt_labels, gt_bboxes, mask_gt = make_inputs(shape, "cpu")
    keep = mask_gt[..., 0].bool()
    bi = torch.arange(b)[:, None].expand(b, m)[keep].float()
    xyxy = gt_bboxes[keep] / imgsz
    batch = dict(img=torch.rand(b, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)), batch_idx=bi,
                 cls=gt_labels[keep], bboxes=torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1))
    out = {}
    for name in ("tal", "fss"):
        torch.manual_seed(0)
        model = DetectionModel("yolo11n.yaml", nc=NUM_CLASSES, verbose=False)
        model.args = get_cfg({**DEFAULT_CFG_DICT, **FSS_DEFAULTS})
        model.criterion = build_fss_criterion(model) if name == "fss" else model.init_criterion()

        def step():
            model.zero_grad()
            loss, _ = model.loss(batch)
            loss.sum().backward()

        out[name] = count(step)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["16x640x32"], help="BxIMGSZxM[@LO-HI] (benchmarks/assigner.py)")
    parser.add_argument("--step", action="store_true", help="also one yolo11n training step per shape")
    parser.add_argument("--verbose", action="store_true", help="list the syncing ops of each call")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, device cpu: ops that synchronise on CUDA, counted by rule (see --help)")
    for shape in args.shapes:
        inputs = make_inputs(shape, "cpu")
        calls = {name: count(fn, *inputs) for name, fn in assigners(parse_shape(shape)[3]).items()}
        _table(f"{shape}: host syncs per assignment call", "assigner", calls, args.verbose)
        if args.step:
            _table(f"{shape}: host syncs per yolo11n training step (forward, loss, backward)", "criterion",
                   step_counts(shape), args.verbose)  # fmt: skip


def _table(title: str, what: str, counters: dict[str, SyncCounter], verbose: bool) -> None:
    """Print one Markdown table: a row per counter, with the syncing ops by name when `verbose`."""
    extra = (" ops |", "---|") if verbose else ("", "")
    print(f"\n{title}\n| {what} | syncs |{extra[0]}\n|---|---|{extra[1]}")
    for name, c in counters.items():
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(c.counts.items()))
        print(f"| {name} | {c.total} |" + (f" {ops} |" if verbose else ""))


if __name__ == "__main__":
    main()
