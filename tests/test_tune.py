"""Tuning with FSS: Ultralytics' Tuner (`model.tune(trainer=FSSTrainer)`, `yolo tune trainer=...`, `enable_fss`) and
Ray Tune on a real local Ray instance (two CPU workers), on the tiny generated dataset, one epoch per iteration.

Assertions read what a user reads: `tune_results.ndjson`, `best_hyperparameters.yaml`, the run folders' args.yaml and
results, Ray's trial results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import ray
from ray import tune as ray_tune
from ultralytics import YOLO
from ultralytics.engine.model import Model
from ultralytics.utils import YAML

from test_cli import yolo
from ultralytics_fss import FSS_SPACE, FSSTrainer, enable_fss
from ultralytics_fss.cli import entrypoint, parse_args, plan
from ultralytics_fss.train.tune import FSSTuner, check_ray_space, check_space, ray_space

FSS_STATS = {"fss/pos_per_gt", "fss/k_mean", "fss/w_max"}  # only an FSS criterion publishes these


def tune_args(tiny_data: Path, tmp_path: Path, **changes) -> dict:
    """The smallest real tune: one epoch at 64 px per iteration, into tmp_path."""
    args = dict(data=str(tiny_data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", project=str(tmp_path),
                name="tune", plots=False, pretrained=False, seed=0)  # fmt: skip
    return {**args, **changes}


def records(tune_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (tune_dir / "tune_results.ndjson").read_text().splitlines() if line]


# --- the space: checked before anything runs --------------------------------------------------------------------


def test_space_ranges_and_choices_are_split_and_typed():
    ranges, choices = check_space({"fss_beta": (2.0, 8.0), "fss_q": (5, 15), "lr0": (1e-4, 1e-2),
                                   "fss_target": ["iou", "tal"], "fss_prior": ["true", False]})  # fmt: skip
    assert ranges == {"fss_beta": (2.0, 8.0), "fss_q": (5, 15), "lr0": (1e-4, 1e-2)}
    assert choices == {"fss_target": ["iou", "tal"], "fss_prior": [True, False]}  # CLI spellings become booleans
    assert check_space(FSS_SPACE) == (FSS_SPACE, {})
    assert FSS_SPACE["fss_alpha"] == (0.5, 1.0) and FSS_SPACE["fss_beta"] == (4.0, 10.0)  # the paper's Table 4


@pytest.mark.parametrize(
    "space, words",
    [
        ({"fss_gamma": (1.0, 2.0)}, ["space['fss_gamma']", "unknown FSS argument", "fss_beta"]),
        ({"fss_beta": (-1.0, 8.0)}, ["space['fss_beta']=(-1.0, 8.0)", "out of range", ">= 0"]),
        ({"fss_q": (5.0, 15.5)}, ["space['fss_q']=(5.0, 15.5)", "integer", "(5, 15)"]),
        ({"fss_q": (0, 15)}, ["space['fss_q']=(0, 15)", "out of range", ">= 1"]),
        ({"fss_u": (4.0, 1.0)}, ["space['fss_u']", "min > max"]),
        ({"fss_u": (1.0, float("inf"))}, ["space['fss_u']", "finite"]),
        ({"fss_target": ("iou", "tal")}, ["space['fss_target']", "a list of choices"]),
        ({"fss_target": ["iou", "giou"]}, ["space['fss_target']", "'giou'", "out of range"]),
        ({"fss_beta": 6.0}, ["space['fss_beta']=6.0", "(min, max[, gain])"]),
        ({"fss_beta": (2.0, 8.0, 1.5)}, ["space['fss_beta']", "gain"]),
        ({"fss_alpha": (0.0, 1.0), "fss_beta": (0.0, 8.0)}, ["fss_alpha + fss_beta must be > 0"]),
    ],
)
def test_bad_space_is_one_line(space, words):
    with pytest.raises(ValueError) as e:
        check_space(space)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


@pytest.mark.parametrize(
    "space, words",
    [
        ({"fss_q": ray_tune.uniform(5, 15)}, ["space['fss_q']", "int", "tune.randint"]),
        ({"fss_beta": ray_tune.uniform(-2, 8)}, ["space['fss_beta']", "out of range"]),
        ({"fss_q": ray_tune.randint(0, 16)}, ["space['fss_q']", "out of range"]),
        ({"fss_target": ray_tune.choice(["iou", "x"])}, ["space['fss_target']", "'x'"]),
        ({"fss_target": ray_tune.uniform(0, 1)}, ["space['fss_target']", "tune.choice"]),
        ({"fss_beta": (2.0, 8.0)}, ["space['fss_beta']", "Ray Tune domain"]),
        ({"fss_gamma": ray_tune.uniform(0, 1)}, ["space['fss_gamma']", "unknown FSS argument"]),
    ],
)
def test_bad_ray_space_is_one_line(space, words):
    with pytest.raises(ValueError) as e:
        check_ray_space(space)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_ray_form_of_the_default_space():
    space = check_ray_space(ray_space())
    assert (space["fss_beta"].lower, space["fss_beta"].upper) == (4.0, 10.0)
    assert type(space["fss_q"]).__name__ == "Integer" and (space["fss_q"].lower, space["fss_q"].upper) == (5, 16)
    assert ray_space({"fss_target": ["iou", "tal"]})["fss_target"].categories == ["iou", "tal"]


def test_yolo_tune_space_yaml(tmp_path):
    """A `space=` YAML: number pairs are ranges, lists of strings choices; in Ray's form with use_ray=True."""
    (tmp_path / "s.yaml").write_text("fss_beta: [2.0, 8.0]\nfss_q: [5, 15, 0.5]\nfss_target: [iou, tal]\n")
    words = ["tune", "trainer=ultralytics_fss.FSSTrainer", "model=yolo11n.yaml", f"space={tmp_path / 's.yaml'}"]
    _, overrides = plan(parse_args(words))
    assert overrides["space"] == {"fss_beta": (2.0, 8.0), "fss_q": (5, 15, 0.5), "fss_target": ["iou", "tal"]}
    _, overrides = plan(parse_args([*words, "use_ray=True"]))
    space = overrides["space"]
    assert (space["fss_beta"].lower, space["fss_beta"].upper) == (2.0, 8.0) and space["fss_q"].upper == 16
    assert space["fss_target"].categories == ["iou", "tal"]
    _, overrides = plan(parse_args(words[:3]))
    assert overrides["space"] is None  # the trainer's default space (FSS_SPACE)


def test_bad_tune_call_stops_before_anything_is_written(tmp_path, tiny_data):
    model = YOLO("yolo11n.yaml")
    calls = [
        (dict(trainer=FSSTrainer, space={"fss_q": (5.0, 15.5)}), "space['fss_q']"),
        (dict(space={"fss_beta": (2.0, 8.0)}), "need trainer=ultralytics_fss.FSSTrainer"),
        (dict(fss_beta=4.0), "need trainer=ultralytics_fss.FSSTrainer"),
        (dict(trainer=FSSTrainer, fss_beta=-1.0), "fss_beta=-1.0 is out of range"),
        (dict(trainer="ultralytics_fss.NoSuchTrainer"), "has no attribute 'NoSuchTrainer'"),
        (dict(trainer=dict), "is not a trainer class"),
        (dict(trainer=FSSTrainer, use_ray=True, space={"fss_q": ray_tune.uniform(5, 15)}), "tune.randint"),
    ]
    for kwargs, words in calls:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            model.tune(iterations=2, **tune_args(tiny_data, tmp_path), **kwargs)
    assert not any(tmp_path.iterdir())  # no tune folder, no run folder


def test_trainer_defined_in_main_is_refused(tmp_path, tiny_data):
    main = type("MainTrainer", (FSSTrainer,), {"__module__": "__main__"})
    with pytest.raises(ValueError, match="defined in __main__"):
        YOLO("yolo11n.yaml").tune(trainer=main, iterations=1, **tune_args(tiny_data, tmp_path))


# --- the one patched method: Ultralytics' own for every call that does not ask for FSS ---------------------------


def test_model_tune_is_routed_and_stock_otherwise():
    from ultralytics_fss.train.tune import wants_fss

    assert Model.tune.__wrapped__.__code__.co_filename.replace("\\", "/").endswith("ultralytics/engine/model.py")
    model = YOLO("yolo11n.yaml")
    assert not wants_fss(model, dict(data="coco8.yaml", space={"lr0": (1e-5, 1e-2)}))
    assert wants_fss(model, dict(trainer=FSSTrainer)) and wants_fss(model, dict(space={"fss_q": (5, 15)}))
    assert wants_fss(enable_fss(YOLO("yolo11n.yaml"), fss_beta=4.0), {})


def test_categorical_and_integer_keys_mutate_within_their_space(tmp_path, tiny_data):
    """Drawn values of FSSTuner: integer keys stay integers within bounds, categorical keys come from their list and
    keep the best result's value about half of the time; results store them under `choices`."""
    space = {"fss_beta": (2.0, 8.0), "fss_q": (5, 15), "fss_target": ["iou", "tal"]}
    tuner = FSSTuner({"model": "yolo11n.yaml", **tune_args(tiny_data, tmp_path), "space": space, "fss_u": 3.0})
    first = tuner._mutate()
    assert first == {"fss_beta": 6.0, "fss_q": 10, "fss_target": "tal"} and tuner.args.fss_u == 3.0  # the defaults
    tuner.tune_dir.mkdir(parents=True)
    for i, (beta, q, target, fitness) in enumerate([(3.0, 7, "iou", 0.5), (6.0, 12, "tal", 0.1)]):
        tuner._save_local_result({"iteration": i + 1, "fitness": fitness, "hyperparameters":
                                  {"fss_beta": beta, "fss_q": q, "fss_target": target}, "datasets": {}})  # fmt: skip
    assert records(tuner.tune_dir)[0]["hyperparameters"] == {"fss_beta": 3.0, "fss_q": 7}
    assert records(tuner.tune_dir)[0]["choices"] == {"fss_target": "iou"}
    drawn = [tuner._mutate() for _ in range(200)]
    assert all(isinstance(h["fss_q"], int) and 5 <= h["fss_q"] <= 15 for h in drawn)
    assert all(2.0 <= h["fss_beta"] <= 8.0 for h in drawn)
    kept = np.mean([h["fss_target"] == "iou" for h in drawn])  # the best result's: kept 1/2 + drawn 1/2 * 1/2
    assert 0.62 < kept < 0.88, kept


# --- real tuning runs ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tuner_trains_every_iteration_with_fss(tmp_path, tiny_data):
    space = {"fss_beta": (2.0, 8.0), "fss_q": (5, 15), "fss_target": ["iou", "tal"]}
    YOLO("yolo11n.yaml").tune(trainer=FSSTrainer, space=space, iterations=2, fss_u=3.0,
                              **tune_args(tiny_data, tmp_path))  # fmt: skip
    tune_dir = tmp_path / "tune"
    found = records(tune_dir)
    assert [r["iteration"] for r in found] == [1, 2]
    for r in found:
        assert set(r["hyperparameters"]) == {"fss_beta", "fss_q"} and isinstance(r["hyperparameters"]["fss_q"], int)
        assert 2.0 <= r["hyperparameters"]["fss_beta"] <= 8.0 and r["choices"]["fss_target"] in ("iou", "tal")
        (metrics,) = r["datasets"].values()
        assert FSS_STATS <= set(metrics) and "metrics/mAP50-95(B)" in metrics  # FSS trained this iteration
    best = YAML.load(tune_dir / "best_hyperparameters.yaml")
    assert set(best) == {"fss_beta", "fss_q", "fss_target"} and isinstance(best["fss_q"], int)
    (run,) = [Path(d) for r in found for d in r["save_dirs"].values() if Path(d).is_dir()]  # the best one is kept
    assert run.parent.name.startswith("multitrain") and run.parent.parent == tmp_path  # as the README says: the
    # iterations' runs are in Ultralytics' MultiTrainer folders under `project=`, not under the tune folder
    args = YAML.load(run / "args.yaml")
    assert args["trainer"] == "ultralytics_fss.FSSTrainer" and args["fss_u"] == 3.0
    assert {k: args[k] for k in best} == best
    trainer = FSSTrainer(overrides={**best, "model": "yolo11n.yaml", **tune_args(tiny_data, tmp_path, name="again")})
    assert {k: getattr(trainer.args, k) for k in best} == best  # the best values go back to FSSTrainer as they are


def test_enable_fss_model_tunes_with_fss_trainer(tmp_path, tiny_data, caplog):
    """`enable_fss(model, ...)` then `model.tune(...)`: FSSTuner with FSSTrainer and the enable_fss values (the
    iterations of a tuner with fixed values train with them: `test_tuner_trains_every_iteration_with_fss`)."""
    import logging

    model = enable_fss(YOLO("yolo11n.yaml"), fss_beta=4.0)
    with caplog.at_level(logging.INFO, logger="ultralytics"):
        model.tune(space={"fss_q": (5, 15)}, iterations=0, **tune_args(tiny_data, tmp_path))
    text = caplog.text
    assert "enable_fss: tuning with trainer=ultralytics_fss.FSSTrainer and {'fss_beta': 4.0}" in text
    assert "iterations train with trainer=ultralytics_fss.FSSTrainer" in text and "'fss_q': (5, 15)" in text


@pytest.mark.slow
def test_yolo_tune_command(tmp_path, tiny_data, caplog):
    """`yolo tune trainer=...` with a space YAML trains with FSS; a bad space is one line, exit 2; without `trainer=`
    the command goes to Ultralytics' entrypoint (which has no tune mode, and says so)."""
    (tmp_path / "space.yaml").write_text("fss_beta: [2.0, 8.0]\nfss_target: [iou, tal]\n")
    words = [f"{k}={v}" for k, v in tune_args(tiny_data, tmp_path).items()]
    proc = yolo("tune", "trainer=ultralytics_fss.FSSTrainer", "model=yolo11n.yaml", "iterations=1",
                f"space={tmp_path / 'space.yaml'}", *words, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (r,) = records(tmp_path / "tune")
    assert set(r["hyperparameters"]) == {"fss_beta"} and set(r["choices"]) == {"fss_target"}
    assert FSS_STATS <= set(next(iter(r["datasets"].values())))

    (tmp_path / "bad.yaml").write_text("fss_q: [5.0, 15.5]\n")
    with pytest.raises(SystemExit) as stop:  # the same entrypoint the `yolo` script's hook calls, in this process
        entrypoint(" ".join(["yolo", "tune", "trainer=ultralytics_fss.FSSTrainer", f"space={tmp_path / 'bad.yaml'}",
                             *words, "name=bad"]))  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "ultralytics_fss:" in r.getMessage() and r.levelname == "ERROR"]
    assert stop.value.code == 2 and len(lines) == 1 and not (tmp_path / "bad").exists()
    assert all(w in lines[0] for w in ("space=", "bad.yaml", "space['fss_q']=(5.0, 15.5)", "integer")), lines
    assert plan(parse_args(["tune", "model=yolo11n.yaml"])) is None  # no trainer=: Ultralytics' own entrypoint


@pytest.mark.slow
def test_ray_tune_trials_train_with_fss(tmp_path, tiny_data):
    """Two trials of a one-epoch Ray Tune search on a local Ray instance with two CPU workers."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    try:
        grid = YOLO("yolo11n.yaml").tune(trainer=FSSTrainer, use_ray=True, iterations=2, fss_u=3.0,
                                         space={"fss_beta": ray_tune.uniform(2, 8), "fss_q": ray_tune.randint(5, 16)},
                                         **tune_args(tiny_data, tmp_path))  # fmt: skip
    finally:
        ray.shutdown()
    results = list(grid)
    assert len(results) == 2 and not any(r.error for r in results)
    for r in results:
        assert 2 <= r.config["fss_beta"] <= 8 and 5 <= r.config["fss_q"] <= 15 and r.config["fss_u"] == 3.0
        assert r.config["trainer"] is FSSTrainer
        assert "metrics/mAP50-95(B)" in r.metrics and FSS_STATS <= set(r.metrics)
    runs = sorted(tmp_path.glob("tune_*/args.yaml"))  # each trial's Ultralytics run folder
    assert len(runs) == 2
    drawn = sorted((r.config["fss_beta"], r.config["fss_q"]) for r in results)
    recorded = [YAML.load(p) for p in runs]
    assert all(a["trainer"] == "ultralytics_fss.FSSTrainer" and a["fss_u"] == 3.0 for a in recorded)
    assert sorted((a["fss_beta"], a["fss_q"]) for a in recorded) == drawn
