"""The environment's real `yolo` console script with `trainer=`, `fss_*`, `cfg=` YAMLs and resume (startup hook).

Every command runs in a subprocess on the tiny generated dataset for one epoch at 64 px; assertions read the run's
outputs (args.yaml, results.csv, checkpoints, the FSS log line), not only exit codes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import YAML

from conftest import StopAfterFirstEpoch, read_csv, stop_after_first_epoch
from ultralytics_fss import FSSTrainer
from ultralytics_fss.cli import parse_args, plan

YOLO_SCRIPT = shutil.which("yolo", path=str(Path(sys.executable).parent))
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RECIPES = Path(__file__).parents[1] / "ultralytics_fss" / "recipes"


def yolo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real `yolo` console script; its output without colour codes."""
    assert YOLO_SCRIPT, f"no `yolo` console script next to {sys.executable}: is ultralytics installed here?"
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.run([YOLO_SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    proc.stdout, proc.stderr = (ANSI.sub("", x) for x in (proc.stdout, proc.stderr))
    return proc


def cli_args(train_args: dict, **changes) -> list[str]:
    """`key=value` words for the train_args fixture (model included), with changes."""
    return [f"{k}={v}" for k, v in {**train_args, **changes}.items()]


def run_dir(train_args: dict) -> Path:
    return Path(train_args["project"]) / train_args["name"]


def check_fss_run(proc, run: Path, **expected) -> dict:
    """The run trained with FSS: log line, args.yaml, one results.csv row with fss/* columns, checkpoint train_args."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    (line,) = [x for x in out.splitlines() if x.startswith("FSS: fss_")]  # logged when FSS is installed
    assert all(f"{k}={v}" in line.split(", ") or f"FSS: {k}={v}" in line for k, v in expected.items()), line
    args = YAML.load(run / "args.yaml")
    assert args["trainer"] == "ultralytics_fss.FSSTrainer"
    assert {k: args[k] for k in expected} == expected
    rows = read_csv(run / "results.csv")
    assert len(rows) == 1 and float(rows[0]["fss/pos_per_gt"]) > 0
    assert {"fss/k_mean", "fss/k_max", "fss/w_min", "fss/w_mean", "fss/w_max", "fss/no_pos_share"} <= set(rows[0])
    return args


def check_error(proc, run: Path, *words: str) -> None:
    """One clear error line naming the argument, a non-zero status, no traceback, nothing written."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if "ultralytics_fss:" in line]
    assert len(lines) == 1 and all(w in lines[0] for w in words), out[-3000:]
    assert not run.exists()


@pytest.mark.slow
def test_trainer_and_fss_keys(train_args, tmp_path):
    proc = yolo("detect", "train", "trainer=ultralytics_fss.FSSTrainer", *cli_args(train_args), "fss_beta=4",
                "fss_q=7", "fss_norm=target", cwd=tmp_path)  # fmt: skip
    check_fss_run(proc, run_dir(train_args), fss_beta=4.0, fss_q=7, fss_norm="target")
    ckpt = torch.load(run_dir(train_args) / "weights" / "best.pt", weights_only=False)
    assert ckpt["model"].args["fss_beta"] == 4.0


@pytest.mark.slow
def test_user_cfg_yaml_with_trainer_and_keys(train_args, tmp_path):
    """A user YAML holding trainer= and fss_* keys; the command line wins over the YAML."""
    user = tmp_path / "my_fss.yaml"
    YAML.save(user, {"trainer": "ultralytics_fss.FSSTrainer", "fss_beta": 3.0, "fss_q": 5, "epochs": 7})
    proc = yolo("detect", "train", f"cfg={user}", *cli_args(train_args), "fss_beta=2", cwd=tmp_path)
    args = check_fss_run(proc, run_dir(train_args), fss_beta=2.0, fss_q=5)
    assert args["epochs"] == 1


@pytest.mark.slow
def test_shipped_fss_yaml_by_name_and_trainer_module_path(train_args, tmp_path):
    """cfg=fss.yaml by name; the trainer's module path works as well as its public name (and is recorded by the
    public name); the defaults apply where nothing is given; the command line wins over the YAML."""
    proc = yolo("detect", "train", "cfg=fss.yaml", "trainer=ultralytics_fss.train.trainer.FSSTrainer",
                *cli_args(train_args), "fss_u=3", cwd=tmp_path)  # fmt: skip
    check_fss_run(proc, run_dir(train_args), fss_u=3.0, fss_alpha=0.5, fss_beta=6.0, fss_q=10, fss_o2o="tal")


@pytest.mark.slow
@pytest.mark.parametrize("model, recorded", [("yolo26n.yaml", "ultralytics_fss.trainer.FSSTrainer")])
def test_resume_without_trainer_argument(train_args, tmp_path, model, recorded):
    """`yolo detect train resume model=last.pt` continues with FSSTrainer and the checkpoint's fss_* values; also for
    checkpoints of earlier releases, which recorded the trainer's old module path `ultralytics_fss.trainer` (the
    current path resumes through the same code: `test_recorded_trainer_paths_resolve`)."""
    first = FSSTrainer(overrides={**train_args, "model": model, "epochs": 2, "fss_beta": 5.0, "fss_q": 6})
    first.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(StopAfterFirstEpoch):
        first.train()
    ckpt = torch.load(first.last, weights_only=False)
    assert ckpt["train_args"]["trainer"] == "ultralytics_fss.FSSTrainer"
    if recorded:  # a checkpoint written before the package layout changed
        ckpt["train_args"]["trainer"] = recorded
        torch.save(ckpt, first.last)

    proc = yolo("detect", "train", "resume", f"model={first.last}", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "trainer=ultralytics_fss.FSSTrainer" in out and "fss_beta=5.0, fss_u=2.0, fss_q=6" in out
    rows = read_csv(first.csv)
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]  # one row per epoch, no duplicate last row
    assert all(float(r["fss/pos_per_gt"]) > 0 for r in rows)
    ckpt = torch.load(first.best, weights_only=False)
    assert ckpt["model"].args["fss_beta"] == 5.0 and ckpt["model"].args["fss_q"] == 6


@pytest.mark.slow
def test_stock_checkpoint_resumes_stock(train_args, tmp_path):
    """A plain stock command keeps working: a stock trainer's checkpoint resumes with the stock trainer."""
    first = DetectionTrainer(overrides={**train_args, "epochs": 2})
    first.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(StopAfterFirstEpoch):
        first.train()
    proc = yolo("detect", "train", "resume", f"model={first.last}", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "FSS:" not in out and "ultralytics_fss" not in out
    rows = read_csv(first.csv)
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert not any(k.startswith("fss/") for k in rows[0])
    assert not any(k.startswith("fss_") or k == "trainer" for k in YAML.load(first.save_dir / "args.yaml"))


@pytest.mark.parametrize(
    "words, expected",
    [
        (["trainer=no_such_package.module.Trainer"], ["trainer=no_such_package.module.Trainer", "cannot import"]),
        (["trainer=ultralytics_fss.NoSuchTrainer"], ["has no attribute 'NoSuchTrainer'"]),
        (["trainer=collections.OrderedDict"], ["trainer=collections.OrderedDict is not a trainer", "BaseTrainer"]),
        (["trainer=FSSTrainer"], ["trainer='FSSTrainer' must be a dotted path"]),
        (["trainer=ultralytics_fss.FSSTrainer", "fss_beta=-1"], ["fss_beta=-1", "out of range"]),
        (["trainer=ultralytics_fss.FSSTrainer", "fss_alhpa=1"], ["fss_alhpa", "Unknown FSS argument"]),
        (["fss_beta=4"], ["fss_beta=4", "trainer=ultralytics_fss.FSSTrainer"]),
        (["trainer=ultralytics.models.yolo.detect.DetectionTrainer", "fss_q=3"], ["fss_q=", "FSSTrainer"]),
        (["trainer=ultralytics_fss.FSSTrainer", "model=rtdetr-l.yaml"],
         ["model=rtdetr-l.yaml: RT-DETR model (RTDETRDetectionModel)", "FSSTrainer trains YOLO detect"]),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_errors_are_one_line(train_args, tmp_path, words, expected):
    proc = yolo("detect", "train", *cli_args(train_args), *words, cwd=tmp_path)
    check_error(proc, run_dir(train_args), *expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, expected",
    [("epochs: 1\nfss_u: 2.0\nfss_beta: -1\n", [":3: fss_beta=-1.0", "out of range"]),
     ("fss_assigner: dw\nfss_cls: qfl\n", [": fss_cls=qfl with fss_assigner=dw"])],
)  # fmt: skip
def test_a_bad_value_in_a_cfg_yaml_names_the_file(train_args, tmp_path, text, expected):
    """A bad `fss_*` value brought by `cfg=` names the file and the key's line (values bad only together: the file)."""
    user = tmp_path / "my_fss.yaml"
    user.write_text(text)
    proc = yolo("detect", "train", f"cfg={user}", "trainer=ultralytics_fss.FSSTrainer", *cli_args(train_args),
                cwd=tmp_path)  # fmt: skip
    check_error(proc, run_dir(train_args), f"{user}{expected[0]}", *expected[1:])


@pytest.mark.slow
def test_other_modes_reject_trainer(train_args, tmp_path):
    proc = yolo("val", "trainer=ultralytics_fss.FSSTrainer", f"data={train_args['data']}", cwd=tmp_path)
    check_error(proc, run_dir(train_args), "trainer=", "mode=val")


def test_hook_installed_and_inert_elsewhere():
    """The .pth is in site-packages; outside the yolo script it imports neither Ultralytics nor torch, and patches
    nothing."""
    import _ultralytics_fss_hook as hook

    site = Path(sysconfig.get_paths()["purelib"])
    assert (site / "ultralytics_fss_hook.pth").read_text().strip() == "import _ultralytics_fss_hook"
    code = "import sys; print(sorted(m for m in ('ultralytics', 'torch', '_ultralytics_fss_hook') if m in sys.modules),"
    code += " any(getattr(f, '__module__', '') == '_ultralytics_fss_hook' for f in sys.meta_path))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["['_ultralytics_fss_hook']", "False"], proc.stdout + proc.stderr
    assert hook.is_console_script(["/venv/bin/yolo", "train"], ["/venv/bin/python", "/venv/bin/yolo", "train"])
    assert hook.is_console_script([r"C:\venv\Scripts\yolo.exe", "train"], [r"C:\venv\Scripts\yolo.exe", "train"])
    assert hook.is_console_script(["/venv/bin/ultralytics"], ["/venv/bin/python", "/venv/bin/ultralytics"])
    assert not hook.is_console_script(["-c"], ["python", "-c", "pass"])
    assert not hook.is_console_script(["/x/yolo"], ["python", "-m", "yolo"])  # a module named yolo, not the script
    assert not hook.is_console_script(["/venv/bin/pytest"], ["/venv/bin/python", "/venv/bin/pytest"])


def test_recorded_trainer_paths_resolve(tmp_path):
    """What `yolo train resume` reads from a checkpoint: the current public path and the path of earlier releases
    both plan an FSSTrainer run."""
    for recorded in ("ultralytics_fss.FSSTrainer", "ultralytics_fss.trainer.FSSTrainer"):
        ckpt = {"train_args": {"trainer": recorded, "model": "yolo11n.yaml", "task": "detect", "fss_beta": 5.0}}
        torch.save(ckpt, tmp_path / "last.pt")
        cls, overrides = plan(parse_args(["detect", "train", "resume", f"model={tmp_path / 'last.pt'}"]))
        assert cls is FSSTrainer and overrides["resume"] is True


def test_shipped_yamls_match_defaults():
    """fss.yaml carries exactly the defaults of ultralytics_fss.train.cfg; the recipes hold the paper's settings."""
    from ultralytics_fss import FSS_DEFAULTS, check_fss_args

    fss = YAML.load(RECIPES / "fss.yaml")
    assert fss.pop("trainer") == "ultralytics_fss.FSSTrainer" and fss == FSS_DEFAULTS
    coco = YAML.load(RECIPES / "fss_coco.yaml")
    paper = dict(optimizer="SGD", lr0=0.01, momentum=0.937, weight_decay=0.0005, warmup_epochs=3, cos_lr=True,
                 epochs=200, pretrained=False, imgsz=640, fss_u=2.0, fss_norm="npos", fss_box="w",
                 fss_target="iou")  # fmt: skip; the paper's Eq. (9), not the package's loss defaults
    assert {k: coco[k] for k in paper} == paper
    dota = YAML.load(RECIPES / "fss_dota.yaml")
    assert dota["imgsz"] == 1024
    assert {k: dota[k] for k in paper if k != "imgsz"} == {k: v for k, v in paper.items() if k != "imgsz"}
    for recipe in (coco, dota):
        check_fss_args(recipe)
    assert (Path(__file__).parents[1] / "cfg" / "fss.yaml").is_file()  # the top-level cfg/ directory of the layout
