"""FSSAssigner against the loop reference, its invariants, and hand-built corner cases."""

from __future__ import annotations

import pytest
import torch
from conftest import anchors, grid_of
from reference import reference_fss
from ultralytics.utils.tal import TaskAlignedAssigner

from ultralytics_fss import FSSAssigner

STRIDES = (8, 16, 32)


def random_case(gen, b=2, m=6, imgsz=64, nc=3, max_wh=0.5, valid=0.8, strides=STRIDES, quantize=False, obj=False):
    """Random predictions and GTs; `quantize` rounds scores and boxes so that ties are frequent."""
    anc = anchors(imgsz, strides)
    n = anc.shape[0]
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    size = torch.tensor([w, h], dtype=torch.float32)
    xy = torch.rand(b, m, 2, generator=gen) * size
    wh = torch.rand(b, m, 2, generator=gen) * max(h, w) * max_wh + 0.5
    gt = torch.minimum(torch.cat([xy - wh / 2, xy + wh / 2], -1).clamp(min=0), size.repeat(2))
    mask = (torch.rand(b, m, 1, generator=gen) < valid).float()
    labels = torch.randint(0, nc, (b, m, 1), generator=gen).float()
    pxy = anc[None] + torch.randn(b, n, 2, generator=gen) * 3
    pwh = torch.rand(b, n, 2, generator=gen) * max(h, w) * max_wh + 1
    pd = torch.cat([pxy - pwh / 2, pxy + pwh / 2], -1)
    ps = torch.rand(b, n, nc, generator=gen)
    if quantize:
        ps = (ps * 2).round() / 2
        pd = (pd / 8).round() * 8
        gt = (gt / 8).round() * 8
    po = torch.rand(b, n, 1, generator=gen) if obj else None
    return ps, pd, anc, labels, gt, mask, po


def assert_matches_reference(case, grid=None, **kw):
    """Compare every output field (and k) with the loop reference, for step 1 through the dense mask and, when
    `grid` is given, through the O(P) listing too."""
    nc = case[0].shape[-1]
    assigner = FSSAssigner(num_classes=nc, **kw)
    ref = reference_fss(*case, num_classes=nc, grid=grid, **kw)
    dense = [None] if not kw.get("radius") else []  # the centre region needs the grid
    for g in dense + ([grid] if grid is not None else []):
        result, k = assigner.assign(*case, grid=g)
        for name, got, want in zip(result._fields, result, ref):
            assert got.dtype == want.dtype or name in {"scores", "weights"}, name
            if got.dtype in (torch.bool, torch.long):
                assert torch.equal(got, want), (name, g)
            else:
                torch.testing.assert_close(got.float(), want.float(), atol=2e-5, rtol=1e-4, msg=name)
        torch.testing.assert_close(k, ref[6] * case[5][..., 0].long())
    return result


@pytest.mark.parametrize(
    "params",
    [
        dict(),  # 2 images, 6 GTs, 64 px
        dict(b=1, m=1),
        dict(b=3, m=20, imgsz=96, max_wh=0.3),  # crowded
        dict(b=2, m=12, max_wh=0.05),  # tiny boxes: candidate region floored to stride_val
        dict(b=2, m=8, quantize=True),  # many exact ties in s, IoU and distance
        dict(b=2, m=6, valid=0.0),  # images without valid GT
        dict(b=2, m=6, obj=True, nc=1),  # objectness term and a single class
        dict(b=2, m=5, strides=(8,)),  # one level: stride_val = stride[0]
        dict(b=2, m=8, imgsz=(64, 96)),  # rectangular image (rect=True validation batches)
        dict(b=2, m=8, strides=(4, 8, 16, 32)),  # four levels (P2 models)
    ],
)
def test_matches_loop_reference(params):
    gen = torch.Generator().manual_seed(0)
    strides = params.get("strides", STRIDES)
    grid = grid_of(params.get("imgsz", 64), strides)
    for _ in range(15):
        assert_matches_reference(random_case(gen, **params), grid=grid, stride=list(strides))


@pytest.mark.parametrize(
    "kw",
    [
        dict(alpha=1.0, beta=4.0, u=1.0, q=3),
        dict(prior=False),
        dict(fixed_k=1),
        dict(q=1),
        dict(rescue=True),
        dict(radius=2.5),  # YOLOX's centre region: in box or within 2.5 strides of the centre
        dict(radius=1.0, rescue=True),
        dict(soft_target="tal"),
        dict(min_k=3),  # the floor of the dynamic k raised (fss_min_k)
        dict(min_k=4, rescue=True, q=3),
    ],
)
def test_matches_reference_other_hyperparameters(kw):
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        assert_matches_reference(random_case(gen, m=10), grid=grid_of(64), **kw)


def test_no_gt_at_all():
    """M = 0: everything background, in the normal path's dtypes."""
    gen = torch.Generator().manual_seed(0)
    ps, pd, anc, labels, gt, mask, _ = random_case(gen)
    r, _ = FSSAssigner(num_classes=3).assign(ps, pd, anc, labels[:, :0], gt[:, :0], mask[:, :0])
    assert not r.fg_mask.any() and r.fg_mask.dtype == torch.bool
    assert r.labels.dtype == torch.long and (r.labels == 3).all()
    assert r.gt_idx.dtype == torch.long and r.weights.abs().sum() == 0 and r.scores.abs().sum() == 0
    assert r.bboxes.shape == pd.shape


def test_candidates_are_exactly_tal_rule():
    """Every positive lies in Ultralytics' own candidate mask, and a GT with candidates gets >= 1 unless it lost
    all of them to other GTs."""
    gen = torch.Generator().manual_seed(3)
    case = random_case(gen, b=2, m=10, max_wh=0.2)
    ps, pd, anc, labels, gt, mask, _ = case
    tal = TaskAlignedAssigner(num_classes=3, stride=list(STRIDES))
    in_gts = tal.select_candidates_in_gts(anc, gt, mask).bool() & mask.bool()  # (b, M, N)
    r, _ = FSSAssigner(num_classes=3).assign(*case[:6])
    b_idx, a_idx = r.fg_mask.nonzero(as_tuple=True)
    assert in_gts[b_idx, r.gt_idx[b_idx, a_idx], a_idx].all()


def test_invariants():
    """1 <= k <= q; positives per GT <= min(k, |C|); weights rise with s; mean weight per GT <= 1 (Jensen);
    background has the background label, zero weight and zero target."""
    gen = torch.Generator().manual_seed(4)
    q = 10
    tal = TaskAlignedAssigner(num_classes=3, stride=list(STRIDES))
    checked = 0
    for _ in range(10):
        case = random_case(gen, b=2, m=15, imgsz=128, max_wh=0.4)
        assigner = FSSAssigner(num_classes=3, q=q)
        r, k = assigner.assign(*case)
        valid = case[5][..., 0].bool()
        assert (k[valid] >= 1).all() and (k[valid] <= q).all() and (k[~valid] == 0).all()
        n_candidates = tal.select_candidates_in_gts(case[2], case[4], case[5]).sum(-1)  # (b, M) |C_j|
        for i in range(2):
            counts = torch.bincount(r.gt_idx[i][r.fg_mask[i]], minlength=15)
            assert (counts <= torch.minimum(k[i], n_candidates[i])).all()
            checked += int((counts > 1).sum())
            for j in counts.nonzero().flatten().tolist():
                sel = r.fg_mask[i] & (r.gt_idx[i] == j)
                w = r.weights[i][sel]
                assert w.mean() <= 1 + 1e-5  # u * (alpha + beta) >= 1
                iou = r.scores[i][sel].sum(-1)
                p = case[0][i][sel, int(case[3][i, j, 0])]
                s = p.sqrt() * iou.pow(6)
                order = s.argsort()
                assert (w[order].diff() >= -1e-6).all()  # monotone in s
        assert (r.weights[~r.fg_mask] == 0).all() and (r.scores[~r.fg_mask] == 0).all()
        assert (r.labels[~r.fg_mask] == 3).all()
    assert checked > 20  # the monotonicity and Jensen checks ran on GTs with several positives


def test_hand_built_scene():
    """One 48x48 GT at (8..56, 8..56) on a 64-px image with stride-8 anchors only.

    Candidates are the 36 anchors with centres 12, 20, ..., 52 on each axis. Predictions are all perfect boxes
    (IoU 1) with one class score 0.9 at the anchor (28, 28) and 0.1 elsewhere: s = 0.9^0.5 there, 0.1^0.5 elsewhere.
    The best sample is (28, 28); the top-10 by g*IoU have IoU 1, so k = 10; the ten positives are (28, 28) and the
    nine next by g (its eight neighbours... then ties broken by the lower anchor index).
    """
    anc = anchors(64, (8,))
    n = anc.shape[0]
    gt = torch.tensor([[[8.0, 8.0, 56.0, 56.0]]])
    pd = gt.expand(1, n, 4).clone()
    ps = torch.full((1, n, 1), 0.1)
    best = int(((anc - torch.tensor([28.0, 28.0])).abs().sum(-1) == 0).nonzero())
    ps[0, best, 0] = 0.9
    r, k = FSSAssigner(num_classes=1, stride=[8]).assign(ps, pd, anc, torch.zeros(1, 1, 1), gt, torch.ones(1, 1, 1))
    assert int(k) == 10
    assert int(r.fg_mask.sum()) == 10 and r.fg_mask[0, best]
    pos = anc[r.fg_mask[0]]
    assert ((pos - torch.tensor([28.0, 28.0])).abs().max(-1).values <= 8).sum() == 9  # the 3x3 neighbourhood
    s_ratio = (0.9**0.5) / ((0.9**0.5 + 9 * 0.1**0.5) / 10)
    torch.testing.assert_close(r.weights[0, best], torch.tensor(s_ratio ** (1 / 13)))
    torch.testing.assert_close(r.scores[0, r.fg_mask[0], 0], torch.ones(10))


def test_all_zero_scores_give_unit_weights_and_nearest_centre():
    """All s = 0 (IoU 0): the potentially optimal sample is the candidate nearest the GT centre, k = 1, w = 1."""
    anc = anchors(64, (8,))
    n = anc.shape[0]
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])  # centre (24, 24): anchors (20|28, 20|28) are equidistant
    pd = torch.tensor([100.0, 100.0, 110.0, 110.0]).expand(1, n, 4)  # no overlap at all
    assigner = FSSAssigner(num_classes=1, stride=[8])
    r, _ = assigner.assign(torch.rand(1, n, 1), pd, anc, torch.zeros(1, 1, 1), gt, torch.ones(1, 1, 1))
    assert int(r.fg_mask.sum()) == 1
    a = int(r.fg_mask[0].nonzero())
    assert anc[a].tolist() == [20.0, 20.0]  # four equidistant: lowest anchor index
    assert float(r.weights[0, a]) == 1.0 and float(r.scores[0, a].sum()) == 0.0


def test_conflict_keeps_larger_s():
    """Two identical GTs of different classes: every shared anchor goes to the class with the higher score."""
    anc = anchors(64, (8,))
    n = anc.shape[0]
    box = torch.tensor([8.0, 8.0, 56.0, 56.0])
    gt = box.expand(1, 2, 4).clone()
    ps = torch.stack([torch.full((n,), 0.2), torch.full((n,), 0.7)], -1)[None]
    r, _ = FSSAssigner(num_classes=2, stride=[8]).assign(ps, box.expand(1, n, 4), anc, torch.tensor([[[0.0], [1.0]]]),
                                                         gt, torch.ones(1, 2, 1))
    assert r.fg_mask.any() and (r.gt_idx[r.fg_mask] == 1).all() and (r.labels[r.fg_mask] == 1).all()


def test_rescue_gives_every_gt_with_a_free_candidate_a_positive():
    """Crowded scenes: without rescue some GTs lose every positive to neighbours; rescue gives such GTs a positive
    back while keeping every positive of the plain assignment (its exact rules: the reference test above)."""
    gen = torch.Generator().manual_seed(7)
    lost = 0
    for _ in range(10):
        case = random_case(gen, b=2, m=30, imgsz=64, max_wh=0.4)
        plain, _ = FSSAssigner(num_classes=3).assign(*case[:6])
        rescued, _ = FSSAssigner(num_classes=3, rescue=True).assign(*case[:6])
        assert (rescued.fg_mask | ~plain.fg_mask).all()  # a superset of the plain positives
        assert torch.equal(rescued.gt_idx[plain.fg_mask], plain.gt_idx[plain.fg_mask])
        for i in range(2):
            with_pos = lambda r: set(r.gt_idx[i][r.fg_mask[i]].tolist())  # noqa: E731
            lost += len(with_pos(rescued) - with_pos(plain))
    assert lost > 0  # the scenes were crowded enough for the option to matter


def test_half_inputs_match_float32():
    """fp16 inputs give the float32 result on the same values (the assigner upcasts before Eq. 3)."""
    gen = torch.Generator().manual_seed(5)
    ps, pd, anc, labels, gt, mask, _ = random_case(gen, m=10)
    ps, pd, gt = ps.half(), pd.half(), gt.half()
    a = FSSAssigner(num_classes=3)
    r16, _ = a.assign(ps, pd, anc, labels, gt, mask)
    r32, _ = a.assign(ps.float(), pd.float(), anc, labels, gt.float(), mask)
    assert torch.equal(r16.fg_mask, r32.fg_mask) and torch.equal(r16.gt_idx, r32.gt_idx)
    torch.testing.assert_close(r16.weights, r32.weights)
    torch.testing.assert_close(r16.scores, r32.scores)
    assert r16.weights.dtype == torch.float32


def test_inputs_untouched():
    gen = torch.Generator().manual_seed(6)
    case = random_case(gen)
    before = [t.clone() for t in case[:6]]
    FSSAssigner(num_classes=3).assign(*case[:6])
    assert all(torch.equal(a, b) for a, b in zip(before, case[:6]))


@pytest.mark.parametrize(
    "imgsz, strides, b, m, max_wh",
    [
        ((96, 160), STRIDES, 3, 20, 0.3),  # rectangular
        ((160, 64), (4, 8, 16, 32), 2, 12, 0.3),  # P2: four levels
        (256, (8, 16, 32, 64), 2, 30, 0.1),  # P6: four levels
        (1024, STRIDES, 2, 2000, 0.04),  # DOTA-like: 2000 GTs of 4-44 px per image
    ],
)
def test_candidate_listing_equals_dense_rule(imgsz, strides, b, m, max_wh):
    """Step 1 in O(P) (`grid` given) lists exactly the pairs of Ultralytics' dense mask, in the same order, also for
    GTs partly outside the image, tiny GTs (sides floored to stride_val) and padding rows."""
    gen = torch.Generator().manual_seed(8)
    tal = TaskAlignedAssigner(num_classes=3, stride=list(strides))
    fss = FSSAssigner(num_classes=3, stride=list(strides))
    anc = anchors(imgsz, strides)
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    for quantize in (False, True):
        xy = torch.rand(b, m, 2, generator=gen) * torch.tensor([w, h]) * 1.2 - torch.tensor([w, h]) * 0.1
        wh = torch.rand(b, m, 2, generator=gen) * max(h, w) * max_wh
        if quantize:  # box edges exactly on anchor centres and cell borders: the strict inequality decides
            xy, wh = (xy / 4).round() * 4, (wh / 4).round() * 4
        gt = torch.cat([xy - wh / 2, xy + wh / 2], -1)
        valid = torch.rand(b, m, generator=gen) < 0.8
        dense = (tal.select_candidates_in_gts(anc, gt, valid[..., None].float()).bool() & valid[..., None])
        listed = fss.candidates(anc, gt, valid, grid_of(imgsz, strides))
        assert all(torch.equal(x, y) for x, y in zip(dense.nonzero(as_tuple=True), listed))
        assert listed[0].numel() > m  # the scene has candidates to compare


def test_centre_region_widens_candidates_and_needs_the_grid():
    """radius > 0 adds anchors near the centre of tiny GTs (more candidates, never fewer), and without the grid it
    cannot know each anchor's stride: a clear error rather than a silent in-box rule."""
    gen = torch.Generator().manual_seed(5)
    case = random_case(gen, b=2, m=12, max_wh=0.1)
    valid = case[5][..., 0].bool()
    in_box = FSSAssigner(num_classes=3).candidates(case[2], case[4], valid, grid_of(64))
    wide = FSSAssigner(num_classes=3, radius=2.5).candidates(case[2], case[4], valid, grid_of(64))
    as_set = lambda pairs: set(zip(*(t.tolist() for t in pairs)))  # noqa: E731
    assert as_set(in_box) < as_set(wide)
    with pytest.raises(ValueError, match="needs `grid`"):
        FSSAssigner(num_classes=3, radius=2.5).assign(*case[:6])


def test_tal_soft_target_is_scaled_like_tal():
    """soft_target='tal': each GT's best positive (largest s) gets its GTs' max IoU, the others less, never more."""
    gen = torch.Generator().manual_seed(6)
    case = random_case(gen, b=2, m=8)
    iou = FSSAssigner(num_classes=3).assign(*case, grid=grid_of(64))[0]
    tal = FSSAssigner(num_classes=3, soft_target="tal").assign(*case, grid=grid_of(64))[0]
    assert torch.equal(iou.fg_mask, tal.fg_mask) and torch.equal(iou.weights, tal.weights)
    t_iou, t_tal, g = iou.scores.sum(-1)[iou.fg_mask], tal.scores.sum(-1)[tal.fg_mask], iou.gt_idx[iou.fg_mask]
    b_idx = iou.fg_mask.nonzero()[:, 0]
    for key in set(zip(b_idx.tolist(), g.tolist())):
        sel = (b_idx == key[0]) & (g == key[1])
        torch.testing.assert_close(t_tal[sel].max(), t_iou[sel].max())


def test_grid_that_does_not_match_the_anchors_is_refused():
    anc = anchors(64)
    with pytest.raises(ValueError, match="does not describe"):
        FSSAssigner(num_classes=3).candidates(anc, torch.zeros(1, 1, 4), torch.ones(1, 1, dtype=torch.bool),
                                              grid_of(96))  # fmt: skip


def test_non_finite_predictions_are_the_worst_candidates():
    """NaN/inf scores or boxes: finite targets and weights; those anchors lose to finite ones; no positive gets a
    NaN; the same scene without the bad anchors' values assigns the rest the same way."""
    gen = torch.Generator().manual_seed(9)
    ps, pd, anc, labels, gt, mask, _ = random_case(gen, m=8)
    bad = torch.rand(ps.shape[:2], generator=gen) < 0.2  # (b, N)
    ps, pd = ps.clone(), pd.clone()
    ps[bad] = float("nan")
    pd[bad.roll(1, 1)] = float("inf")
    r, _ = FSSAssigner(num_classes=3).assign(ps, pd, anc, labels, gt, mask)
    assert all(torch.isfinite(t.float()).all() for t in r)
    assert r.fg_mask.any() and (r.weights[r.fg_mask] > 0).all()
    bad_any = bad | bad.roll(1, 1)
    assert (r.scores[bad_any] == 0).all()  # a bad anchor, if kept as a last resort, has IoU target 0


def test_degenerate_ground_truths():
    """One image, GT rows: 0 normal; 1 padding between real rows; 2 zero width; 3 wholly outside the image; 4 partly
    outside; 5 an exact duplicate of 0; 6 smaller than one stride; 7 NaN coordinates (valid flag set). No crash,
    finite outputs, no positive on padding or NaN rows, duplicates resolved to the lower GT index, the degenerate
    but real GTs 2, 4 and 6 still get positives."""
    anc = anchors(64)
    n = anc.shape[0]
    gt = torch.tensor([[[8.0, 8.0, 30.0, 30.0], [0.0, 0.0, 0.0, 0.0], [40.0, 8.0, 40.0, 30.0],
                        [80.0, 80.0, 100.0, 100.0], [-10.0, 40.0, 12.0, 60.0], [8.0, 8.0, 30.0, 30.0],
                        [50.0, 50.0, 52.0, 51.0], [float("nan"), 1.0, 5.0, 5.0]]])  # fmt: skip
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])[..., None]
    labels = torch.zeros(1, 8, 1)
    pd = torch.cat([anc - 6, anc + 6], -1)[None]  # (1, N, 4) boxes of side 12 around each anchor
    ps = torch.full((1, n, 1), 0.5)
    for grid in (None, grid_of(64)):
        r, k = FSSAssigner(num_classes=1).assign(ps, pd, anc, labels, gt, mask, grid=grid)
        assert all(torch.isfinite(t.float()).all() for t in r)
        owners = set(r.gt_idx[r.fg_mask].tolist())
        assert not owners & {1, 5, 7} and {0, 2, 4, 6} <= owners, owners
        assert k[0, 1] == 0 and k[0, 7] == 0  # padding and NaN rows ask for nothing


def test_bf16_inputs_match_float32():
    """bf16 inputs assign as their float32 values do."""
    gen = torch.Generator().manual_seed(10)
    ps, pd, anc, labels, gt, mask, _ = random_case(gen, m=10)
    ps, pd, gt = ps.bfloat16(), pd.bfloat16(), gt.bfloat16()
    a = FSSAssigner(num_classes=3)
    for grid in (None, grid_of(64)):
        r16, _ = a.assign(ps, pd, anc, labels, gt, mask, grid=grid)
        r32, _ = a.assign(ps.float(), pd.float(), anc, labels, gt.float(), mask, grid=grid)
        assert torch.equal(r16.fg_mask, r32.fg_mask) and torch.equal(r16.gt_idx, r32.gt_idx) and r16.fg_mask.any()
        torch.testing.assert_close(r16.weights, r32.weights)
        assert r16.bboxes.dtype == torch.bfloat16  # targets keep the GT dtype


def test_task_overlap_replaces_iou_in_equation_3_only():
    """`overlap` feeds Eq. (3) (s = p^alpha * overlap^beta); box IoU still drives k. The identity overlap changes
    nothing."""
    gen = torch.Generator().manual_seed(3)
    case = random_case(gen, b=2, m=6)
    assigner = FSSAssigner(num_classes=3, stride=list(STRIDES))
    grid = grid_of(64, STRIDES)
    plain, k_plain = assigner.assign(*case, grid=grid)
    same, k_same = assigner.assign(*case, grid=grid, overlap=lambda bi, gi, ai: trace_ious(case, bi, gi, ai))
    for a, b in zip(plain, same):
        assert torch.equal(a, b)
    assert torch.equal(k_same, k_plain)
    fake = {}
    halved = lambda bi, gi, ai: trace_ious(case, bi, gi, ai) * 0.5 + 0.25 * (ai % 2)  # noqa: E731
    _, k_fake = assigner.assign(*case, grid=grid, trace=fake, overlap=halved)
    ov = halved(fake["bi"], fake["gi"], fake["ai"])
    torch.testing.assert_close(fake["s"], fake["p"].pow(0.5) * ov.pow(6.0))
    assert torch.equal(k_fake, k_plain)  # Eqs. (4), (5), (7) use the box IoU


def trace_ious(case, bi, gi, ai):
    """Box IoU of the pairs (bi, gi, ai), computed independently of the assigner."""
    from ultralytics.utils.metrics import bbox_iou

    return bbox_iou(case[4][bi, gi].float(), case[1][bi, ai].float(), xywh=False).squeeze(-1).clamp(0)
