"""`enable_fss`: FSS for any trainer class through callbacks alone."""

from __future__ import annotations

import pytest
import torch
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import YAML

from conftest import read_csv
from ultralytics_fss import FSSDetectionLoss, enable_fss
from ultralytics_fss.train import InstallCriterion


class MyTrainer(DetectionTrainer):
    """A user's own trainer subclass, unaware of FSS."""


@pytest.mark.slow
def test_enable_fss_on_a_custom_trainer(train_args):
    model = enable_fss(YOLO("yolo11n.yaml"), fss_beta=4.0, fss_q=7)
    model = enable_fss(model, fss_beta=3.0, fss_q=7)  # a second call replaces the first
    installs = [c for c in model.callbacks["on_pretrain_routine_end"] if isinstance(c, InstallCriterion)]
    assert [c.fss["fss_beta"] for c in installs] == [3]
    seen = {}
    model.add_callback("on_fit_epoch_end", lambda t: seen.update(ema=t.ema.ema.criterion, train=t.model.criterion))
    model.train(trainer=MyTrainer, **{k: v for k, v in train_args.items() if k != "model"})

    assert type(model.trainer) is MyTrainer
    for criterion in (seen["train"], seen["ema"]):
        assert isinstance(criterion, FSSDetectionLoss) and criterion.assigner.beta == 3.0 and criterion.assigner.q == 7
    assert seen["train"] is not seen["ema"]
    args = YAML.load(model.trainer.save_dir / "args.yaml")
    assert not any(k.startswith("fss_") or k == "trainer" for k in args)  # the stock trainer's args stay stock
    rows = read_csv(model.trainer.csv)
    assert len(rows) == 1 and float(rows[0]["fss/pos_per_gt"]) > 0
    assert torch.load(model.trainer.best, weights_only=False)["model"].args["fss_beta"] == 3.0  # what was used


@pytest.mark.parametrize("kwargs, error", [({"fss_beta": -1}, ValueError), ({"fss_bta": 1}, KeyError)])
def test_enable_fss_checks_values_at_once(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        enable_fss(YOLO("yolo11n.yaml"), **kwargs)
