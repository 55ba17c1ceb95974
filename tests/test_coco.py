"""COCO metrics with pycocotools on YOLO datasets: known answers from hand-made predictions, original-image pixels,
consistent class ids, both prediction formats, clear errors, and a real model end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from ultralytics.utils import YAML

from ultralytics_fss.evidence.coco import COCO_KEYS, coco_metrics, evaluate, ground_truth, read_predictions

# Two images of different sizes; boxes in original pixels (x1, y1, x2, y2): a small and a medium object of class 0.
IMAGES = {"wide": (100, 200), "tall": (128, 64)}  # name: (height, width)
BOXES = {"wide": [(0, 100, 20, 150, 70)], "tall": [(0, 10, 30, 30, 50)]}  # 50x50 (medium), 20x20 (small)


def write_dataset(root):
    for name, (h, w) in IMAGES.items():
        (root / "images" / "val").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "val").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / "val" / f"{name}.png"), np.zeros((h, w, 3), np.uint8))
        rows = [f"{c} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"
                for c, x1, y1, x2, y2 in BOXES[name]]  # fmt: skip
        (root / "labels" / "val" / f"{name}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    YAML.save(data, {"path": str(root), "train": "images/val", "val": "images/val", "names": {0: "a", 1: "b"}})
    return data


def write_predictions(folder, boxes):
    """YOLO txt predictions (`cls cx cy w h conf`, normalised to each image) from pixel boxes per image."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in boxes.items():
        h, w = IMAGES[name]
        lines = [f"{c} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h} {s}"
                 for c, x1, y1, x2, y2, s in rows]  # fmt: skip
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def data(tmp_path):
    return write_dataset(tmp_path / "ds")


def test_ground_truth_in_original_pixels(data):
    gt = ground_truth(data)
    assert [(im["file_name"], im["width"], im["height"]) for im in gt["images"]] == [("tall.png", 64, 128),
                                                                                      ("wide.png", 200, 100)]
    bboxes = sorted(tuple(round(v, 3) for v in a["bbox"]) for a in gt["annotations"])
    assert bboxes == [(10, 30, 20, 20), (100, 20, 50, 50)]
    assert sorted(a["area"] for a in gt["annotations"]) == pytest.approx([400, 2500])
    assert {c["id"]: c["name"] for c in gt["categories"]} == {0: "a", 1: "b"} and not any(
        a["iscrowd"] for a in gt["annotations"])


def test_perfect_and_known_predictions(data, tmp_path):
    gt = ground_truth(data)
    exact = {n: [(*b, 0.9) for b in rows] for n, rows in BOXES.items()}
    m = coco_metrics(gt, read_predictions(write_predictions(tmp_path / "p1", exact), gt))
    assert list(m) == list(COCO_KEYS)
    assert m["AP"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(1.0)
    assert m["APs"] == pytest.approx(1.0) and m["APm"] == pytest.approx(1.0) and m["APl"] == -1  # no large GT
    assert m["ARl"] == -1 and m["AR100"] == pytest.approx(1.0)

    # The medium box shifted by 11.7 px: IoU 38.3 / 61.7 = 0.62, a match at IoU thresholds 0.50, 0.55, 0.60 only;
    # scored below the exact small box, so above 0.60 the PR curve is precision 1 up to recall 0.5: AP 51/101.
    shifted = {"wide": [(0, 111.7, 20, 161.7, 70, 0.8)], "tall": [(0, 10, 30, 30, 50, 0.9)]}
    m = coco_metrics(gt, read_predictions(write_predictions(tmp_path / "p2", shifted), gt))
    assert m["AP50"] == pytest.approx(1.0)
    assert m["AP75"] == pytest.approx(51 / 101)
    assert m["AP"] == pytest.approx((3 + 7 * 51 / 101) / 10)
    assert m["APs"] == pytest.approx(1.0) and m["APm"] == pytest.approx(0.3)  # the medium GT: 3 of 10 thresholds

    # The right box with the wrong class finds nothing: classes are matched by id, not by position.
    wrong = {"wide": [(1, 100, 20, 150, 70, 0.9)], "tall": [(0, 10, 30, 30, 50, 0.9)]}
    m = coco_metrics(gt, read_predictions(write_predictions(tmp_path / "p3", wrong), gt))
    assert m["APm"] == pytest.approx(0.0) and m["APs"] == pytest.approx(1.0)


def test_json_predictions_score_like_txt(data, tmp_path):
    gt = ground_truth(data)
    folder = write_predictions(tmp_path / "p", {n: [(*b, 0.7) for b in r] for n, r in BOXES.items()})
    rows = read_predictions(folder, gt)
    as_json = tmp_path / "preds.json"
    as_json.write_text(json.dumps([{k: r[k] for k in ("file_name", "category_id", "bbox", "score")} for r in rows]))
    assert coco_metrics(gt, read_predictions(as_json, gt)) == coco_metrics(gt, rows)


def test_bad_input_is_named_and_nothing_is_written(data, tmp_path):
    gt = ground_truth(data)
    bad = write_predictions(tmp_path / "bad", {"wide": [(0, 1, 1, 5, 5, 0.5)]})
    (bad / "nosuch.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n")
    with pytest.raises(ValueError, match="nosuch.txt: names no image"):
        read_predictions(bad, gt)
    (bad / "nosuch.txt").unlink()
    (bad / "wide.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n0 0.5 0.5 0.1\n")
    with pytest.raises(ValueError, match=r"wide.txt:2: expected"):
        evaluate(data, predictions=bad, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="no .txt files"):
        read_predictions((tmp_path / "empty").mkdir() or tmp_path / "empty", gt)
    for f in (data.parent / "labels" / "val").glob("*.txt"):
        f.unlink()
    with pytest.raises(ValueError, match="no label files"):
        ground_truth(data)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate(data, out=tmp_path / "out")


@pytest.mark.slow
def test_command_line_with_a_trained_model(train_args, tiny_data, tmp_path):
    from ultralytics_fss import FSSTrainer

    trainer = FSSTrainer(overrides=train_args)
    trainer.train()
    out = tmp_path / "coco"
    cmd = [sys.executable, "-m", "ultralytics_fss.evaluate", "--model", str(trainer.best), "--data", str(tiny_data),
           "--imgsz", "64", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "coco_metrics.json").read_text())
    assert list(metrics) == list(COCO_KEYS) and all(-1 <= v <= 1 for v in metrics.values())
    gt = json.loads((out / "ground_truth.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    assert len(gt["images"]) == 4 and all({"image_id", "file_name", "bbox", "score"} <= p.keys() for p in preds)
    assert "AR100" in proc.stderr + proc.stdout  # the printed table
    # Re-scoring the written files gives the same numbers.
    assert coco_metrics({**gt, "images": [{**im, "key": ""} for im in gt["images"]]}, preds) == pytest.approx(metrics)


@pytest.mark.slow
def test_training_option_adds_the_numbers_to_results_csv(train_args):
    from conftest import read_csv

    from ultralytics_fss import FSSTrainer

    trainer = FSSTrainer(overrides={**train_args, "epochs": 2, "fss_coco": True})
    before = {}  # the last row as Ultralytics wrote it, before the COCO callback (added later) runs
    trainer.add_callback("on_train_end", lambda t: before.update(read_csv(t.csv)[-1]))
    trainer.train()
    rows = read_csv(trainer.csv)
    assert len(rows) == 2 and rows[0]["metrics/AP75(B)"] == ""
    last = {k: float(rows[-1][f"metrics/{k}(B)"]) for k in COCO_KEYS}
    assert last == pytest.approx(json.loads((trainer.save_dir / "coco" / "coco_metrics.json").read_text()), abs=1e-4)
    assert before and {k: rows[-1][k] for k in before} == before  # Ultralytics' own columns untouched


@pytest.mark.parametrize(
    "name, content, where, words",
    [
        ("p.json", '[{"file_name": "wide.png",', ":1: not valid JSON", "Expecting"),
        ("p.json", '{"file_name": "wide.png"}', ": expected a JSON list of COCO results", "got a JSON object"),
        ("p.json", '[{"file_name": "wide.png", "category_id": 0, "bbox": [1, 2, 3, 4]}]', ": row 0: no 'score'",
         "each row needs file_name, category_id, bbox, score"),
        ("p.json", '[{"file_name": "wide.png", "category_id": 0, "bbox": [1, 2, 3, 4], "score": 1}, 7]',
         ": row 1: expected an object", "got a JSON number"),
        ("p.json", '[{"file_name": "wide.png", "category_id": 0, "bbox": [1, 2], "score": 1}]', ": row 0: bbox",
         "four numbers"),
        ("p/wide.txt", "0 0.5 0.5 0.1 0.1 0.9\n0 0.5 abc 0.1 0.1 0.9\n", ":2: 'abc' is not a number", "0.5 abc"),
    ],
    ids=["not-json", "object-not-list", "no-score", "row-not-object", "short-bbox", "text-in-txt-row"],
)  # fmt: skip
def test_bad_prediction_files_give_one_line_with_file_and_row(data, tmp_path, capsys, name, content, where, words):
    """Malformed JSON, an object instead of a list, a row without score, a non-object row, a short bbox, text in a
    txt row: one line `prog: error: FILE:LINE ...` or `FILE: row N ...`, exit 2, nothing written."""
    from ultralytics_fss.evaluate import main

    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    source = path if name.endswith(".json") else path.parent
    with pytest.raises(SystemExit) as e:
        main(["--predictions", str(source), "--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"python -m ultralytics_fss.evaluate: error: {path}{where}") and words in err, err
    assert not (tmp_path / "out").exists()


# One DDP rank, as Ultralytics' trainer leaves it at `on_train_end`: the process group is up, rank 0 runs the
# callback, the other ranks skip it (here: stay alive, in no collective, until rank 0 is done or the deadline).
DDP_RANK = """
import json, os, sys, time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

dist.init_process_group("gloo", timeout=timedelta(seconds=600))
from ultralytics_fss.evidence import coco  # after the group: Ultralytics reads RANK from WORLD_SIZE at import

case = json.loads(sys.argv[1])
done = Path(case["save_dir"]) / "rank0.done"
if dist.get_rank() == 0:
    args = SimpleNamespace(data=case["data"], imgsz=64, batch=4, device="cpu")
    coco.on_train_end(SimpleNamespace(best=Path(case["best"]), args=args, save_dir=Path(case["save_dir"]),
                                      csv=Path(case["save_dir"]) / "results.csv", device=torch.device("cpu")))
    done.write_text("ok")
else:
    deadline = time.time() + case["timeout"]
    while not done.exists() and time.time() < deadline:
        time.sleep(0.2)
print(f"rank {dist.get_rank()} finished", flush=True)
"""


@pytest.mark.slow
def test_training_option_on_a_ddp_rank_0_does_not_wait_for_the_other_ranks(tiny_data, tmp_path, repo_env):
    """Two real gloo ranks on CPU: rank 0's `on_train_end` returns (Ultralytics' validator in the rank itself would
    wait at a barrier for the finished rank 1), with the numbers a single process computes."""
    import socket

    import torch
    from conftest import read_csv
    from ultralytics.nn.tasks import DetectionModel

    from ultralytics_fss.evidence.coco import on_train_end

    names = YAML.load(tiny_data)["names"]
    best = tmp_path / "best.pt"
    torch.manual_seed(0)
    model = DetectionModel("yolo11n.yaml", nc=len(names), verbose=False)
    torch.save({"model": model.half(), "train_args": {"imgsz": 64, "task": "detect"}}, best)
    save_dir = tmp_path / "run"
    save_dir.mkdir()
    (save_dir / "results.csv").write_text("epoch,metrics/mAP50(B)\n1,0.0\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    timeout = 240
    case = json.dumps(dict(data=str(tiny_data), best=str(best), save_dir=str(save_dir), timeout=timeout))
    procs = []
    for rank in (0, 1):
        env = {**repo_env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", DDP_RANK, case], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"rank 0's on_train_end did not return in {timeout} s (a collective the other ranks never join)")
    for rank, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0 and f"rank {rank} finished" in out, out[-3000:]
    assert (save_dir / "rank0.done").exists()
    row = read_csv(save_dir / "results.csv")[-1]
    ddp = {k: float(row[f"metrics/{k}(B)"]) for k in COCO_KEYS}
    # The same callback in this (single) process: the same numbers.
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "results.csv").write_text("epoch,metrics/mAP50(B)\n1,0.0\n")
    args = SimpleNamespace(data=str(tiny_data), imgsz=64, batch=4, device="cpu")
    on_train_end(SimpleNamespace(best=best, args=args, save_dir=tmp_path / "single",
                                 csv=tmp_path / "single" / "results.csv", device=torch.device("cpu")))  # fmt: skip
    single = {k: float(read_csv(tmp_path / "single" / "results.csv")[-1][f"metrics/{k}(B)"]) for k in COCO_KEYS}
    assert ddp == single
