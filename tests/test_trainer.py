"""FSSTrainer end to end on tiny generated data: Python API, fss_* keys, checkpoints, resume, validation losses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import YAML
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss
from ultralytics.utils.torch_utils import get_flops

from conftest import StopAfterFirstEpoch, read_csv, stop_after_first_epoch
from ultralytics_fss import FSSDetectionLoss, FSSTrainer
from ultralytics_fss.train.seam import branches


def fss_losses(criterion) -> list:
    """The FSS loss objects of a criterion (both branches for end-to-end heads)."""
    losses = branches(criterion)
    assert all(isinstance(x, FSSDetectionLoss) for x in losses), type(criterion)
    return losses


@pytest.mark.slow
def test_python_api_keys_checkpoint_and_val_losses(train_args):
    """fss_* overrides reach the criterion, args.yaml and the checkpoint; train and val losses both use FSS."""
    seen = {}

    def record(trainer):
        seen["train"] = type(trainer.model.criterion)
        seen["ema"] = trainer.ema.ema.criterion  # the model the validator computes val/* losses with

    trainer = FSSTrainer(overrides={**train_args, "fss_beta": 4, "fss_q": 7, "fss_norm": "target"})
    trainer.add_callback("on_fit_epoch_end", record)
    trainer.train()

    (loss,) = fss_losses(trainer.model.criterion)
    assert (loss.assigner.beta, loss.assigner.q, loss.fss["fss_norm"]) == (4.0, 7, "target")
    assert seen["train"] is FSSDetectionLoss
    (ema_loss,) = fss_losses(seen["ema"])
    assert ema_loss is not loss and ema_loss.assigner.beta == 4.0

    args = YAML.load(trainer.save_dir / "args.yaml")
    assert (args["fss_beta"], args["fss_q"], args["fss_norm"], args["fss_alpha"]) == (4, 7, "target", 0.5)
    ckpt = torch.load(trainer.best, weights_only=False)  # final checkpoint: Ultralytics keeps fss_* in model.args
    assert ckpt["model"].args["fss_beta"] == 4.0 and ckpt["model"].args["fss_q"] == 7
    assert type(ckpt["model"]) is DetectionModel  # Ultralytics' own class, no criterion pickled
    assert getattr(ckpt["model"], "criterion", None) is None

    row = read_csv(trainer.csv)[-1]
    for key in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss"):
        assert float(row[key]) > 0, key
    assert float(row["fss/pos_per_gt"]) > 0 and "fss/k_mean" in row


@pytest.mark.slow
def test_yolo_train_with_trainer_class(train_args):
    model = YOLO("yolo11n.yaml")
    model.train(trainer=FSSTrainer, **{k: v for k, v in train_args.items() if k != "model"}, fss_alpha=1.0)
    assert isinstance(model.trainer, FSSTrainer)
    (loss,) = fss_losses(model.trainer.model.criterion)
    assert loss.assigner.alpha == 1.0
    assert torch.load(model.trainer.best, weights_only=False)["model"].args["fss_alpha"] == 1.0


@pytest.mark.parametrize(
    "key, value, error, words",
    [
        ("fss_beta", -1, ValueError, "fss_beta=-1"),
        ("fss_q", 2.5, TypeError, "fss_q=2.5"),
        ("fss_norm", "mean", ValueError, "fss_norm='mean'"),
        ("fss_alhpa", 1, KeyError, "fss_alhpa"),
        ("fss_u", "big", TypeError, "fss_u='big'"),
    ],
)
def test_bad_fss_values_fail_before_anything_is_written(train_args, tmp_path, key, value, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(")):
        FSSTrainer(overrides={**train_args, key: value, "project": str(tmp_path / "bad")})
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "model, cls, family",
    [
        ("rtdetr-l.yaml", "RTDETRDetectionModel", "RT-DETR"),
        ("yolov8s-worldv2.yaml", "WorldModel", "YOLO-World"),
        ("yoloe-11s.yaml", "YOLOEModel", "YOLOE"),
        ("yoloe-26s-seg.yaml", "YOLOESegModel", "YOLOE"),
        ("yolo11n-cls.yaml", "ClassificationModel", "classify"),
        ("rtdetr-l.pt", "RTDETRDetectionModel", "RT-DETR"),  # an asset name: refused before any download
    ],
)
def test_models_fss_cannot_train_are_refused_before_anything_is_written(train_args, tmp_path, model, cls, family):
    """RT-DETR, YOLO-World, YOLOE and classify models: one message naming the model class and what is supported,
    raised before Ultralytics builds the model or makes the run folder (not 'not DetectionModel (task=detect)')."""
    with pytest.raises(NotImplementedError) as e:
        FSSTrainer(overrides={**train_args, "model": model, "project": str(tmp_path / "p")})
    msg = str(e.value)
    assert msg.startswith(f"model={model}: {family} model ({cls}); FSS cannot train it.") and "\n" not in msg, msg
    assert "FSSTrainer trains YOLO detect, obb, segment and pose models" in msg and "own trainer" in msg
    assert not (tmp_path / "p").exists()


def test_every_ultralytics_head_is_known_trainable_or_refused():
    """Each head of Ultralytics' shipped model YAMLs is one FSS trains or one in `UNSUPPORTED_HEADS`, whose model
    class exists under that name: an upgrade that adds a head or renames a class fails here, not in a user's run."""
    import ultralytics
    import ultralytics.nn.tasks as tasks

    from ultralytics_fss.train.seam import UNSUPPORTED_HEADS

    trainable = {"Detect", "v10Detect", "OBB", "OBB26", "Segment", "Segment26", "Pose", "Pose26"}
    yamls = sorted((Path(ultralytics.__file__).parent / "cfg" / "models").rglob("*.yaml"))
    heads = {YAML.load(f)["head"][-1][2] for f in yamls}
    assert len(yamls) > 50 and heads <= trainable | set(UNSUPPORTED_HEADS), heads - trainable - set(UNSUPPORTED_HEADS)
    assert all(hasattr(tasks, cls) for cls, _ in UNSUPPORTED_HEADS.values())


def test_local_weights_of_a_model_fss_cannot_train_are_refused_by_their_class(train_args, tmp_path, caplog):
    """Local weights are told by the class pickled in them, whatever their name; the `yolo` command line gives one
    line and exit status 2 for them and for a model YAML, and writes nothing."""
    from ultralytics_fss.cli import entrypoint

    weights = tmp_path / "mine.pt"
    YOLO("yolo11n-cls.yaml").save(weights)
    with pytest.raises(NotImplementedError, match=r"mine\.pt: classify model \(ClassificationModel\)"):
        FSSTrainer(overrides={**train_args, "model": str(weights), "project": str(tmp_path / "p")})
    for model in (weights, "rtdetr-l.yaml"):
        args = " ".join(f"{k}={v}" for k, v in {**train_args, "model": model, "project": tmp_path / "p"}.items())
        with pytest.raises(SystemExit) as e:
            entrypoint(f"yolo train trainer=ultralytics_fss.FSSTrainer {args}")
        assert e.value.code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "(ClassificationModel)" in errors[0] and "(RTDETRDetectionModel)" in errors[1], errors
    assert not (tmp_path / "p").exists()


# Resuming is the same code for every detection family but for the end-to-end schedule: one plain head, both end-to-end
# heads (every detection family trains a step with FSS in test_loss.py, and builds its FSS criterion in test_seam.py).
RESUME_FAMILIES = ["yolo11n.yaml", "yolo26n.yaml", "yolov10n.yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("model", RESUME_FAMILIES)
def test_resume_continues_with_fss(train_args, model):
    """Kill a 2-epoch run after epoch 1; resuming from last.pt keeps FSSTrainer, the keys and the E2E schedule."""
    first = FSSTrainer(overrides={**train_args, "model": model, "epochs": 2, "fss_beta": 5.0})
    first.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(StopAfterFirstEpoch):
        first.train()
    ckpt = torch.load(first.last, weights_only=False)  # resumable checkpoint: fss_* in train_args
    assert ckpt["epoch"] == 0 and ckpt["train_args"]["fss_beta"] == 5.0

    resumed = FSSTrainer(overrides={"resume": str(first.last)})
    resumed.train()
    assert resumed.start_epoch == 1 and resumed.args.fss_beta == 5.0
    losses = fss_losses(resumed.model.criterion)
    assert all(x.assigner.beta == 5.0 for x in losses if x.use_fss)
    if isinstance(resumed.model.criterion, E2ELoss):  # the one-to-many / one-to-one schedule was carried over
        assert resumed.model.criterion.updates >= 1
    rows = read_csv(resumed.csv)
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    if isinstance(resumed.model.criterion, E2ELoss):  # both branches' statistics, and the schedule, per epoch
        weights = [float(r["fss/o2m_weight"]) for r in rows]
        assert all(0 < float(r["fss/o2o_pos_per_gt"]) <= 1 for r in rows) and 0.1 <= weights[1] < weights[0] <= 0.8


@pytest.mark.slow
def test_checkpoint_loads_without_ultralytics_fss(train_args, tiny_data):
    """best.pt predicts and validates where ultralytics_fss cannot be imported, with stock parameters and FLOPs."""
    trainer = FSSTrainer(overrides=train_args)
    trainer.train()
    script = textwrap.dedent(f"""
        import sys
        sys.modules["ultralytics_fss"] = None  # any import of it would now raise ImportError
        from ultralytics import YOLO
        from ultralytics.utils.torch_utils import get_flops
        model = YOLO({str(trainer.best)!r})
        params, flops = sum(p.numel() for p in model.model.parameters()), get_flops(model.model, 64)
        images = sorted(__import__("pathlib").Path({str(tiny_data.parent)!r}).glob("images/val/*.png"))
        model.predict(images[0], imgsz=64, verbose=False)
        metrics = model.val(data={str(tiny_data)!r}, imgsz=64, batch=4, plots=False, device="cpu")
        print("RESULT", params, flops, int(metrics.nt_per_class.sum()), 0 <= metrics.box.map50 <= 1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    params, flops, instances, ok = proc.stdout.split("RESULT")[-1].split()
    stock = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
    assert int(params) == sum(p.numel() for p in stock.parameters())
    assert float(flops) == pytest.approx(get_flops(stock, 64))
    labels = (tiny_data.parent / "labels" / "val").glob("*.txt")
    assert ok == "True" and int(instances) == sum(len(f.read_text().split()) // 5 for f in labels) > 0  # every GT seen


@pytest.mark.slow
def test_stock_trainer_unaffected(train_args):
    """Importing ultralytics_fss changes nothing for Ultralytics' own trainer."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    trainer = DetectionTrainer(overrides=train_args)
    trainer.train()
    assert type(trainer.model.criterion) is v8DetectionLoss
    assert not any(k.startswith("fss_") for k in YAML.load(trainer.save_dir / "args.yaml"))


@pytest.mark.slow
def test_fss_assigner_tal_run_equals_a_stock_run(train_args, tmp_path):
    """`fss_assigner=tal` inside FSSTrainer trains exactly as Ultralytics' own trainer, seed for seed."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    stock = DetectionTrainer(overrides={**train_args, "name": "stock"})
    stock.train()
    tal = FSSTrainer(overrides={**train_args, "name": "tal", "fss_assigner": "tal"})
    tal.train()
    keys = ("train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/mAP50-95(B)", "val/box_loss")
    a, b = read_csv(stock.csv)[-1], read_csv(tal.csv)[-1]
    assert {k: float(a[k]) for k in keys} == {k: float(b[k]) for k in keys}
    assert "fss/pos_per_gt" in b  # the statistics follow the assigner
