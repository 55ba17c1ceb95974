"""RotatedFSSAssigner against the loop reference of the rotated rules, and against Ultralytics' rotated TAL rule."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import anchors, grid_of
from reference import reference_fss
from reference_rotated import Rotated
from ultralytics.utils.tal import RotatedTaskAlignedAssigner

from ultralytics_fss.assign.rotated import RotatedFSSAssigner

STRIDES = (8, 16, 32)


def rotated_case(gen, b=2, m=6, imgsz=64, nc=3, max_wh=0.5, valid=0.8, angles="any", quantize=False):
    """Random rotated predictions and GTs (xywhr pixels). `angles`: 'any', 'axis' (near 0, 90, 180 degrees: exact
    multiples of pi/2 plus at most 1e-4 rad), or 'squares' (w = h, where the angle is ambiguous)."""
    anc = anchors(imgsz, STRIDES)
    n = anc.shape[0]

    def angle(shape):
        if angles == "axis":
            jitter = (torch.rand(shape, generator=gen) - 0.5) * 2e-4
            return torch.randint(0, 3, shape, generator=gen) * (math.pi / 2) + jitter
        return torch.rand(shape, generator=gen) * math.pi

    xy = torch.rand(b, m, 2, generator=gen) * imgsz
    wh = torch.rand(b, m, 2, generator=gen) * imgsz * max_wh + 0.5
    if angles == "squares":
        wh[..., 1] = wh[..., 0]
    gt = torch.cat([xy, wh, angle((b, m, 1))], -1)
    if quantize:
        gt[..., :4] = (gt[..., :4] / 8).round().clamp(min=1) * 8
    mask = (torch.rand(b, m, 1, generator=gen) < valid).float()
    labels = torch.randint(0, nc, (b, m, 1), generator=gen).float()
    pxy = anc[None] + torch.randn(b, n, 2, generator=gen) * 3
    pwh = torch.rand(b, n, 2, generator=gen) * imgsz * max_wh + 1
    pd = torch.cat([pxy, pwh, angle((b, n, 1))], -1)
    ps = torch.rand(b, n, nc, generator=gen)
    if quantize:
        ps = (ps * 2).round() / 2
    return ps, pd, anc, labels, gt, mask


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(b=1, m=1),
        pytest.param(dict(b=2, m=16, imgsz=96, max_wh=0.3), marks=pytest.mark.slow),  # crowded (the slowest loop)
        dict(b=2, m=10, max_wh=0.05),  # tiny: sides floored to stride_val
        dict(b=2, m=8, angles="axis"),  # angles near 0, 90 and 180 degrees
        dict(b=2, m=8, angles="squares"),  # squares, whose angle is ambiguous
        dict(b=2, m=8, angles="axis", quantize=True),  # anchors exactly on box edges, many ties
        dict(b=2, m=6, valid=0.0),
    ],
)
def test_matches_loop_reference(params):
    gen = torch.Generator().manual_seed(0)
    imgsz = params.get("imgsz", 64)
    grid = grid_of(imgsz, STRIDES)
    for _ in range(6):
        case = rotated_case(gen, **params)
        nc = case[0].shape[-1]
        assigner = RotatedFSSAssigner(num_classes=nc, stride=list(STRIDES), soft_target="tal")
        ref = reference_fss(*case, num_classes=nc, stride=STRIDES, soft_target="tal", geometry=Rotated)
        inputs = [t.clone() for t in case]
        for g in (None, grid):  # step 1 through Ultralytics' dense rule, and listed in O(P)
            result, k = assigner.assign(*case, grid=g)
            for name, got, want in zip(result._fields, result, ref):
                if got.dtype in (torch.bool, torch.long):
                    assert torch.equal(got, want), (name, g)
                else:
                    torch.testing.assert_close(got.float(), want.float(), atol=2e-5, rtol=1e-4, msg=name)
            torch.testing.assert_close(k, ref[6] * case[5][..., 0].long())
        for before, after in zip(inputs, case):  # inputs never modified (Ultralytics PR #24260)
            assert torch.equal(before, after)


def test_candidates_equal_ultralytics_rotated_rule():
    """Step 1 lists exactly the nonzero entries of RotatedTaskAlignedAssigner's dense mask, in the same order."""
    gen = torch.Generator().manual_seed(1)
    tal = RotatedTaskAlignedAssigner(num_classes=3, stride=list(STRIDES))
    assigner = RotatedFSSAssigner(num_classes=3, stride=list(STRIDES))
    for angles in ("any", "axis", "squares"):
        ps, pd, anc, labels, gt, mask = rotated_case(gen, b=3, m=12, imgsz=96, angles=angles, quantize=angles == "axis")
        dense = tal.select_candidates_in_gts(anc, gt, mask) & mask.bool()
        want = dense.nonzero(as_tuple=True)
        got = assigner.candidates(anc, gt, mask[..., 0].bool(), grid_of(96, STRIDES))
        for g, w in zip(got, want):
            assert torch.equal(g, w)


def test_prior_is_rotation_covariant():
    """Eq. (6) with the rotated covariance: rotating the GT and the offset together leaves g unchanged, and at r = 0
    it is the axis-aligned prior."""
    assigner = RotatedFSSAssigner(num_classes=1, stride=[8, 16, 32])
    d = torch.tensor([[10.0, 4.0], [0.0, 30.0], [-20.0, 7.0]])
    box0 = torch.tensor([[0.0, 0.0, 40.0, 20.0, 0.0]]).repeat(3, 1)
    g0 = assigner.gaussian_prior(d, torch.zeros_like(d), box0)
    torch.testing.assert_close(g0, torch.exp(-0.5 * ((d[:, 0] / 40) ** 2 + (d[:, 1] / 20) ** 2)))
    for r in (0.3, math.pi / 2, 2.5):
        rot = torch.tensor([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
        box = box0.clone()
        box[:, 4] = r
        torch.testing.assert_close(assigner.gaussian_prior(d @ rot.T, torch.zeros_like(d), box), g0)
