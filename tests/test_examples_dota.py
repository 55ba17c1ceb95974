"""Smoke test of examples/dota_tile_and_train.py on tiny settings: tile, train one epoch, predict."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT.parent / "shared" / "data" / "dota-examples"


def test_dota_tile_and_train_example(tmp_path):
    """The example runs end to end and leaves tiles Ultralytics accepts, trained weights and a prediction."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, str(ROOT / "examples" / "dota_tile_and_train.py"), str(EXAMPLES), "--out", str(tmp_path),
           "--crop", "256", "--imgsz", "64", "--epochs", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    tiles = sorted((tmp_path / "tiles" / "images" / "train").glob("*.png"))
    labels = sorted((tmp_path / "tiles" / "labels" / "train").glob("*.txt"))
    assert tiles and [p.stem for p in tiles] == [p.stem for p in labels]
    assert (tmp_path / "tiles" / "data.yaml").is_file() and (tmp_path / "tiles" / "manifest.csv").is_file()
    assert re.search(r"\b0 corrupt", out) and not re.search(r"\b[1-9]\d* corrupt", out)  # Ultralytics' checks
    assert out.count("label file without image") == 5  # the five example label files without images, reported
    assert re.search(r"(\d+) tiles, (\d+) object labels", out)
    assert (tmp_path / "train" / "weights" / "best.pt").is_file()
    assert re.search(r"predicted \d+ boxes on P\d+__1__\d+___\d+\.png", out)
