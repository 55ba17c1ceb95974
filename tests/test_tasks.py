"""FSS on oriented boxes, segmentation and pose: every family trains, validates and resumes with FSS; one trainer
name for every task; the stock CLI and `enable_fss` (the copied OBB prelude: tests/test_seam.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import StopAfterFirstEpoch, read_csv, stop_after_first_epoch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.nn.tasks import OBBModel, PoseModel, SegmentationModel
from ultralytics.utils.loss import E2ELoss

from ultralytics_fss import FSSTrainer, enable_fss
from ultralytics_fss.train.loss import LOSSES, FSSLoss, FSSOBBLoss
from ultralytics_fss.train.seam import branches, main_branch, stock_loss_class
from ultralytics_fss.train.trainer import FSSOBBTrainer, FSSPoseTrainer, FSSSegmentationTrainer

TASK_FAMILIES = {
    "obb": ["yolov8n-obb.yaml", "yolo11n-obb.yaml", "yolo26n-obb.yaml"],
    "segment": ["yolov8n-seg.yaml", "yolo11n-seg.yaml", "yolo26n-seg.yaml"],
    "pose": ["yolov8n-pose.yaml", "yolo11n-pose.yaml", "yolo26n-pose.yaml"],
}
TRAINERS = {"obb": FSSOBBTrainer, "segment": FSSSegmentationTrainer, "pose": FSSPoseTrainer}
MODELS = {"obb": OBBModel, "segment": SegmentationModel, "pose": PoseModel}
CASES = [(task, model) for task, models in TASK_FAMILIES.items() for model in models]


@pytest.fixture(scope="session")
def task_data(tmp_path_factory) -> dict[str, str]:
    """12 images of 64 px per task (rotated shapes labelled as obb, segment, pose); task -> data.yaml."""
    from ultralytics_fss.synthetic import make_dataset

    root = tmp_path_factory.mktemp("tasks")
    return {t: str(make_dataset(root / t, images=12, imgsz=64, objects=(2, 5), size=(0.2, 0.3), task=t))
            for t in TASK_FAMILIES}  # fmt: skip


def run_args(task_data, tmp_path, task, model, **kw) -> dict:
    """Smallest real run of `model` on the task's data: one epoch at 64 px on CPU, plots off; `kw` overrides."""
    args = dict(model=model, data=task_data[task], epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                project=str(tmp_path), name="run", exist_ok=True, plots=False, pretrained=False, seed=0)  # fmt: skip
    return {**args, **kw}


@pytest.mark.slow
@pytest.mark.parametrize("task, model", CASES)
def test_every_family_trains_validates_and_resumes_with_fss(task_data, tmp_path, task, model):
    """FSSTrainer picks the task from the model; a run killed after epoch 1 resumes from last.pt with FSS, its keys,
    the E2E schedule, fss/* statistics and finite validation losses; for one family per task (`LOADS_WITHOUT_FSS`),
    its best.pt predicts and validates where ultralytics_fss cannot be imported."""
    first = FSSTrainer(overrides=run_args(task_data, tmp_path, task, model, epochs=2, fss_beta=5.0))
    assert type(first) is TRAINERS[task] and first.args.task == task
    first.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(StopAfterFirstEpoch):
        first.train()
    ckpt = torch.load(first.last, weights_only=False)
    assert ckpt["train_args"]["fss_beta"] == 5.0 and ckpt["train_args"]["trainer"] == "ultralytics_fss.FSSTrainer"

    resumed = FSSTrainer(overrides={"resume": str(first.last)})  # the task comes from the checkpoint
    assert type(resumed) is TRAINERS[task]
    resumed.train()
    assert resumed.start_epoch == 1 and resumed.args.fss_beta == 5.0
    losses = branches(resumed.model.criterion)
    assert all(isinstance(x, FSSLoss) for x in losses)
    assert isinstance(losses[0], LOSSES[stock_loss_class(resumed.model)][0]) and losses[0].assigner.beta == 5.0
    if isinstance(resumed.model.criterion, E2ELoss):
        assert resumed.model.criterion.updates >= 1
    rows = read_csv(resumed.csv)
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert float(rows[-1]["fss/pos_per_gt"]) > 0
    val_losses = [k for k in rows[-1] if k.startswith("val/")]
    assert val_losses and all(torch.isfinite(torch.tensor(float(rows[-1][k]))) for k in val_losses)
    if (task, model) in LOADS_WITHOUT_FSS:  # the resumed run's best.pt, where ultralytics_fss cannot be imported
        check_loads_without_ultralytics_fss(resumed.best, task_data[task], task)


@pytest.mark.parametrize(
    "task, model, words",
    [
        ("classify", "yolo11n-cls.yaml", "classify model \\(ClassificationModel\\)"),
        ("semantic", "yolo26n-sem.yaml", "semantic segmentation model \\(SemanticSegmentationModel\\)"),
        ("depth", "yolo26n-depth.yaml", "depth model \\(DepthModel\\)"),
        ("classify", None, "not task=classify"),  # no model: the task alone is refused
    ],
)
def test_tasks_fss_cannot_train_fail_at_once(task, model, words):
    with pytest.raises(NotImplementedError, match=words):
        FSSTrainer(overrides={"task": task, **({"model": model} if model else {})})


@pytest.mark.slow
def test_yolo_api_and_enable_fss_with_stock_trainer(task_data, tmp_path):
    """`YOLO(seg yaml).train(trainer=FSSTrainer)` and `enable_fss(YOLO(pose yaml))` with Ultralytics' PoseTrainer."""
    seg = YOLO("yolo11n-seg.yaml")
    seg.train(trainer=FSSTrainer, **{k: v for k, v in run_args(task_data, tmp_path, "segment", None).items()
                                     if k != "model"})  # fmt: skip
    assert type(seg.trainer) is FSSSegmentationTrainer
    assert type(seg.trainer.model.criterion).__name__ == "FSSSegmentationLoss"

    pose = enable_fss(YOLO("yolo11n-pose.yaml"), fss_beta=4.0)
    pose.train(trainer=PoseTrainer, **{k: v for k, v in run_args(task_data, tmp_path, "pose", None, name="pose").items()
                                       if k != "model"})  # fmt: skip
    criterion = pose.trainer.model.criterion
    assert type(pose.trainer) is PoseTrainer and type(criterion).__name__ == "FSSPoseLoss"
    assert criterion.assigner.beta == 4.0 and "fss/pos_per_gt" in read_csv(pose.trainer.csv)[-1]


@pytest.mark.slow
def test_yolo_obb_cli(task_data, tmp_path, repo_env):
    """`yolo obb train trainer=ultralytics_fss.FSSTrainer ... fss_beta=6` through the stock console script."""
    yolo = [sys.executable, "-m", "ultralytics_fss.cli"]
    args = run_args(task_data, tmp_path, "obb", "yolo11n-obb.yaml", fss_beta=6)
    cmd = [*yolo, "obb", "train", "trainer=ultralytics_fss.FSSTrainer", *(f"{k}={v}" for k, v in args.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**repo_env, "YOLO_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fss_assigner=fss, fss_alpha=0.5, fss_beta=6.0" in proc.stdout + proc.stderr  # the FSS: log line
    rows = read_csv(tmp_path / "run" / "results.csv")
    assert "fss/pos_per_gt" in rows[-1] and "train/angle_loss" in rows[-1]


def obb_model_and_batch(nc=3, b=2):
    model = OBBModel("yolo11n-obb.yaml", nc=nc, verbose=False)
    model.args = get_cfg()
    gen = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[0.3, 0.3, 0.2, 0.1, 0.4], [0.6, 0.5, 0.3, 0.2, 1.2], [0.5, 0.5, 0.15, 0.15, 0.0]])
    batch = {"img": torch.rand(b, 3, 64, 64, generator=gen), "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0], [2.0]]), "bboxes": boxes}  # fmt: skip
    return model, batch


def test_obb_loss_is_equation_9_on_every_term():
    """Box (1 - probiou), DFL and angle terms weighted by v_i = w_i * t_i and divided by D = sum v_i, by hand."""
    from ultralytics.utils.metrics import probiou

    model, batch = obb_model_and_batch()
    crit = FSSOBBLoss(model)
    preds = crit.parse_output(model(batch["img"]))
    total, items = crit.loss(preds, batch)
    x = crit.inputs(preds, batch)
    result, _ = crit.fss_assign(x, preds)
    fg = result.fg_mask
    v = (result.weights * result.scores.sum(-1))[fg]
    d = v.sum().clamp(min=1)
    target = torch.cat([result.bboxes[..., :4] / x.stride_tensor, result.bboxes[..., 4:]], -1)[fg]
    pred = x.pred_bboxes[fg]
    box = ((1 - probiou(pred, target, floor=0.01)).squeeze(-1) * v).sum() / d
    dtheta = pred[:, 4] - target[:, 4]
    dtheta = dtheta - torch.round(dtheta / torch.pi) * torch.pi
    scale = torch.exp(-torch.log((target[:, 2] + 1e-9) / (target[:, 3] + 1e-9)) ** 2 / 9)
    angle = (scale * torch.sin(2 * dtheta) ** 2 * v).sum() / d
    assert fg.any()
    torch.testing.assert_close(items["box_loss"], (box * crit.hyp.box).detach())
    torch.testing.assert_close(items["angle_loss"], (angle * crit.hyp.angle).detach())
    assert torch.isclose(total.sum(), sum(items.values()) * 2)  # batch size 2


@pytest.mark.slow
@pytest.mark.parametrize("task, model", [("segment", "yolo26n-seg.yaml"), ("pose", "yolo26n-pose.yaml")])
def test_task_overlap_trains_yolo26(task_data, tmp_path, task, model):
    """`fss_overlap=task` scores Eq. (3) with Ultralytics' own mask-aware overlap or OKS on YOLO26 heads."""
    trainer = FSSTrainer(overrides=run_args(task_data, tmp_path, task, model, fss_overlap="task"))
    trainer.train()
    branch = trainer.model.criterion.one2many
    assert branch.fss["fss_overlap"] == "task" and type(branch.stock_assigner).__name__ in {
        "SegTaskAlignedAssigner", "PoseTaskAlignedAssigner"}
    assert float(read_csv(trainer.csv)[-1]["fss/pos_per_gt"]) > 0


def test_oks_overlap_by_hand():
    """The pose overlap FSS scores is OKS: exp(-d^2 / (2 * (2 sigma)^2 * 0.53 area)) averaged over visible keypoints."""
    from ultralytics.utils.tal import PoseTaskAlignedAssigner

    sigmas = torch.tensor([0.1, 0.2])
    stock = PoseTaskAlignedAssigner(sigmas, num_classes=1)
    gt_boxes = torch.tensor([[[0.0, 0.0, 10.0, 20.0]]])  # area 200 -> 0.53 * 200 = 106
    gt_kpts = torch.tensor([[[[2.0, 2.0, 2.0], [5.0, 5.0, 0.0]]]])  # second keypoint invisible
    pd_kpts = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]]]])  # d^2 = 5 for the visible one
    pd_boxes = torch.tensor([[[0.0, 0.0, 10.0, 20.0]]])
    idx = (torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))
    want = torch.exp(torch.tensor(-5.0 / (2 * (2 * 0.1) ** 2 * (106 + stock.eps))))
    torch.testing.assert_close(stock.pair_overlaps(idx, gt_boxes, pd_boxes, pd_kpts, gt_kpts), want[None])


def seg_pose_case(task, model_yaml):
    """A model of `task` and a random batch of two 64-px images with three objects."""
    kw = {"data_kpt_shape": (4, 3)} if task == "pose" else {}
    model = MODELS[task](model_yaml, nc=3, verbose=False, **kw)
    gen = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[0.3, 0.3, 0.3, 0.2], [0.6, 0.5, 0.3, 0.3], [0.5, 0.5, 0.4, 0.4]])
    batch = {"img": torch.rand(2, 3, 64, 64, generator=gen), "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0], [2.0]]), "bboxes": boxes}  # fmt: skip
    if task == "segment":
        masks = torch.zeros(2, 16, 16)
        masks[0, 3:7, 3:8], masks[0, 6:11, 7:12], masks[1, 5:11, 5:11] = 1, 2, 1  # overlap_mask: index + 1
        batch["masks"] = masks
        batch["sem_masks"] = torch.zeros(2, 16, 16)  # YOLO26's semantic branch: class index per pixel
    else:
        batch["keypoints"] = torch.rand(3, 4, 3, generator=gen) * torch.tensor([1.0, 1.0, 2.0])
    return model, batch


@pytest.mark.slow
@pytest.mark.parametrize("task, model_yaml", [("segment", "yolo11n-seg.yaml"), ("segment", "yolo26n-seg.yaml"),
                                              ("pose", "yolo11n-pose.yaml"), ("pose", "yolo26n-pose.yaml")])
def test_weighted_task_losses_match_stock(task, model_yaml):
    """With `fss_task_weights`, the copied mask / keypoint terms equal Ultralytics' when every weight is 1, and scale
    with the weights otherwise."""
    from ultralytics_fss.train.loss import build_fss_criterion

    model, batch = seg_pose_case(task, model_yaml)
    values = {}
    for weights in (False, True):
        model.args = get_cfg()
        for key, value in {"fss_task_weights": weights, "fss_weights": False}.items():
            setattr(model.args, key, value)  # fss_weights=False: every Eq. 8 weight is 1
        crit = build_fss_criterion(model)
        branch = main_branch(crit)
        preds = branch.parse_output(model(batch["img"]))
        preds = preds.get("one2many", preds)
        values[weights] = branch.loss(preds, batch)[1]
    name = "seg_loss" if task == "segment" else "pose_loss"
    torch.testing.assert_close(values[True][name], values[False][name])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["obb", "segment", "pose"])
def test_ddp_state_rebuilds_task_trainer(task_data, tmp_path, task):
    """Ultralytics' DDP launcher file rebuilds the task's FSS trainer, its keys and its criterion in a fresh process."""
    from test_ddp import run_worker

    model = {"obb": "yolo11n-obb.yaml", "segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml"}[task]
    report = run_worker(FSSTrainer(overrides=run_args(task_data, tmp_path, task, model, fss_beta=4.0)))
    assert report["class"] == f"ultralytics_fss.train.trainer.{TRAINERS[task].__name__}"
    assert report["args"]["fss_beta"] == 4.0 and report["args"]["trainer"] == "ultralytics_fss.FSSTrainer"
    want = {"obb": "FSSOBBLoss", "segment": "FSSSegmentationLoss", "pose": "FSSPoseLoss"}[task]
    assert report["train"] == [want] and report["ema"] == [want] and report["beta"] == [4.0]


LOADS_WITHOUT_FSS = {("obb", "yolo26n-obb.yaml"), ("segment", "yolo11n-seg.yaml"), ("pose", "yolo26n-pose.yaml")}


def check_loads_without_ultralytics_fss(best: Path, data: str, task: str) -> None:
    """`best` of an FSS run predicts and validates where ultralytics_fss cannot be imported, and sees every GT."""
    script = (
        "import sys, pathlib\n"
        "sys.modules['ultralytics_fss'] = None\n"  # any import of it would now raise ImportError
        "from ultralytics import YOLO\n"
        f"model = YOLO({str(best)!r})\n"
        f"image = sorted(pathlib.Path({data!r}).parent.glob('images/val/*.png'))[0]\n"
        "model.predict(image, imgsz=64, verbose=False)\n"
        f"metrics = model.val(data={data!r}, imgsz=64, batch=4, plots=False, device='cpu')\n"
        "print('RESULT', model.task, int(metrics.nt_per_class.sum()), 0 <= metrics.box.map50 <= 1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = (Path(data).parent / "labels" / "val").glob("*.txt")
    instances = sum(len([x for x in f.read_text().splitlines() if x.strip()]) for f in labels)
    assert proc.stdout.split("RESULT")[-1].split() == [task, str(instances), "True"] and instances > 0  # every GT seen


@pytest.mark.slow
@pytest.mark.parametrize("task, model_yaml", [("segment", "yolo26n-seg.yaml"), ("pose", "yolo26n-pose.yaml")])
def test_task_overlap_is_fss_only(task, model_yaml):
    """With a baseline assigner, `fss_overlap=task` is ignored (the baselines score box IoU), not an error."""
    from ultralytics_fss.train.loss import build_fss_criterion

    model, batch = seg_pose_case(task, model_yaml)
    for assigner in ("atss", "fss"):
        model.args = get_cfg()
        model.args.fss_overlap, model.args.fss_assigner = "task", assigner
        crit = build_fss_criterion(model)
        preds = crit.one2many.parse_output(model(batch["img"]))["one2many"]
        loss, items = crit.one2many.loss(preds, batch)
        assert torch.isfinite(loss).all()
        assert crit.one2many.uses_task_overlap == (assigner == "fss")
    model.args = get_cfg()  # the default, fss_overlap=auto: OKS for YOLO26 pose, box IoU for YOLO26 segment
    assert build_fss_criterion(model).one2many.uses_task_overlap == (task == "pose")


def test_yolo26_segment_overlap_ranks_pairs_by_the_fss_keys():
    """The mask-aware overlap (`SegTaskAlignedAssigner.pair_overlaps`) scores mask IoU on each GT's 3 * topk best
    pairs by p^alpha * IoU^beta: on branches FSS assigns, topk, alpha and beta are fss_q, fss_alpha and fss_beta; a
    branch left to Ultralytics (fss_o2o=tal) keeps its stock assigner untouched."""
    from ultralytics_fss.assign import FSSAssigner
    from ultralytics_fss.train.loss import build_fss_criterion

    model, _ = seg_pose_case("segment", "yolo26n-seg.yaml")
    for o2o in ("fss", "tal"):
        model.args = get_cfg()
        model.args.fss_q, model.args.fss_alpha, model.args.fss_beta, model.args.fss_o2o = 6, 1.0, 4.0, o2o
        crit = build_fss_criterion(model)
        for branch in (crit.one2many, crit.one2one):
            stock = branch.stock_assigner
            assert type(stock).__name__ == "SegTaskAlignedAssigner"
            if branch.use_fss:
                assert type(branch.assigner) is FSSAssigner
                assert (stock.topk, stock.topk2, stock.alpha, stock.beta) == (6, 6, 1.0, 4.0)
            else:  # Ultralytics' one-to-one branch: its own settings (tal_topk=7, tal_topk2=1)
                assert branch.assigner.assigner is stock and (stock.topk, stock.topk2, stock.alpha) == (7, 1, 0.5)
        assert crit.one2one.use_fss == (o2o == "fss")
