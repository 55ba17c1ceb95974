"""The paper's baseline assigners against their loop references on random scenes, and their invariants."""

from __future__ import annotations

import pytest
import torch
from conftest import grid_of
from reference_baselines import reference_atss, reference_maxiou, reference_simota
from test_assigner import random_case

from ultralytics_fss.assign.baselines import ATSSAssigner, MaxIoUAssigner, SimOTAAssigner

CASES = [
    dict(b=2, m=6),
    dict(b=2, m=12, max_wh=0.2),  # crowded small boxes
    dict(b=1, m=4, imgsz=(64, 96)),  # rectangular
    dict(b=2, m=5, valid=0.0),  # no valid GT
    dict(b=2, m=5, imgsz=128, max_wh=0.8),  # large boxes: Max-IoU positives by threshold, and ignored anchors
]
ASSIGNERS = [(MaxIoUAssigner, reference_maxiou), (ATSSAssigner, reference_atss), (SimOTAAssigner, reference_simota)]


@pytest.mark.parametrize("cls, reference", ASSIGNERS, ids=["maxiou", "atss", "simota"])
@pytest.mark.parametrize("params", CASES)
def test_matches_loop_reference(cls, reference, params):
    gen = torch.Generator().manual_seed(2)
    imgsz = params.get("imgsz", 64)
    grid = grid_of(imgsz)
    for _ in range(6):
        case = random_case(gen, **params)[:6]
        result, _ = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid)
        want = reference(*case, num_classes=3, stride=[8, 16, 32], grid=grid)
        for name, got, ref in zip(result._fields, result, want):
            if got.dtype in (torch.bool, torch.long):
                assert torch.equal(got, ref), name
            else:
                torch.testing.assert_close(got.float(), ref.float(), atol=2e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("cls", [MaxIoUAssigner, ATSSAssigner, SimOTAAssigner])
def test_invariants_and_grid_required(cls):
    gen = torch.Generator().manual_seed(4)
    case = random_case(gen, b=3, m=15, imgsz=96, max_wh=0.3)[:6]
    r, k = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(96))
    bi, ai = r.fg_mask.nonzero(as_tuple=True)
    gi = r.gt_idx[bi, ai]
    assert bi.numel() > 0 and case[5][bi, gi, 0].bool().all()  # positives belong to real GTs
    assert (r.weights[r.fg_mask] == 1).all() and (r.weights[~r.fg_mask] == 0).all()
    assert ((r.scores.sum(-1) >= 0) & (r.scores.sum(-1) <= 1)).all()
    if cls is SimOTAAssigner:
        assert k is not None and (k[case[5][..., 0].bool()] >= 1).all()
    with pytest.raises(ValueError, match="grid"):
        cls(num_classes=3, stride=[8, 16, 32]).assign(*case)


def test_maxiou_thresholds_and_ignored_anchors():
    """Large boxes exercise both Max-IoU rules: positives by the 0.5 threshold on the virtual anchors, and anchors
    ignored for a best IoU in [0.4, 0.5), never positive (the FSS loss gives them weight 0 in its cls term)."""
    from ultralytics.utils.metrics import bbox_iou

    from ultralytics_fss.assign.baselines import anchor_boxes, anchor_strides

    gen = torch.Generator().manual_seed(3)
    ps, pd, anc, labels, _, _, _ = random_case(gen, b=1, m=1, imgsz=128)
    gt, mask = torch.tensor([[[32.0, 32.0, 96.0, 96.0]]]), torch.ones(1, 1, 1)  # the size of a stride-8 anchor
    trace = {}
    r, _ = MaxIoUAssigner(num_classes=3, stride=[8, 16, 32]).assign(ps, pd, anc, labels, gt, mask, grid=grid_of(128),
                                                                    trace=trace)  # fmt: skip
    ignored = r.labels < 0
    assert ignored.any() and not (ignored & r.fg_mask).any()
    pos = trace["pos"]
    ai = trace["ai"][pos]
    boxes = anchor_boxes(anc[ai].float(), anchor_strides(grid_of(128), [8, 16, 32], "cpu")[ai])
    a_iou = bbox_iou(gt[0], boxes, xywh=False).squeeze(-1)
    assert len(pos) > 1 and (a_iou >= 0.5).all()  # several positives, all by the threshold
