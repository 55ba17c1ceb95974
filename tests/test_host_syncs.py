"""Host synchronisations of the assigners, counted by rule on CPU (`benchmarks/host_syncs.py`): the counter sees the
ops that synchronise on CUDA, and FSS stays within its budget of 8 per call in every configuration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import grid_of

from ultralytics_fss.assign import FSSAssigner, RotatedFSSAssigner

BUDGET = 8  # host syncs per FSS call (issue 20; TaskAlignedAssigner makes 2)
_spec = importlib.util.spec_from_file_location(
    "host_syncs", Path(__file__).resolve().parents[1] / "benchmarks" / "host_syncs.py"
)
host_syncs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(host_syncs)


def counted(fn, *args, **kwargs) -> dict[str, int]:
    with host_syncs.SyncCounter() as c:
        fn(*args, **kwargs)
    return dict(c.counts)


def test_counter_sees_the_syncing_ops_and_only_those():
    x, mask, idx = torch.arange(6.0), torch.tensor([True, False] * 3), torch.tensor([0, 2])
    got = counted(lambda: (x.nonzero(), x[mask], torch.bincount(idx, minlength=4), x.sum().item(), bool(x[1]),
                           torch.tensor([1.0, 2.0], device="cpu"), torch.repeat_interleave(idx, idx), x.tolist()))
    assert got == {"nonzero": 1, "index[bool]": 1, "bincount": 1, "item": 2, "tensor(device=)": 1,
                   "repeat_interleave": 1, "tolist": 1}  # fmt: skip
    quiet = counted(lambda: (x[idx], x.masked_fill(mask, 0.0), x.index_put((mask,), torch.tensor(1.0)),
                             torch.repeat_interleave(idx, idx, output_size=2), torch.sort(x), torch.tensor([1.0]),
                             torch.zeros(3).index_add_(0, idx, x[:2]), torch.where(mask, x, 0.0)))  # fmt: skip
    assert quiet == {}  # no device given to torch.tensor: a CPU tensor, no copy


@pytest.mark.parametrize(
    "kw, grid",
    [(dict(), True), (dict(soft_target="tal"), True), (dict(rescue=True), True), (dict(radius=2.5), True),
     (dict(fixed_k=1), True), (dict(), False), (dict(rescue=True), False)],
)  # fmt: skip
def test_fss_within_budget(kw, grid):
    inputs = host_syncs.make_inputs("2x320x32", "cpu")
    assigner = FSSAssigner(num_classes=host_syncs.NUM_CLASSES, **kw)
    total = sum(counted(assigner.assign, *inputs, grid=grid_of(320) if grid else None).values())
    assert total <= BUDGET


@pytest.mark.parametrize("grid", [True, False])
def test_rotated_fss_within_budget(grid):
    inputs = host_syncs.make_inputs("2x320x32", "cpu", boxes="obb")
    assigner = RotatedFSSAssigner(num_classes=host_syncs.NUM_CLASSES)
    assert sum(counted(assigner.assign, *inputs, grid=grid_of(320) if grid else None).values()) <= BUDGET


def test_fss_as_the_loss_calls_it_makes_five():
    """The default call (with the feature-map grid): two to list the candidate pairs, one for the NaN check, two for
    the selected pairs and the positives after conflicts; TAL makes 2 on the same inputs."""
    inputs = host_syncs.make_inputs("2x320x32", "cpu")
    calls = host_syncs.assigners(320)
    assert counted(calls["fss"], *inputs) == {"item": 2, "nonzero": 2, "index[bool]": 1}
    assert sum(counted(calls["tal"], *inputs).values()) == 2
