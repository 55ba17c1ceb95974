"""FSSDetectionLoss: Eq. (9) checked by hand, empty batches, every Ultralytics detection family, unsupported models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import (
    ClassificationModel,
    DepthModel,
    DetectionModel,
    RTDETRDetectionModel,
    SemanticSegmentationModel,
    WorldModel,
    YOLOEModel,
)
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import make_anchors

from conftest import FAMILIES, by_family
from ultralytics_fss import FSS_DEFAULTS, FSSDetectionLoss, build_fss_criterion
from ultralytics_fss.train import TALDetectionLoss
from ultralytics_fss.train.seam import main_branch
from ultralytics_fss.train.stats import AssignmentStats


def make_model(cfg="yolo11n.yaml", nc=3, **fss) -> DetectionModel:
    """A stock Ultralytics model whose args carry the FSS keys, as FSSTrainer sets them."""
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    model.args = get_cfg({**DEFAULT_CFG_DICT, **FSS_DEFAULTS, **fss})
    return model.train()


def make_batch(n_boxes=(5, 0, 3), imgsz=64, nc=3) -> dict:
    """A batch of len(n_boxes) images with that many normalised xywh boxes each (0 = an image without GT)."""
    gen = torch.Generator().manual_seed(1)
    idx = torch.cat([torch.full((n,), float(i)) for i, n in enumerate(n_boxes)])
    xy = torch.rand(len(idx), 2, generator=gen) * 0.6 + 0.2
    wh = torch.rand(len(idx), 2, generator=gen) * 0.3 + 0.1
    return {"img": torch.rand(len(n_boxes), 3, imgsz, imgsz, generator=gen), "batch_idx": idx,
            "cls": torch.randint(0, nc, (len(idx), 1), generator=gen).float(), "bboxes": torch.cat([xy, wh], 1)}


@pytest.mark.parametrize("cfg", by_family(FAMILIES))
def test_every_detection_family_trains_one_step(cfg):
    model = make_model(cfg)
    criterion = build_fss_criterion(model)
    batch = make_batch()
    loss, items = criterion(model(batch["img"]), batch)
    assert torch.isfinite(loss).all() and loss.sum() > 0
    loss.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert set(items) >= {"box_loss", "cls_loss"} and all(torch.isfinite(v) for v in items.values())
    main = main_branch(criterion)
    assert isinstance(main, FSSDetectionLoss) and main.use_fss


@pytest.mark.parametrize(
    "norm, box, target", [("npos", "w", "iou"), ("target", "w", "iou"), ("target", "w_target", "iou"),
                          ("target", "w_target", "tal"), ("npos", "w_target", "iou")]
)  # fmt: skip
def test_loss_is_equation_9(norm, box, target):
    """Recompute the cls, box and DFL terms by hand from the assigner's result, for every normaliser, box weighting and
    soft target."""
    model = make_model(fss_norm=norm, fss_box=box, fss_target=target)
    crit = build_fss_criterion(model)
    batch = make_batch()
    preds = crit.parse_output(model(batch["img"]))
    (fg, gt_idx, target_bboxes, anchors, strides), loss, _ = crit.get_assigned_targets_and_loss(preds, batch)

    # The same assignment, recomputed outside the loss.
    logits = preds["scores"].permute(0, 2, 1)
    dist = preds["boxes"].permute(0, 2, 1)
    anchor_points, stride_tensor = make_anchors(preds["feats"], crit.stride, 0.5)
    pred_bboxes = crit.bbox_decode(anchor_points, dist)
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
    targets = crit.preprocess(targets, 3, scale_tensor=torch.tensor([64.0] * 4))
    labels, boxes = targets.split((1, 4), 2)
    r, _ = crit.assigner.assign(logits.detach().sigmoid(), pred_bboxes.detach() * stride_tensor,
                                anchor_points * stride_tensor, labels, boxes, boxes.sum(2, keepdim=True).gt(0))
    assert torch.equal(r.fg_mask, fg) and fg.any()
    w, t = r.weights[fg], r.scores[fg].sum(-1)
    if target == "iou":  # Eq. (9): the soft target is the positive's IoU with its GT
        ious = bbox_iou((pred_bboxes.detach() * stride_tensor)[fg], r.bboxes[fg], xywh=False).squeeze(-1)
        torch.testing.assert_close(t, ious.clamp(0))
    else:
        assert (t <= 1).all() and (t > 0).any()
    norm_value = (w * t).sum() if norm == "target" else fg.sum().float()
    norm_value = norm_value.clamp(min=1)

    bce = F.binary_cross_entropy_with_logits(logits, r.scores, reduction="none").sum(-1)  # (b, N)
    cls = (bce[fg] * w).sum() + bce[~fg].sum()
    torch.testing.assert_close(loss[1], cls / norm_value * model.args.cls)
    ciou = bbox_iou(pred_bboxes[fg], (r.bboxes / stride_tensor)[fg], xywh=False, CIoU=True).squeeze(-1)
    box_w = w * t if box == "w_target" else w
    torch.testing.assert_close(loss[0], ((1 - ciou) * box_w).sum() / norm_value * model.args.box)
    # DFL (Li et al., GFL): each side's distance to the GT box, between two bins, as cross-entropies weighted by its
    # distance to each; the mean over the four sides, weighted like the box term
    reg_max = crit.reg_max
    side = torch.cat([anchor_points - (r.bboxes / stride_tensor)[..., :2],
                      (r.bboxes / stride_tensor)[..., 2:] - anchor_points], -1)[fg].clamp(0, reg_max - 1 - 0.01)
    left = side.floor().long()
    share_left = left + 1 - side  # (P, 4) weight of the lower bin
    bins = dist[fg].reshape(-1, reg_max)  # (P * 4, reg_max) logits

    def cross_entropy(target):
        return F.cross_entropy(bins, target.reshape(-1), reduction="none").view(-1, 4)

    dfl = (cross_entropy(left) * share_left + cross_entropy(left + 1) * (1 - share_left)).mean(-1)  # (P,)
    torch.testing.assert_close(loss[2], (dfl * box_w).sum() / norm_value * model.args.dfl)


def test_weights_off_is_plain_selection():
    """fss_weights=False gives every positive weight 1: the box loss is then a mean of (1 - CIoU) for npos."""
    model = make_model(fss_weights=False, fss_norm="npos", fss_box="w")
    crit = build_fss_criterion(model)
    batch = make_batch()
    preds = crit.parse_output(model(batch["img"]))
    (fg, _, target_bboxes, anchors, strides), loss, _ = crit.get_assigned_targets_and_loss(preds, batch)
    assert fg.sum() > 1  # a mean over several positives
    pred_bboxes = crit.bbox_decode(anchors, preds["boxes"].permute(0, 2, 1))
    ciou = bbox_iou(pred_bboxes[fg], (target_bboxes / strides)[fg], xywh=False, CIoU=True)
    torch.testing.assert_close(loss[0], (1 - ciou).mean() * model.args.box)


def test_batch_without_any_gt_is_finite_with_gradients():
    model = make_model()
    crit = build_fss_criterion(model)
    batch = make_batch(n_boxes=(0, 0))
    loss, items = crit(model(batch["img"]), batch)
    assert torch.isfinite(loss).all() and float(items["box_loss"]) == 0 and float(items["cls_loss"]) > 0
    loss.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_end_to_end_one2one_branch_options():
    """fss_o2o=fss: the one-to-one branch uses FSS with k = 1; fss_o2o=tal: Ultralytics' own assigner."""
    fss = build_fss_criterion(make_model("yolo26n.yaml", fss_o2o="fss"))
    assert fss.one2one.use_fss and fss.one2one.assigner.fixed_k == 1 and fss.one2many.assigner.fixed_k is None
    tal = build_fss_criterion(make_model("yolo26n.yaml", fss_o2o="tal"))
    assert not tal.one2one.use_fss and type(tal.one2one.assigner).__name__ == "RecordingAssigner"  # recorded only
    assert type(tal.one2one.assigner.assigner).__name__ == "TaskAlignedAssigner"
    assert tal.one2many.use_fss
    batch = make_batch()
    model = make_model("yolo26n.yaml", fss_o2o="fss")
    crit = build_fss_criterion(model)
    preds = crit.one2one.parse_output(model(batch["img"]))["one2one"]
    (fg, gt_idx, *_), _, _ = crit.one2one.get_assigned_targets_and_loss(preds, batch)
    assert fg[0].any() and fg[2].any() and not fg[1].any()  # images 0 and 2 have GTs, image 1 none
    for i in (0, 2):  # k = 1: at most one positive per GT
        assert torch.bincount(gt_idx[i][fg[i]]).max() == 1


@pytest.mark.parametrize("o2o", ["tal", "fss"])
def test_end_to_end_statistics_of_both_branches(o2o):
    """The per-epoch statistics of an end-to-end criterion: the one-to-many branch's as `fss/*`, the one-to-one
    branch's (FSS at k = 1, or Ultralytics' top-1 recorded) as `fss/o2o_*`, at most one positive per GT there, and the
    one-to-many weight of Ultralytics' schedule as `fss/o2m_weight`; a criterion without branches publishes neither."""
    from types import SimpleNamespace

    from ultralytics_fss.train.callbacks import epoch_metrics, on_train_epoch_start

    batch = make_batch()
    for cfg in ("yolo26n.yaml", "yolo11n.yaml"):
        model = make_model(cfg, fss_o2o=o2o)
        model.criterion = build_fss_criterion(model)
        trainer = SimpleNamespace(model=model)  # what the callbacks read from a trainer
        on_train_epoch_start(trainer)
        model.criterion(model(batch["img"]), batch)
        metrics = epoch_metrics(trainer)
        assert metrics["fss/pos_per_gt"] > 0 and metrics["fss/k_mean"] >= 1
        if cfg == "yolo11n.yaml":
            assert not any("o2o" in k or "o2m" in k for k in metrics)
            continue
        assert 0 < metrics["fss/o2o_pos_per_gt"] <= 1 and metrics["fss/o2m_weight"] == model.criterion.o2m == 0.8
        assert ("fss/o2o_k_mean" in metrics) == (o2o == "fss")  # FSS records its k; Ultralytics' top-1 has none


@pytest.mark.parametrize(
    "model_cls, cfg, task",
    [
        (RTDETRDetectionModel, "rtdetr-resnet50.yaml", "detect"),
        (WorldModel, "yolov8s-worldv2.yaml", "detect"),
        (YOLOEModel, "yoloe-26n.yaml", "detect"),
        (ClassificationModel, "yolo11n-cls.yaml", "classify"),
        (SemanticSegmentationModel, "yolo26n-sem.yaml", "semantic"),
        (DepthModel, "yolo26n-depth.yaml", "depth"),
    ],
)
def test_unsupported_models_get_a_clear_error(model_cls, cfg, task):
    """Models FSS cannot train are refused with their class and task named."""
    model = model_cls(cfg, nc=3, verbose=False)
    with pytest.raises(NotImplementedError, match=f"not {model_cls.__name__} \\(task={task}\\)"):
        build_fss_criterion(model)


def test_assignment_stats_by_hand():
    """Two images: GT 0 of image 0 has two positives, GT 1 one, GT 2 is padding; image 1's only GT has none."""
    fg = torch.tensor([[True, True, True, False, False], [False] * 5])
    gt_idx = torch.tensor([[0, 0, 1, 0, 0], [0] * 5])
    mask_gt = torch.tensor([[[1.0], [1.0], [0.0]], [[1.0], [0.0], [0.0]]])
    k = torch.tensor([[2, 3, 0], [1, 0, 0]])
    weights = torch.tensor([[0.8, 1.2, 1.0, 0, 0], [0.0] * 5])
    stats = AssignmentStats()
    stats.update(fg, gt_idx, mask_gt, k=k, weights=weights)
    stats.update(fg[:1], gt_idx[:1], mask_gt[:1], k=k[:1], weights=weights[:1])  # accumulates
    out = stats.summary()
    assert out["pos_per_gt"] == pytest.approx(6 / 5) and out["no_pos_share"] == pytest.approx(1 / 5)
    assert out["k_mean"] == pytest.approx((6 + 5) / 5) and out["k_max"] == 3
    assert (out["w_min"], out["w_max"]) == pytest.approx((0.8, 1.2)) and out["w_mean"] == pytest.approx(1.0)
    stats.reset()
    assert stats.summary()["pos_per_gt"] == 0
    stats.update(fg, gt_idx, mask_gt[:, :0], k=k[:, :0], weights=weights)  # a batch without any GT (M = 0)
    assert stats.summary()["no_pos_share"] == 0


def test_tal_loss_is_stock_and_records_positives():
    """`TALDetectionLoss` (comparison runs) gives the stock loss value and counts the stock positives per GT."""
    model = make_model()
    batch = make_batch()
    preds = model(batch["img"])
    stock_loss, _ = v8DetectionLoss(model)(preds, batch)
    recording = TALDetectionLoss(model)
    loss, _ = recording(preds, batch)
    torch.testing.assert_close(loss, stock_loss)
    out = recording.stats.summary()
    assert out["pos_per_gt"] > 0 and 0 < out["target_mean"] <= 1 and "k_mean" not in out


@pytest.mark.parametrize("name", ["maxiou", "atss", "simota", "paa", "dw", "tal", "gfl"])
def test_fss_assigner_selects_the_baselines(name):
    """`fss_assigner` picks the paper's baselines inside the FSS loss (weight 1, the soft target of the loss keys:
    TAL-scaled by default), or Ultralytics' own loss for `tal`; `gfl` is ATSS with QFL on IoU targets."""
    from ultralytics_fss.assign import BASELINES
    from ultralytics_fss.evidence.compare import BUILTIN
    from ultralytics_fss.train.loss import TALDetectionLoss

    keys = BUILTIN["gfl"] if name == "gfl" else {"fss_assigner": name}
    model = make_model(**keys)
    criterion = build_fss_criterion(model)
    batch = make_batch()
    preds = model(batch["img"])
    loss, _ = criterion(preds, batch)
    assert torch.isfinite(loss).all() and loss.sum() > 0
    loss.sum().backward()
    if name == "tal":
        assert type(criterion) is TALDetectionLoss
        stock = make_model().init_criterion()
        torch.testing.assert_close(criterion(preds, batch)[0], stock(preds, batch)[0])  # a stock loss, exactly
        return
    assert type(criterion.assigner) is BASELINES[keys["fss_assigner"]] and criterion.stats.summary()["pos_per_gt"] > 0
    assert criterion.assigner.soft_target == ("iou" if name == "gfl" else "tal")  # the loss keys' target
    assert criterion.fss["fss_cls"] == ("qfl" if name == "gfl" else "bce")


def test_quality_focal_loss_matches_loop_reference():
    """`fss_cls=qfl` (the `gfl` variant): each class of each anchor contributes GFL's QFL,
    -|y - sigma|^2 * ((1 - y) log(1 - sigma) + y log(sigma)), times the positive's weight; ignored anchors nothing."""
    import math

    from ultralytics_fss.assign.fss import FSSAssignResult
    from ultralytics_fss.train.loss import FSSDetectionLoss

    gen = torch.Generator().manual_seed(0)
    b, n, c = 2, 7, 3
    logits = torch.randn(b, n, c, generator=gen) * 2
    fg = torch.rand(b, n, generator=gen) < 0.4
    labels = torch.where(fg, torch.randint(0, c, (b, n), generator=gen), torch.full((b, n), c))
    labels[0, -1] = -1  # an ignored anchor (Max-IoU)
    fg[0, -1] = False
    scores = torch.zeros(b, n, c)
    y = torch.rand(b, n, generator=gen)
    scores[fg, labels[fg]] = y[fg]
    weights = torch.where(fg, torch.rand(b, n, generator=gen) + 0.5, torch.zeros(b, n))
    result = FSSAssignResult(labels, torch.zeros(b, n, 4), scores, fg, torch.zeros(b, n, dtype=torch.long), weights)
    loss = FSSDetectionLoss.__new__(FSSDetectionLoss)
    loss.bce, loss.class_weights, loss.fss = torch.nn.BCEWithLogitsLoss(reduction="none"), None, {"fss_cls": "qfl"}
    got = loss.fss_cls_loss(logits, result, weights, torch.tensor(2.5))
    total = 0.0
    for i in range(b):
        for a in range(n):
            if labels[i, a] < 0:
                continue
            for k in range(c):
                sig, t = 1 / (1 + math.exp(-float(logits[i, a, k]))), float(scores[i, a, k])
                qfl = -abs(t - sig) ** 2 * ((1 - t) * math.log(1 - sig) + t * math.log(sig))
                total += qfl * (float(weights[i, a]) if fg[i, a] else 1.0)
    assert float(got) == pytest.approx(total / 2.5, rel=1e-5)
    loss.fss = {"fss_cls": "bce"}  # and plain BCE is larger: the modulating factor is < 1
    assert float(loss.fss_cls_loss(logits, result, weights, torch.tensor(2.5))) > float(got)


def dw_scene(gen, b=2, n=7, c=3):
    """Logits, and a DW result by hand: positives with target 1 and weights in [0, e^2], P_neg in [0, 1]."""
    from ultralytics_fss.assign.dw import DWAssignResult

    logits = torch.randn(b, n, c, generator=gen) * 2
    fg = torch.rand(b, n, generator=gen) < 0.5
    labels = torch.where(fg, torch.randint(0, c, (b, n), generator=gen), torch.full((b, n), c))
    scores = torch.zeros(b, n, c)
    scores[fg, labels[fg]] = 1.0
    weights = torch.where(fg, torch.rand(b, n, generator=gen) * 7, torch.zeros(b, n))
    p_neg = torch.where(torch.rand(b, n, c, generator=gen) < 0.5, torch.rand(b, n, c, generator=gen), 1.0)
    result = DWAssignResult(labels, torch.zeros(b, n, 4), scores, fg, torch.zeros(b, n, dtype=torch.long), weights,
                            neg_weights=p_neg, neg_gamma=2.0)  # fmt: skip
    return logits, result


def bare_loss(**fss):
    """An FSSDetectionLoss with just what `fss_cls_loss` reads."""
    from ultralytics_fss.train.loss import FSSDetectionLoss

    loss = FSSDetectionLoss.__new__(FSSDetectionLoss)
    loss.bce, loss.class_weights, loss.fss = torch.nn.BCEWithLogitsLoss(reduction="none"), None, {"fss_cls": "bce"}
    loss.fss.update(fss)
    return loss


def test_dw_classification_term_matches_loop_reference():
    """DW's two weights on the classification term (`fss_assigner=dw`): w_pos * -log(sigma) at the positive's class,
    P_neg * sigma^2 * -log(1 - sigma) at every (anchor, class), over D; sigma^2 carries its gradient (a focal term)."""
    import math

    gen = torch.Generator().manual_seed(3)
    logits, result = dw_scene(gen)
    logits.requires_grad_(True)
    got = bare_loss().fss_cls_loss(logits, result, result.weights, torch.tensor(1.7))
    total = 0.0
    b, n, c = logits.shape
    for i in range(b):
        for a in range(n):
            for k in range(c):
                sig = 1 / (1 + math.exp(-float(logits[i, a, k].detach())))
                if result.fg_mask[i, a] and result.labels[i, a] == k:
                    total += float(result.weights[i, a]) * -math.log(sig)
                total += float(result.neg_weights[i, a, k]) * sig**2 * -math.log(1 - sig)
    assert float(got.detach()) == pytest.approx(total / 1.7, rel=1e-5)
    got.backward()
    sig = logits.detach().sigmoid()
    neg = result.neg_weights * (2 * sig * -torch.log1p(-sig) * sig * (1 - sig) + sig**2 * sig)  # d/dx of the focal term
    pos = result.scores * result.weights[..., None] * -(1 - sig)
    torch.testing.assert_close(logits.grad, (pos + neg) / 1.7, rtol=1e-4, atol=1e-6)


def test_other_results_keep_the_plain_classification_term():
    """Results without negative weights (every assigner but DW: `neg_weights` None) take the unchanged branch, bit for
    bit the plain formula: w_i * BCE(sigma, t) for positives, BCE(sigma, 0) for background, 0 for ignored anchors."""
    from ultralytics_fss.assign.pairs import FSSAssignResult

    gen = torch.Generator().manual_seed(4)
    logits, dw = dw_scene(gen)
    labels = dw.labels.clone()
    labels[0, -1] = -1  # an ignored anchor
    plain = FSSAssignResult(labels, *dw[1:])
    assert plain.neg_weights is None and tuple(plain) == (labels, *dw[1:]) and len(dw) == 6  # six fields unpack
    loss = bare_loss()
    got = loss.fss_cls_loss(logits, plain, plain.weights, torch.tensor(1.7))
    cls_weights = torch.where(plain.fg_mask, plain.weights, (labels >= 0).float())
    want = (torch.nn.BCEWithLogitsLoss(reduction="none")(logits, plain.scores).sum(-1) * cls_weights).sum() / 1.7
    assert torch.equal(got, want)
    assert not torch.equal(loss.fss_cls_loss(logits, dw, dw.weights, torch.tensor(1.7)), got)  # DW's differs


def test_dw_does_not_combine_with_quality_focal_loss():
    from ultralytics_fss import check_fss_args

    with pytest.raises(ValueError, match="fss_cls=qfl with fss_assigner=dw"):
        check_fss_args({"fss_assigner": "dw", "fss_cls": "qfl"})
    assert check_fss_args({"fss_assigner": "paa", "fss_cls": "qfl"})["fss_cls"] == "qfl"
