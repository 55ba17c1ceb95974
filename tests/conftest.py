"""Shared fixtures and helpers: a tiny generated detection dataset, the detection model families, reading
results.csv, stopping a run after its first epoch, and offline defaults for Ultralytics."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py
os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks, no downloads

# Every Ultralytics detection family FSS trains (end-to-end heads: yolo26n, yolov10n).
FAST_FAMILY = "yolo11n.yaml"  # the one detection family the fast lane builds; the others are marked slow


def by_family(models: list[str], fast: set[str] = frozenset({FAST_FAMILY})) -> list:
    """`models` as pytest params, each marked `slow` unless in `fast` (the fast lane checks one model per task)."""
    return [pytest.param(m, marks=() if m in fast else pytest.mark.slow) for m in models]


FAMILIES = ["yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml", "yolo26n.yaml", "yolov10n.yaml", "yolov5nu.yaml",
            "yolov3-tinyu.yaml", "yolov6n.yaml", "yolov9t.yaml"]  # fmt: skip


def grid_of(imgsz: int | tuple[int, int], strides=(8, 16, 32)) -> list[tuple[int, int]]:
    """(height, width) in cells of each level for an image of `imgsz` (side, or (height, width)) pixels."""
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    return [(h // s, w // s) for s in strides]


def anchors(imgsz: int | tuple[int, int], strides=(8, 16, 32)):
    """(N, 2) anchor centres in pixels, level by level in row-major order, as Ultralytics' loss builds them."""
    import torch
    from ultralytics.utils.tal import make_anchors

    feats = [torch.zeros(1, 1, *hw) for hw in grid_of(imgsz, strides)]
    points, stride = make_anchors(feats, torch.tensor(strides, dtype=torch.float32), 0.5)
    return points * stride


def read_csv(path) -> list[dict[str, str]]:
    """Rows of an Ultralytics results.csv, column names stripped of their padding."""
    with open(path) as f:
        return [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]


class StopAfterFirstEpoch(Exception):
    """Raised by `stop_after_first_epoch` to leave a resumable checkpoint after epoch 1."""


def stop_after_first_epoch(trainer) -> None:
    """`on_fit_epoch_end` callback: kill the run once its first epoch is saved (last.pt is resumable)."""
    raise StopAfterFirstEpoch


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """20 images of 64 px with a few overlapping shapes each; returns data.yaml."""
    from ultralytics_fss.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("tiny"), images=20, imgsz=64, objects=(3, 8), size=(0.15, 0.35))


@pytest.fixture
def train_args(tiny_data, tmp_path) -> dict:
    """Smallest real training run: one epoch at 64 px on CPU, plots off."""
    return dict(model="yolo11n.yaml", data=str(tiny_data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                project=str(tmp_path), name="run", exist_ok=True, plots=False, pretrained=False, seed=0)


# --- DOTA helpers --------------------------------------------------------------------------------------------------
# Used by test_tile_dota.py, test_dota_stages.py and test_examples_dota.py. Uses only `os`, `Path` and `pytest`.
DOTA_EXAMPLES = Path(__file__).resolve().parent / "data" / "dota-examples"  # real DOTA-v1.0 samples, see its README


@pytest.fixture(scope="session")
def dota_examples() -> Path:
    """The DOTA samples shipped in tests/data/dota-examples: two images and seven label files (five without image).

    Fails, never skips, when they are missing: every test that uses them would otherwise check nothing.
    """
    images = sorted(p.name for p in (DOTA_EXAMPLES / "images").glob("*.png"))
    labels = sorted(p.stem for p in (DOTA_EXAMPLES / "labelTxt").glob("*.txt"))
    assert images == ["P0706.png", "P1888.png"], f"DOTA example images missing in {DOTA_EXAMPLES}"
    assert labels == ["P0706", "P0770", "P1088", "P1234", "P1888", "P2598", "P2709"], f"labels missing: {labels}"
    return DOTA_EXAMPLES


@pytest.fixture(scope="session")
def repo_env() -> dict[str, str]:
    """Environment for a subprocess that must run this checkout's code: the repository root first on PYTHONPATH."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
# --- end of DOTA helpers -------------------------------------------------------------------------------------------


def untrained_model(folder: Path, base: str, names: list[str]) -> Path:
    """A freshly built YOLO of ``base`` (e.g. yolo11n-obb.yaml) with the classes ``names``, saved as weights."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    cfg = yaml_model_load(base)
    cfg = {k: v for k, v in cfg.items() if k not in {"yaml_file", "scale"}} | {"nc": len(names)}
    path = folder / base  # keeps the scale letter ("n") in the file name, as Ultralytics reads it
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    model = YOLO(path)
    model.model.names = dict(enumerate(names))
    weights = folder / base.replace(".yaml", ".pt")
    model.save(weights)
    return weights
