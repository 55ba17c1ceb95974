"""Check: our COCO metrics (``ultralytics_fss.evidence.coco``, pycocotools) against Ultralytics' ``save_json`` path.

Ultralytics' ``model.val(save_json=True)`` on a custom detect dataset builds a COCO ground truth from its own labels
and scores its predictions with faster-coco-eval; ``ultralytics_fss.evidence.coco.evaluate`` (``python -m
ultralytics_fss.evaluate``) builds the ground truth from the split's YOLO labels and scores the validator's
``save_txt`` predictions with pycocotools. Both run here on the same model, data, split and image size, and the twelve
COCO numbers are printed side by side, with Ultralytics' own mAP50 and mAP50-95 (its interpolation).

Without ``--model`` and ``--data`` it is self-contained: it generates the accuracy study's shapes data
(``make_dataset(images=500, imgsz=160, objects=(6, 22), seed=1234)``) and trains ``yolo11n.yaml`` with ``FSSTrainer``
for ``--epochs`` epochs (seed 0), then scores ``best.pt``.

Needs faster-coco-eval, which Ultralytics' ``save_json`` path uses and this package does not require:
``pip install faster-coco-eval``.

Examples:
    python benchmarks/coco_crosscheck.py                                   # generate, train 10 epochs, compare
    python benchmarks/coco_crosscheck.py --model runs/detect/train/weights/best.pt --data data.yaml --imgsz 160
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import sys
import tempfile
from pathlib import Path

# One line of COCOeval's summary, as faster-coco-eval prints it through Ultralytics' LOGGER.
_SUMMARY = re.compile(
    r"Average (Precision|Recall)\s+\((AP|AR)\) @\[ IoU=(\S+)\s*\| area=\s*(\w+) \| maxDets=\s*(\d+) \] = (-?[\d.]+)"
)
# (AP/AR, IoU, area, maxDets) of the summary's lines in COCO_KEYS order.
_KEYS = {
    ("AP", "0.50:0.95", "all", "100"): "AP", ("AP", "0.50", "all", "100"): "AP50",
    ("AP", "0.75", "all", "100"): "AP75", ("AP", "0.50:0.95", "small", "100"): "APs",
    ("AP", "0.50:0.95", "medium", "100"): "APm", ("AP", "0.50:0.95", "large", "100"): "APl",
    ("AR", "0.50:0.95", "all", "1"): "AR1", ("AR", "0.50:0.95", "all", "10"): "AR10",
    ("AR", "0.50:0.95", "all", "100"): "AR100", ("AR", "0.50:0.95", "small", "100"): "ARs",
    ("AR", "0.50:0.95", "medium", "100"): "ARm", ("AR", "0.50:0.95", "large", "100"): "ARl",
}  # fmt: skip


def fail(message: str) -> None:
    """Bad arguments or a missing package: one line on stderr, exit status 2."""
    print(f"coco_crosscheck: {message}", file=sys.stderr)
    sys.exit(2)


class _Lines(logging.Handler):
    """Collects the messages logged while it is attached."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.extend(record.getMessage().splitlines())


def ultralytics_save_json(model: Path, data: Path, out: Path, **val_args) -> tuple[dict[str, float], float, float]:
    """Ultralytics' own path: ``YOLO(model).val(save_json=True)``, scored by faster-coco-eval.

    Returns:
        coco (dict[str, float]): The twelve numbers of the COCOeval summary it prints, by COCO_KEYS name.
        map50 (float): Ultralytics' own mAP50.
        map (float): Ultralytics' own mAP50-95.
    """
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    handler = _Lines()
    LOGGER.addHandler(handler)
    try:
        m = YOLO(model).val(data=str(data), save_json=True, plots=False, project=str(out), name="val",
                            exist_ok=True, **val_args)  # fmt: skip
    finally:
        LOGGER.removeHandler(handler)
    coco = {}
    for line in handler.lines:
        hit = _SUMMARY.search(line)
        if hit and hit.groups()[1:5] in _KEYS:
            coco[_KEYS[hit.groups()[1:5]]] = float(hit.group(6))
    if len(coco) != len(_KEYS):
        raise RuntimeError("Ultralytics' val printed no faster-coco-eval summary (save_json=True on a detect dataset)")
    return coco, float(m.box.map50), float(m.box.map)


def train(data: Path, project: Path, a: argparse.Namespace) -> Path:
    """Train ``yolo11n.yaml`` from scratch with FSSTrainer; return ``best.pt`` (or ``last.pt``)."""
    from ultralytics_fss import FSSTrainer

    overrides = {
        "model": "yolo11n.yaml", "data": str(data), "epochs": a.epochs, "imgsz": a.imgsz, "batch": a.batch,
        "workers": 0, "deterministic": True, "seed": a.seed, "device": a.device, "plots": False,
        "project": str(project), "name": "train", "exist_ok": True,
    }  # fmt: skip
    trainer = FSSTrainer(overrides=overrides)
    trainer.train()
    return Path(trainer.best if Path(trainer.best).is_file() else trainer.last)


def main(argv: list[str] | None = None) -> int:
    """Make or take the model, score it both ways, print the table; 1 if a number differs at three decimals."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="detect weights to score (default: train one on generated data)")
    p.add_argument("--data", type=Path, help="dataset YAML (default: the generated shapes data)")
    p.add_argument("--split", default="val", help="split to score (default: val)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs without --model (default: 10)")
    p.add_argument("--images", type=int, default=500, help="generated images (default: 500, the accuracy study's)")
    p.add_argument("--imgsz", type=int, default=160, help="training and validation size (default: 160)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--device", default="cpu", help="device (default: cpu)")
    p.add_argument("--dir", type=Path, help="working folder: data, run, outputs (default: a temporary one)")
    a = p.parse_args(argv)
    if importlib.util.find_spec("faster_coco_eval") is None:
        fail("faster-coco-eval is not installed (Ultralytics' save_json scores with it): pip install faster-coco-eval")
    if a.model is not None and not a.model.is_file():
        fail(f"--model {a.model}: no such file")
    if a.model is not None and a.data is None:
        fail("--model needs --data (the dataset YAML it is scored on)")
    if a.data is not None and not a.data.is_file():
        fail(f"--data {a.data}: no such file")
    if min(a.epochs, a.images, a.imgsz, a.batch) < 1:
        fail("--epochs, --images, --imgsz and --batch must be positive")

    from ultralytics_fss.evidence.coco import COCO_KEYS, evaluate
    from ultralytics_fss.synthetic import make_dataset

    val_args = {"split": a.split, "imgsz": a.imgsz, "batch": a.batch, "device": a.device, "workers": 0}
    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        data = a.data or make_dataset(work / "data", images=a.images, imgsz=a.imgsz, objects=(6, 22), seed=1234)
        model = a.model or train(data, work / "runs", a)
        theirs, map50, map5095 = ultralytics_save_json(model, data, work / "ultralytics", **val_args)
        ours = evaluate(data, model=model, out=work / "ours", **val_args)

    import faster_coco_eval
    import pycocotools  # noqa: F401  (imported for its presence; it has no __version__)
    import torch
    import ultralytics

    print(f"\n{model} on {data} ({a.split}, imgsz {a.imgsz}); torch {torch.__version__}, ultralytics "
          f"{ultralytics.__version__}, faster-coco-eval {faster_coco_eval.__version__}\n")  # fmt: skip
    print("| metric | `model.val(save_json=True)` (faster-coco-eval, as printed) | `ultralytics_fss.evaluate` "
          "(pycocotools) | same to 3 decimals |\n|---|---|---|---|")  # fmt: skip
    same = {k: round(ours[k], 3) == theirs[k] for k in COCO_KEYS}
    for k in COCO_KEYS:
        print(f"| {k} | {theirs[k]:.3f} | {ours[k]:.4f} | {'yes' if same[k] else 'NO'} |")
    print(f"\nUltralytics' own metrics (its interpolation): mAP50 {map50:.4f}, mAP50-95 {map5095:.4f}")
    differ = [k for k in COCO_KEYS if not same[k]]
    print(f"{len(COCO_KEYS) - len(differ)} of {len(COCO_KEYS)} numbers the same to the three decimals faster-coco-eval "
          f"prints" + (f"; differ: {', '.join(differ)}" if differ else ""))  # fmt: skip
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
