"""The paper's baseline assigners against their loop references on random scenes, and their invariants."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import grid_of
from reference_baselines import (
    Rotated,
    reference_atss,
    reference_dw,
    reference_maxiou,
    reference_paa,
    reference_simota,
)
from test_assigner import random_case
from test_rotated import rotated_case

from ultralytics_fss.assign.baselines import ATSSAssigner, MaxIoUAssigner, SimOTAAssigner
from ultralytics_fss.assign.dw import DWAssigner
from ultralytics_fss.assign.paa import PAAAssigner
from ultralytics_fss.assign.rotated import RotatedATSSAssigner, RotatedMaxIoUAssigner, RotatedSimOTAAssigner

CASES = [
    dict(b=2, m=6),
    pytest.param(dict(b=2, m=12, max_wh=0.2), marks=pytest.mark.slow),  # crowded small boxes (slow loops)
    dict(b=1, m=4, imgsz=(64, 96)),  # rectangular
    dict(b=2, m=5, valid=0.0),  # no valid GT
    # large boxes: Max-IoU positives by threshold, and ignored anchors (slow loops)
    pytest.param(dict(b=2, m=5, imgsz=128, max_wh=0.8), marks=pytest.mark.slow),
]
ASSIGNERS = [(MaxIoUAssigner, reference_maxiou), (ATSSAssigner, reference_atss), (SimOTAAssigner, reference_simota),
             (PAAAssigner, reference_paa), (DWAssigner, reference_dw)]  # fmt: skip
BASELINE_CLASSES = [cls for cls, _ in ASSIGNERS]
DW_W_MAX = math.exp(2)  # DW's positive weights lie in [0, e^2] (`DWAssigner`, step 3)


@pytest.mark.parametrize("cls, reference", ASSIGNERS, ids=["maxiou", "atss", "simota", "paa", "dw"])
@pytest.mark.parametrize("params", CASES)
def test_matches_loop_reference(cls, reference, params):
    gen = torch.Generator().manual_seed(2)
    imgsz = params.get("imgsz", 64)
    grid = grid_of(imgsz)
    for _ in range(6):
        case = random_case(gen, **params)[:6]
        result, _ = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid)
        want = reference(*case, num_classes=3, stride=[8, 16, 32], grid=grid)
        assert_same_result(result, want)
        if cls is DWAssigner:  # and the negative side: P_neg of every (anchor, class)
            torch.testing.assert_close(result.neg_weights, want[6], atol=2e-5, rtol=1e-4)


def assert_same_result(result, want):
    """Every field of an assigner's result equals the reference's: exactly for indices and masks, to float32
    rounding for values."""
    for name, got, ref in zip(result._fields, result, want):
        if got.dtype in (torch.bool, torch.long):
            assert torch.equal(got, ref), name
        else:
            torch.testing.assert_close(got.float(), ref.float(), atol=2e-5, rtol=1e-4, msg=name)


ROTATED = [(RotatedMaxIoUAssigner, reference_maxiou), (RotatedATSSAssigner, reference_atss),
           (RotatedSimOTAAssigner, reference_simota)]  # fmt: skip
ROTATED_CASES = [
    dict(b=2, m=6),
    dict(b=1, m=10, max_wh=0.2),  # small crowded boxes
    pytest.param(dict(b=2, m=5, imgsz=128, max_wh=0.8), marks=pytest.mark.slow),  # large: Max-IoU's thresholds
    dict(b=2, m=5, angles="squares"),
    dict(b=2, m=5, valid=0.0),  # no valid GT
]


@pytest.mark.parametrize("cls, reference", ROTATED, ids=["maxiou", "atss", "simota"])
@pytest.mark.parametrize("params", ROTATED_CASES)
def test_rotated_baselines_match_loop_reference(cls, reference, params):
    """The oriented-box baselines (the paper's Table 6 rows) against the same loop references with the rotated
    geometry: probiou, the virtual anchor at angle 0, centres, strictly inside in the box's own axes, every anchor
    of the image weighed (the vectorised code lists candidates from the rotated box's hull)."""
    gen = torch.Generator().manual_seed(3)
    imgsz = params.get("imgsz", 64)
    for _ in range(4):
        case = rotated_case(gen, **params)[:6]
        result, _ = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(imgsz))
        want = reference(*case, num_classes=3, stride=[8, 16, 32], grid=grid_of(imgsz), geometry=Rotated)
        assert result.fg_mask.any() or not case[5].any()
        assert_same_result(result, want)


@pytest.mark.parametrize("cls", [c for c, _ in ROTATED], ids=["maxiou", "atss", "simota"])
def test_rotated_baselines_see_a_box_not_its_angle_convention(cls):
    """A box written (w, h, r) or (h, w, r + pi/2) is the same box: the oriented baselines assign it alike. And on
    boxes at angle 0 the oriented rules' regions are the axis-aligned ones: the same anchors inside."""
    gen = torch.Generator().manual_seed(5)
    ps, pd, anc, labels, gt, mask = rotated_case(gen, b=2, m=8, imgsz=96)
    turned = torch.cat([gt[..., :2], gt[..., 3:4], gt[..., 2:3], gt[..., 4:] + math.pi / 2], -1)
    a, _ = cls(num_classes=3, stride=[8, 16, 32]).assign(ps, pd, anc, labels, gt, mask, grid=grid_of(96))
    b, _ = cls(num_classes=3, stride=[8, 16, 32]).assign(ps, pd, anc, labels, turned, mask, grid=grid_of(96))
    assert a.fg_mask.sum() > 0
    for name in ("labels", "fg_mask", "gt_idx"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-4)
    xyxy = torch.tensor([[10.0, 12.0, 40.0, 30.0], [50.0, 8.0, 58.0, 70.0]])
    xywhr = torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2], torch.zeros(2, 1)], -1)
    points = anc[:, None]  # (N, 1, 2) against 2 boxes
    assert torch.equal(cls.inside(points, xywhr[None], 0.01), ATSSAssigner.inside(points, xyxy[None], 0.01))


@pytest.mark.parametrize("cls", BASELINE_CLASSES)
def test_invariants_and_grid_required(cls):
    gen = torch.Generator().manual_seed(4)
    case = random_case(gen, b=3, m=15, imgsz=96, max_wh=0.3)[:6]
    r, k = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(96))
    bi, ai = r.fg_mask.nonzero(as_tuple=True)
    gi = r.gt_idx[bi, ai]
    assert bi.numel() > 0 and case[5][bi, gi, 0].bool().all()  # positives belong to real GTs
    w_max = DW_W_MAX if cls is DWAssigner else 1.0  # DW's positive weights, 1 for the others
    w = r.weights[r.fg_mask]
    assert torch.isfinite(w).all() and (w >= 0).all() and (w <= w_max).all() and (r.weights[~r.fg_mask] == 0).all()
    assert cls is DWAssigner or (w == 1).all()
    assert ((r.scores.sum(-1) >= 0) & (r.scores.sum(-1) <= 1)).all()
    assert (r.neg_weights is not None) == (cls is DWAssigner)
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


# ------------------------------------------------------------------ SimOTA: the pooled rule of YOLOX and MMDetection
def simota_scene(gt_boxes: list[list[float]], predictions: dict[int, list[float]], imgsz: int = 64):
    """One image: GTs of class 0, every anchor predicting a 1-px box in the corner (IoU 0 with every GT) except the
    anchors of `predictions` ({anchor index: xyxy box}); every class score 0.5."""
    from conftest import anchors

    anc = anchors(imgsz)
    n, m = anc.shape[0], len(gt_boxes)
    pd = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).repeat(1, n, 1)
    for a, box in predictions.items():
        pd[0, a] = torch.tensor(box)
    ps = torch.full((1, n, 3), 0.5)
    gt = torch.tensor([gt_boxes], dtype=torch.float32)
    return ps, pd, anc, torch.zeros(1, m, 1), gt, torch.ones(1, m, 1)


def level0(x: float, y: float, imgsz: int = 64) -> int:
    """Index of the stride-8 anchor centred at (x, y) pixels."""
    return int(y // 8) * (imgsz // 8) + int(x // 8)


def positives_of(result) -> dict[int, list[int]]:
    """{GT index: sorted anchor indices of its positives} of the first image."""
    out = {}
    for a in result.fg_mask[0].nonzero().squeeze(1).tolist():
        out.setdefault(int(result.gt_idx[0, a]), []).append(a)
    return out


def test_simota_pool_is_shared_by_all_gts():
    """A GT may take anchors outside its own box and centre region (at the 1e5 penalty) when they are in the pool
    through another GT, and its k counts the pool's IoUs: here the small GT 1 has no anchor in its own box-and-centre
    region, and the three anchors predicting its box exactly lie in GT 0's box, more than 2.5 strides from GT 1's
    centre on every level they belong to. A per-GT candidate region (the rule this test guards against) never lists
    them for GT 1."""
    big, small = [0.0, 0.0, 32.0, 64.0], [45.0, 29.0, 51.0, 35.0]
    good0 = [level0(4, 20), level0(20, 44)]  # GT 0's exact predictions, in its box and centre region: k_0 = 2
    good1 = [level0(12, 28), level0(12, 36), level0(20, 28)]  # x <= 20: outside GT 1's centre square (28, 68)
    preds = {**{a: big for a in good0}, **{a: small for a in good1}}
    case = simota_scene([big, small], preds)
    result, k = SimOTAAssigner(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(64))
    assert k.tolist() == [[2, 3]]
    assert positives_of(result) == {0: sorted(good0), 1: sorted(good1)}
    want = reference_simota(*case, num_classes=3, stride=[8, 16, 32], grid=grid_of(64))
    assert torch.equal(result.fg_mask, want[3]) and torch.equal(result.gt_idx, want[4])


def test_simota_contested_anchor_goes_to_the_cheapest_gt_of_all():
    """Anchor X is the cheapest of the tiny GTs 0 and 1 (neither has an anchor inside it), so both take it; YOLOX
    gives a contested anchor to the lowest cost in its whole column, which is GT 2's (X lies in GT 2's box and centre
    region, no penalty), although GT 2 (k = 1) took only Y. A rule choosing among the GTs that took X would give it to
    GT 0."""
    tiny0, tiny1, large = [29.0, 29.0, 31.0, 31.0], [33.0, 33.0, 35.0, 35.0], [8.0, 8.0, 56.0, 56.0]
    x, y = level0(28, 28), level0(36, 36)
    case = simota_scene([tiny0, tiny1, large], {x: [29.0, 29.0, 35.0, 35.0], y: large})
    result, k = SimOTAAssigner(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(64))
    assert k.tolist() == [[1, 1, 1]]
    assert positives_of(result) == {2: sorted([x, y])}
    want = reference_simota(*case, num_classes=3, stride=[8, 16, 32], grid=grid_of(64))
    assert torch.equal(result.fg_mask, want[3]) and torch.equal(result.gt_idx, want[4])


@pytest.mark.parametrize("cls", [MaxIoUAssigner, ATSSAssigner, SimOTAAssigner, PAAAssigner])
def test_baselines_take_the_soft_target_of_the_loss_keys(cls):
    """With `soft_target="tal"` a baseline's positives keep the same anchors and GTs, and their targets are TAL's
    scale on FSS's score: s / max s * max IoU over the GT's positives, s = p^alpha * IoU^beta (Eq. 3)."""
    gen = torch.Generator().manual_seed(6)
    case = random_case(gen, b=2, m=8, imgsz=96, max_wh=0.4)[:6]
    kw = dict(num_classes=3, stride=[8, 16, 32], alpha=0.5, beta=6.0)
    iou_result, _ = cls(**kw).assign(*case, grid=grid_of(96))
    tal_result, _ = cls(**kw, soft_target="tal").assign(*case, grid=grid_of(96))
    assert torch.equal(iou_result.fg_mask, tal_result.fg_mask) and torch.equal(iou_result.gt_idx, tal_result.gt_idx)
    ps, _, _, labels = case[:4]
    for i, a in iou_result.fg_mask.nonzero().tolist():  # loop reference of the TAL-scaled target
        j = int(iou_result.gt_idx[i, a])
        mates = [c for c in iou_result.fg_mask[i].nonzero().squeeze(1).tolist() if iou_result.gt_idx[i, c] == j]
        iou = {c: float(iou_result.scores[i, c].sum()) for c in mates}
        s = {c: float(ps[i, c, int(labels[i, j, 0])]) ** 0.5 * iou[c] ** 6.0 for c in mates}
        want = s[a] / max(s.values()) * max(iou.values()) if max(s.values()) > 0 else max(iou.values())
        assert float(tal_result.scores[i, a].sum()) == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_baselines_are_pair_assigners_beside_fss_with_their_own_arguments():
    """Siblings of FSSAssigner under PairAssigner (none an nn.Module or a TaskAlignedAssigner), each taking its own
    rule's settings and none of FSS's; a smaller ATSS topk or SimOTA radius gives a subset of the candidates."""
    from ultralytics.utils.tal import TaskAlignedAssigner

    from ultralytics_fss.assign import FSSAssigner, PairAssigner, RotatedFSSAssigner

    for cls in (*BASELINE_CLASSES, FSSAssigner, RotatedFSSAssigner):
        assert issubclass(cls, PairAssigner) and not issubclass(cls, (torch.nn.Module, TaskAlignedAssigner))
    for cls in BASELINE_CLASSES:
        assert not issubclass(cls, FSSAssigner)
        for fss_only in ("u", "q", "prior", "fixed_k", "rescue"):
            with pytest.raises(TypeError):
                cls(num_classes=3, **{fss_only: 1})
    with pytest.raises(ValueError, match="topk"):
        ATSSAssigner(topk=10)  # the candidate window holds the 9 nearest anchors only
    assert (MaxIoUAssigner(pos_iou=0.6, neg_iou=0.3).pos_iou, ATSSAssigner(topk=5).topk,
            SimOTAAssigner(radius=1.5).radius) == (0.6, 5, 1.5)  # fmt: skip

    gen = torch.Generator().manual_seed(5)
    _, _, anc, _, gt, mask = random_case(gen, b=2, m=6, imgsz=96, max_wh=0.2)[:6]
    valid = mask[..., 0].bool()
    pairs = lambda a: set(zip(*(t.tolist() for t in a.candidates(anc, gt, valid, grid_of(96)))))  # noqa: E731
    assert pairs(ATSSAssigner(num_classes=3, topk=4)) < pairs(ATSSAssigner(num_classes=3))
    assert pairs(SimOTAAssigner(num_classes=3, radius=1.0)) < pairs(SimOTAAssigner(num_classes=3))


# ------------------------------------------------------------------------------------------------------ PAA and DW
def test_paa_positives_are_a_prefix_of_each_gts_candidates_in_score_order():
    """Per GT, the GMM candidates (9 cheapest first-pass anchors per level) sorted by cost, ties to the lower anchor:
    the positives are the first n of them (Fig. 3(c) of the paper), at least one when the GT has a candidate."""
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        case = random_case(gen, b=2, m=10, imgsz=128, max_wh=0.5)[:6]
        trace = {}
        r, _ = PAAAssigner(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(128), trace=trace)
        pos = set(trace["pos"].tolist())
        assert len(pos) == int(r.fg_mask.sum())  # one GT per anchor: no positive lost to a conflict
        for i, j in {(int(i), int(j)) for i, j in zip(trace["bi"], trace["gi"])}:
            mine = ((trace["bi"] == i) & (trace["gi"] == j) & trace["gmm"]).nonzero().squeeze(1).tolist()
            ranked = sorted(mine, key=lambda q: (float(trace["cost"][q]), int(trace["ai"][q])))
            flags = [q in pos for q in ranked]
            n = sum(flags)
            assert flags == [True] * n + [False] * (len(flags) - n) and (n >= 1 or not ranked)
            assert all(math.isfinite(float(trace["cost"][q])) for q in ranked)
        assert pos <= set(trace["gmm"].nonzero().squeeze(1).tolist())


def test_paa_gmm_separates_two_clusters_and_matches_its_reference():
    """`gmm_em_1d` on rows of costs: two clear clusters split at the gap (component 0 the cheap one), the mixture's
    log density and components as the numpy step-by-step EM computes them, rows of any length in one call."""
    from reference_baselines import reference_gmm

    from ultralytics_fss.assign.paa import gmm_em_1d

    gen = torch.Generator().manual_seed(8)
    rows = [[0.2, 0.25, 0.22, 1.9, 2.0, 2.1, 2.3], [0.5, 0.5, 0.5], [1.0, 3.0]]
    rows += [(torch.rand(int(k), generator=gen) * 3).tolist() for k in torch.randint(2, 28, (20,), generator=gen)]
    rows += [(torch.randn(20, generator=gen).abs() + 4 * (torch.arange(20) > 12)).tolist()]
    width = max(map(len, rows))
    values = torch.zeros(len(rows), width)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for g, row in enumerate(rows):
        values[g, : len(row)], valid[g, : len(row)] = torch.tensor(row), True
    component, density = gmm_em_1d(values, valid)
    assert component[0, :7].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert component[1, :3].tolist() == [0, 0, 0]  # equal values: one component, ties to 0
    for g, row in enumerate(rows):
        want_c, want_d = reference_gmm(torch.tensor(row).double().tolist())
        assert component[g, : len(row)].tolist() == want_c, g
        torch.testing.assert_close(density[g, : len(row)], torch.tensor(want_d, dtype=torch.float64), rtol=1e-9,
                                   atol=1e-9)  # fmt: skip


def test_dw_weights_are_finite_and_in_their_ranges():
    """w_pos in [0, e^2] on DW's positives (every anchor strictly inside some GT), P_neg in [0, 1], 1 off the
    candidates' classes, 0 at each GT's best-IoU candidate (when its IoU reaches 0.5), targets 1; the trace's per-pair
    weights are the result's."""
    gen = torch.Generator().manual_seed(10)
    case = random_case(gen, b=2, m=12, imgsz=96, max_wh=0.4)[:6]
    trace = {}
    r, k = DWAssigner(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(96), trace=trace)
    assert k is None
    w = r.weights[r.fg_mask]
    assert torch.isfinite(w).all() and (w >= 0).all() and (w <= DW_W_MAX).all() and (w > 0).any()
    neg = r.neg_weights
    assert neg.shape == r.scores.shape and torch.isfinite(neg).all() and ((neg >= 0) & (neg <= 1)).all()
    touched = torch.zeros_like(neg, dtype=torch.bool)
    touched[trace["bi"], trace["ai"], case[3][trace["bi"], trace["gi"], 0].long()] = True
    assert (neg[~touched] == 1).all() and (neg[touched] < 1).any()
    inside = torch.zeros_like(r.fg_mask).index_put_((trace["bi"], trace["ai"]), torch.tensor(True))
    assert torch.equal(r.fg_mask, inside)  # every candidate anchor is a positive (of one GT)
    assert (r.scores.sum(-1)[r.fg_mask] == 1).all()
    pos = trace["pos"]
    torch.testing.assert_close(r.weights[trace["bi"][pos], trace["ai"][pos]], trace["w_pos"][pos])
    for g in set((trace["bi"] * 100 + trace["gi"]).tolist()):  # each GT: its best-IoU candidate is no negative
        mine = (trace["bi"] * 100 + trace["gi"]) == g
        best = trace["ious"][mine].argmax()
        if trace["ious"][mine][best] >= 0.5:
            assert float(trace["p_neg"][mine][best]) == 0.0


@pytest.mark.parametrize("cls", BASELINE_CLASSES)
def test_empty_scenes(cls):
    """No GT row at all (M = 0) and only padding rows: no positive, defined dtypes, DW's P_neg all 1."""
    gen = torch.Generator().manual_seed(11)
    ps, pd, anc, labels, gt, mask = random_case(gen, b=2, m=3)[:6]
    for m in (0, 3):
        case = (ps, pd, anc, labels[:, :m], gt[:, :m], torch.zeros(2, m, 1))
        r, k = cls(num_classes=3, stride=[8, 16, 32]).assign(*case, grid=grid_of(64))
        assert not r.fg_mask.any() and (r.labels == 3).all() and r.labels.dtype == r.gt_idx.dtype == torch.long
        assert r.scores.shape == (2, ps.shape[1], 3) and (r.weights == 0).all()
        assert cls is not DWAssigner or (r.neg_weights == 1).all()
