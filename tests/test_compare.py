"""`python -m ultralytics_fss.compare`: variant parsing, the paired statistics, and a real tiny comparison that
resumes instead of retraining."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from ultralytics_fss.evidence.compare import (
    BUILTIN,
    differences_line,
    means_table,
    paired,
    parse_variant,
    run_all,
    summary_table,
    summary_text,
)


def test_variants_parse_and_bad_ones_are_named():
    assert parse_variant("tal") == ("tal", None) and parse_variant("atss") == ("atss", {"fss_assigner": "atss"})
    assert parse_variant("q5:fss_q=5,fss_rescue=True") == ("q5", {"fss_q": 5, "fss_rescue": True})
    for spec, words in [("nope", "unknown variant 'nope'"), ("x:q=5", "'q=5' is not fss_key=value"),
                        ("x:fss_q=0", "fss_q=0"), ("x:fss_nope=1", "fss_nope")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            parse_variant(spec)
    assert set(BUILTIN) == {"tal", "fss", "sel", "sel+prior", "maxiou", "atss", "simota", "gfl", "paa", "dw"}
    assert parse_variant("paa")[1] == {"fss_assigner": "paa"} and parse_variant("dw")[1] == {"fss_assigner": "dw"}
    assert parse_variant("gfl")[1] == {"fss_assigner": "atss", "fss_cls": "qfl", "fss_target": "iou"}


def test_paired_difference_and_interval():
    base, other = {0: 0.30, 1: 0.32, 2: 0.31}, {0: 0.33, 1: 0.34, 2: 0.34}
    mean, half = paired(other, base)
    d = [0.03, 0.02, 0.03]
    sd = math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    assert mean == pytest.approx(sum(d) / 3) and half == pytest.approx(4.303 * sd / math.sqrt(3))
    assert math.isnan(paired({0: 0.4}, base)[1]) and paired({5: 0.4}, base) is None
    rows = [dict(variant=v, seed=s, AP=vals[s]) for v, vals in (("tal", base), ("fss", other)) for s in vals]
    table = summary_table(rows, "AP")
    assert "| fss | 0.330 | 0.340 | 0.340 | 0.337 +- 0.006 | +2.7 | +- 1.4 |" in table
    assert table.splitlines()[0] == ("| variant | seed 0 | seed 1 | seed 2 | mean +- std | vs tal, points (mean of "
                                     "paired differences) | 95% interval, points (t over seeds) |")  # fmt: skip
    one = summary_table([r for r in rows if r["seed"] == 0], "AP")  # one seed: no spread, no interval
    assert one.splitlines()[0] == "| variant | seed 0 | vs tal, points |" and "| fss | 0.330 | +3.0 |" in one
    assert "interval" not in one and "+-" not in one
    assert differences_line(rows[::3][:1] + rows[3:4]) == ("COCO AP of best.pt (fraction of 1): tal 0.300; fss 0.330, "
                                                           "+3.0 points (1 seed: no interval; more --seeds give one)")
    assert differences_line(rows).endswith("fss 0.337, +2.7 points +- 1.4 (95% interval, 3 seeds)")
    for r in rows:
        r.update({"AP50": 2 * r["AP"], "AP75": r["AP"] / 2, "mAP50": 0.5, "mAP50-95": r["AP"],
                  "pos/GT": 3.0 + r["seed"], "s/epoch": 1.0})  # fmt: skip
    assert "| fss | 3 | 0.337 | 0.673 | 0.168 | 0.500 | 0.337 | 4.00 | 1.0 |" in means_table(rows)
    text = summary_text([{**r, "task": "detect", "folder": "f"} for r in rows])
    titles = [line for line in text.splitlines() if line.startswith("### ")]  # every table named, in summary.md too
    assert titles[0].startswith("### COCO AP (pycocotools: boxes, IoU 0.50:0.95) of best.pt on the val split")
    assert titles[1].startswith("### Ultralytics mAP50-95 (boxes) of best.pt") and len(titles) == 4
    assert all("fraction" in t for t in titles[:3]) and len(set(titles)) == 4


def summary_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tiny_comparison_writes_summary_and_resumes(tiny_data, tmp_path):
    args = dict(model="yolo11n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", workers=0)
    rows = run_all(tmp_path, str(tiny_data), ["tal", "q3:fss_q=3"], [0], args)
    assert [r["variant"] for r in rows] == ["tal", "q3"]
    table = summary_rows(tmp_path / "summary.csv")
    assert [t["variant"] for t in table] == ["tal", "q3"] and {"AP75", "ARl", "mAP50-95", "pos_per_gt"} <= set(table[0])
    assert [t["folder"] for t in table] == ["tal-seed0", "q3-seed0"]
    assert (tmp_path / "q3-seed0" / "coco" / "coco_metrics.json").is_file()
    stored = json.loads((tmp_path / "q3-seed0" / "compare.json").read_text())
    record = stored["record"]
    assert record["fss"]["fss_q"] == 3 and record["seed"] == 0 and record["train_args"]["epochs"] == 1
    assert record["data"]["labels"] and record["versions"]["ultralytics"] and record["device_type"] == "cpu"
    stamp = (tmp_path / "q3-seed0" / "compare.json").stat().st_mtime
    again = run_all(tmp_path, str(tiny_data), ["tal", "q3:fss_q=3"], [0], args)  # everything done: nothing trains
    assert (tmp_path / "q3-seed0" / "compare.json").stat().st_mtime == stamp and again == rows


@pytest.mark.slow
def test_the_task_comes_from_the_model_not_its_file_name(tmp_path):
    """An obb model YAML saved as `aerial.yaml` trains its `tal` run with Ultralytics' obb trainer (and its `fss`
    run with the rotated assigner): the task is read from the YAML's head, as `yolo train` reads it, and nothing
    warns that the task had to be guessed."""
    from ultralytics.nn.tasks import yaml_model_load
    from ultralytics.utils import YAML

    from ultralytics_fss.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", images=6, imgsz=64, objects=(2, 4), size=(0.2, 0.4), task="obb")
    cfg = tmp_path / "aerial.yaml"
    YAML.save(cfg, {k: v for k, v in yaml_model_load("yolo11n-obb.yaml").items() if k != "yaml_file"} | {"nc": 3})
    proc = subprocess.run([sys.executable, "-m", "ultralytics_fss.compare", "--data", str(data), "--model", str(cfg),
                           "--variants", "tal", "fss", "--seeds", "0", "--epochs", "1", "--imgsz", "64", "--batch",
                           "2", "--project", str(tmp_path / "p"), "workers=0"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Unable to automatically guess" not in proc.stdout + proc.stderr
    for run in ("tal-seed0", "fss-seed0"):
        stored = json.loads((tmp_path / "p" / run / "compare.json").read_text())
        assert stored["result"] is not None and stored["result"]["mAP50-95"] >= 0
        assert (tmp_path / "p" / run / "args.yaml").read_text().count("task: obb") == 1


@pytest.mark.slow
def test_other_arguments_never_reuse_a_run_and_nothing_is_lost(tiny_data, tmp_path, caplog):
    """The issue's scenario: the same command with another schedule trains new runs into their own folders, names
    what differs, and keeps the earlier runs, their files and the earlier study's summary; a changed label file is a
    different dataset, an unfinished run resumes."""
    import logging

    args = dict(model="yolo11n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", workers=0)
    first = run_all(tmp_path, str(tiny_data), ["tal", "fss"], [0], args)
    first_summary = (tmp_path / "summary.md").read_text()
    ultralytics_logger = logging.getLogger("ultralytics")
    ultralytics_logger.addHandler(caplog.handler)
    try:
        second = run_all(tmp_path, str(tiny_data), ["fss"], [0], {**args, "epochs": 2})
    finally:
        ultralytics_logger.removeHandler(caplog.handler)
    assert [r["folder"] for r in second] == ["fss-seed0-2"] and len(second[0]["epochs"]) == 2
    assert "fss-seed0 holds another run (train_args.epochs: 1 -> 2)" in caplog.text
    assert [t["folder"] for t in summary_rows(tmp_path / "summary.csv")] == ["fss-seed0-2"]
    studies = {p.read_text() for p in (tmp_path / "summaries").glob("*/summary.md")}
    assert first_summary in studies and len(studies) == 2  # the first study's summary is kept
    assert json.loads((tmp_path / "fss-seed0" / "compare.json").read_text())["result"] == first[1]  # untouched
    assert len(first[1]["epochs"]) == 1

    # Same arguments, data changed under the same YAML: a new run, never the old one.
    from ultralytics_fss.evidence.identity import dataset_fingerprint

    before = dataset_fingerprint(tiny_data)
    label = next((tiny_data.parent / "labels" / "train").glob("*.txt"))
    text = label.read_text()
    try:
        label.write_text(text.replace("0 ", "1 ", 1) if text.startswith("0 ") else "0" + text[1:])
        assert dataset_fingerprint(tiny_data)["labels"] != before["labels"]
    finally:
        label.write_text(text)
    assert dataset_fingerprint(tiny_data) == before

    # A run stopped before its result was stored (here after training) runs again in its own folder.
    stored = json.loads((tmp_path / "tal-seed0" / "compare.json").read_text())
    (tmp_path / "tal-seed0" / "compare.json").write_text(json.dumps({**stored, "result": None}))
    resumed = run_all(tmp_path, str(tiny_data), ["tal"], [0], args)
    assert [r["folder"] for r in resumed] == ["tal-seed0"] and not (tmp_path / "tal-seed0-2").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--variants", "tal", "bogus"], "unknown variant 'bogus'"),
        (["nokey=1"], "'nokey=1' is not an Ultralytics train argument"),
        (["fss_q=3"], "fss_\\* keys go in a variant"),
        (["--model", "yolo11n-cls.yaml"], "is a classify model; FSS trains detect, obb, segment and pose"),
        (["--model", "yolo11n-obb.yaml", "--variants", "tal", "atss", "paa"], "\\['paa'\\] assign axis-aligned boxes"),
        (["--model", "yolo11n-obb.yaml", "--variants", "paa", "dw"], "\\['paa', 'dw'\\] assign axis-aligned"),
        (["--model", "missing/model.yaml"], "--model missing/model.yaml does not exist"),
        (["--model", "nope.pt"], "--model nope.pt does not exist and is not a model Ultralytics downloads"),
        (["--epochs", "0"], "--epochs 0: expected an integer >= 1"),
        (["--variants", "a:fss_q=3", "a:fss_q=4"], "two variants share a name"),
        (["--ray", "--jobs", "2"], "--ray schedules the runs itself"),
        (["--ray", "auto", "--cpus-per-run", "0"], "--cpus-per-run 0: expected an integer >= 1"),
    ],
)
def test_command_line_refuses_bad_input_before_training(tmp_path, capsys, args, words):
    import re

    from ultralytics_fss.compare import main

    with pytest.raises(SystemExit) as e:
        main(["--data", "data.yaml", "--project", str(tmp_path / "p"), *args])
    assert e.value.code == 2 and not (tmp_path / "p").exists()
    err = capsys.readouterr().err
    assert re.search(words, err) and len(err.strip().splitlines()) == 1, err  # one line, no usage or traceback


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "unreadable", "no images"])
def test_missing_or_unreadable_data_is_one_line_and_leaves_no_folder(tmp_path, kind):
    data = tmp_path / "data.yaml"
    if kind == "unreadable":
        data.write_text("names: [a]\n")  # no train / val
    elif kind == "no images":
        (tmp_path / "empty").mkdir()
        data.write_text(f"path: {tmp_path}\ntrain: empty\nval: empty\nnames: [a]\n")
    proc = subprocess.run([sys.executable, "-m", "ultralytics_fss.compare", "--data", str(data), "--project",
                           str(tmp_path / "p"), "--epochs", "1"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and not (tmp_path / "p").exists(), proc.stderr
    lines = [x for x in proc.stderr.strip().splitlines() if not x.startswith("WARNING")]
    assert len(lines) == 1 and str(data) in lines[0], proc.stderr


@pytest.mark.parametrize("args, words", [(["--images", "0"], "images=0 is out of range"),
                                         (["--imgsz", "8"], "imgsz=8 is out of range"),
                                         (["--objects", "5", "5"], "objects=\\(5, 5\\) is out of range")])  # fmt: skip
def test_demo_refuses_bad_sizes_in_one_line(tmp_path, capsys, args, words):
    import re

    from ultralytics_fss.demo import main

    with pytest.raises(SystemExit) as e:
        main(["--project", str(tmp_path / "p"), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and re.search(words, err) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").rglob("*.png"))


@pytest.mark.parametrize(
    "module, shown",
    [
        ("evaluate", {"--split": "val", "--imgsz": "640", "--batch": "16", "--out": "runs/coco"}),
        ("compare", {"--model": "yolo11n.yaml", "--variants": "tal fss", "--seeds": "0 1 2", "--epochs": "100",
                     "--imgsz": "640", "--batch": "16", "--device": "cpu", "--jobs": "1", "--project": "runs/compare"}),
        ("visualize", {"--imgsz": "640", "--gt": "4", "--order": "largest", "--device": "cpu", "--out": "assign.png"}),
        ("demo", {"--images": "400", "--imgsz": "128", "--epochs": "20", "--batch": "8", "--lr0": "0.005", "--device":
                  "cpu", "--workers": "0", "--task": "detect", "--seeds": "0", "--project": "runs/fss-demo"}),
    ],
)  # fmt: skip
def test_help_shows_every_default(capsys, module, shown):
    """`--help` of evaluate, compare, visualize and demo gives each option's default, and no `(default: None)`."""
    import importlib
    import re

    with pytest.raises(SystemExit) as e:
        importlib.import_module(f"ultralytics_fss.{module}").main(["--help"])
    text = capsys.readouterr().out
    blocks = {m[1]: " ".join(m[0].split()) for m in re.finditer(r"^  (--[\w-]+)(?:.(?!^  -))*", text, re.M | re.S)}
    assert e.value.code == 0 and "(default: None)" not in text
    for flag, default in shown.items():
        assert f"(default: {default})" in blocks[flag], blocks.get(flag)


@pytest.mark.slow
def test_ray_runs_give_the_local_summary(tiny_data, tmp_path):
    """`--ray` on a local Ray instance (Ray's default: this machine's 2 CPUs, one per run) trains the same runs as
    the local scheduler (`--jobs 2`: one thread per run too), into the same folders, with the same summary (a rerun
    trains nothing whatever the scheduler: `train_planned` skips stored results before scheduling)."""
    from ultralytics_fss.compare import main

    common = ["--data", str(tiny_data), "--variants", "fss", "--seeds", "0", "--epochs", "1", "--imgsz", "64",
              "--batch", "4"]  # fmt: skip
    main([*common, "--project", str(tmp_path / "local"), "--jobs", "2", "workers=0"])  # one run: --jobs 2's code path
    main([*common, "--project", str(tmp_path / "ray"), "--ray", "workers=0"])  # "workers=0": a train argument
    local, on_ray = (summary_rows(tmp_path / p / "summary.csv") for p in ("local", "ray"))
    assert [r["folder"] for r in on_ray] == ["fss-seed0"]
    assert [{k: v for k, v in r.items() if k != "s/epoch"} for r in on_ray] == [
        {k: v for k, v in r.items() if k != "s/epoch"} for r in local]  # fmt: skip
    assert float(on_ray[0]["pos_per_gt"]) > 0 and on_ray[0]["k_mean"]  # FSS statistics, not empty cells
    assert sorted(p.name for p in (tmp_path / "ray" / "logs").iterdir()) == ["fss-seed0.log"]
    for run in ("fss-seed0",):
        stored = json.loads((tmp_path / "ray" / run / "compare.json").read_text())
        assert stored["result"] and stored["record"]["device_type"] == "cpu"
        assert (tmp_path / "ray" / run / "weights" / "best.pt").is_file()
