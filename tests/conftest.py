"""Shared fixtures: a tiny generated detection dataset, and offline defaults for Ultralytics."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py
os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks, no downloads


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """20 images of 64 px with a few overlapping shapes each; returns data.yaml."""
    from ultralytics_fss.demo import make_dataset

    return make_dataset(tmp_path_factory.mktemp("tiny"), images=20, imgsz=64, objects=(3, 8), size=(0.15, 0.35))


@pytest.fixture
def train_args(tiny_data, tmp_path) -> dict:
    """Smallest real training run: one epoch at 64 px on CPU, plots off."""
    return dict(model="yolo11n.yaml", data=str(tiny_data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                project=str(tmp_path), name="run", exist_ok=True, plots=False, pretrained=False, seed=0)
