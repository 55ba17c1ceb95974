"""Check: ``ultralytics_fss.large_images.merge_back.metric`` against the DOTA devkit's own ``voc_eval`` on the same Task
files.

Builds the devkit's ``polyiou`` with SWIG in a scratch copy (outside the repository; nothing of the devkit is kept),
makes noisy tile predictions on the shipped samples (boxes jittered, missed, duplicated, false boxes, scores rounded
to one decimal so that many tie), merges them with ``merge_dota --pred-dir`` into DOTA's Task files, and scores every
class with objects twice: with our metric and with the devkit's ``dota_evaluation_task1.py`` / ``task2.py``
``voc_eval(..., ovthresh=0.5, use_07_metric=True)``. Task2 ground truth is given to the devkit as axis-aligned label
files (each object's hull), as DOTA's ``hbb`` labels are. Folders written by ``merge_dota`` elsewhere (``--merged``,
e.g. a trained model's) are checked the same way against ``--src``'s labels. Prints per-class AP of both and the
largest difference; exits 1 if it exceeds 1e-9.

Needs ``swig`` and a C++ compiler (``apt-get install -y swig g++``) and the devkit: ``--devkit PATH`` (a checkout of
https://github.com/CAPTAIN-WHU/DOTA_devkit), otherwise it is cloned into a temporary folder (network needed).

Examples:
    python benchmarks/dota_devkit_check.py --devkit ~/src/DOTA_devkit
    python benchmarks/dota_devkit_check.py --devkit ~/src/DOTA_devkit --merged runs/dota/val-merged
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "tests" / "data" / "dota-examples"
DEVKIT_URL = "https://github.com/CAPTAIN-WHU/DOTA_devkit"
DEVKIT_FILES = ("dota_evaluation_task1.py", "dota_evaluation_task2.py", "polyiou.i", "polyiou.cpp", "setup.py")
SPLIT = "train"  # a source folder without split folders is tiled as train
TOLERANCE = 1e-9


def fail(message: str) -> None:
    """Bad arguments or a missing tool: one line on stderr, exit status 2."""
    print(f"dota_devkit_check: {message}", file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------------------------------------ the devkit
def get_devkit(path: Path | None, scratch: Path) -> Path:
    """The devkit's folder: ``path``, or a fresh clone into ``scratch`` (exit 2 if neither works)."""
    if path is None:
        path = scratch / "DOTA_devkit"
        clone = ["git", "clone", "--depth", "1", "--quiet", DEVKIT_URL, str(path)]
        try:
            ok = subprocess.run(clone, capture_output=True, timeout=300, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if not ok:
            fail(f"could not clone {DEVKIT_URL}: this check needs the network, or --devkit PATH to a checkout")
    missing = [f for f in DEVKIT_FILES if not (path / f).is_file()]
    if missing:
        fail(f"--devkit {path}: not a DOTA_devkit checkout ({', '.join(missing)} missing)")
    return path


def build_devkit(devkit: Path, scratch: Path):
    """Copy the devkit's evaluation files to ``scratch``, build ``polyiou`` there with SWIG, import both scripts.

    Returns:
        (tuple[module, module]): ``dota_evaluation_task1`` and ``dota_evaluation_task2``.
    """
    for tool in ("swig", "c++"):
        if shutil.which(tool) is None:
            fail(f"{tool} not found: install SWIG and a C++ compiler (apt-get install -y swig g++)")
    build = scratch / "devkit-build"
    build.mkdir(parents=True, exist_ok=True)
    for f in (*DEVKIT_FILES, "polyiou.h"):
        shutil.copy2(devkit / f, build / f)
    for cmd in (["swig", "-c++", "-python", "polyiou.i"], [sys.executable, "setup.py", "build_ext", "--inplace"]):
        proc = subprocess.run(cmd, cwd=build, capture_output=True, text=True, check=False)
        if proc.returncode:
            fail(f"building polyiou failed: {' '.join(cmd)}: {(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
    os.environ.setdefault("MPLBACKEND", "Agg")  # the scripts import matplotlib.pyplot
    if not hasattr(np, "bool"):  # the scripts use np.bool (removed in NumPy 1.24, back in 2.0)
        np.bool = bool
    sys.path.insert(0, str(build))
    return importlib.import_module("dota_evaluation_task1"), importlib.import_module("dota_evaluation_task2")


def devkit_ap(module, folder: Path, task: str, annotations: Path, imageset: Path, name: str) -> float:
    """The devkit's VOC07 AP of one class from ``folder/{task}_{name}.txt`` (its debug prints silenced).

    An empty Task file gets 0: the devkit's ``voc_eval`` fails on it (it indexes an empty array), and a class with
    objects and no detection has AP 0.
    """
    detfile = folder / f"{task}_{name}.txt"
    if not detfile.is_file() or not detfile.read_text().strip():
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        _, _, ap = module.voc_eval(str(folder / (task + "_{:s}.txt")), str(annotations / "{:s}.txt"), str(imageset),
                                   name, ovthresh=0.5, use_07_metric=True)  # fmt: skip
    return float(ap)


def write_devkit_labels(src_labels: dict[str, Path], root: Path) -> tuple[Path, Path, Path]:
    """The ground truth as the devkit reads it: the DOTA label files (Task1), their hulls (Task2), an image set.

    Returns:
        (tuple[Path, Path, Path]): Task1 label folder, Task2 (hbb) label folder, image-set file.
    """
    obb, hbb = root / "labels-obb", root / "labels-hbb"
    for d in (obb, hbb):
        d.mkdir(parents=True, exist_ok=True)
    for stem, path in src_labels.items():
        shutil.copy2(path, obb / f"{stem}.txt")  # its header lines have < 9 fields: the Task1 script skips them
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            t = line.split()
            if len(t) < 9:
                continue  # header (imagesource, gsd): the Task2 script reads every line
            xy = np.array(t[:8], float).reshape(4, 2)
            (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
            rows.append(f"{x0:g} {y0:g} {x1:g} {y0:g} {x1:g} {y1:g} {x0:g} {y1:g} " + " ".join(t[8:]))
        (hbb / f"{stem}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    imageset = root / "imageset.txt"
    imageset.write_text("".join(f"{s}\n" for s in src_labels), encoding="utf-8")
    return obb, hbb, imageset


# ------------------------------------------------------------------------------------------ noisy predictions
def noisy_predictions(labels: Path, out: Path, fmt: str, nc: int, rng: np.random.Generator) -> int:
    """Per-tile predictions made from the tile labels with noise, as a ``--pred-dir`` of ``merge_dota``.

    Each label is missed (15%) or predicted with its box moved by up to ~15% of its size, scaled by 0.8-1.25 and
    (obb) turned by up to 10 degrees, a similarity transform, so no prediction is a self-intersecting quadrilateral;
    a fifth of them twice (a duplicate); each tile gets 0-3 false boxes of random classes. Scores are rounded to one
    decimal, so many tie. Box centres stay inside their tile.

    Args:
        labels (Path): The tiler's label folder of the split (``cls`` + normalised coordinates per row).
        out (Path): Output folder (created).
        fmt (str): ``detect`` or ``obb``.
        nc (int): Number of classes (of the false boxes).
        rng (np.random.Generator): Random numbers.

    Returns:
        (int): Prediction rows written.
    """
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for f in sorted(labels.glob("*.txt")):
        rows = np.array(f.read_text().split(), float).reshape(-1, 5 if fmt == "detect" else 9)  # (M, 5 | 9)
        rows = rows[rng.random(len(rows)) > 0.15]  # missed
        rows = np.concatenate([rows, rows[rng.random(len(rows)) < 0.2]])  # duplicated (jittered independently below)
        cls = rows[:, 0]
        if fmt == "detect":
            centre, size = rows[:, 1:3], rows[:, 3:5]
        else:
            xy = rows[:, 1:].reshape(-1, 4, 2)
            centre = xy.mean(1)
            size = xy.max(1) - xy.min(1)
        n_false = int(rng.integers(0, 4))
        false_size = rng.uniform(0.02, 0.2, (n_false, 2))
        cls = np.concatenate([cls, rng.integers(0, nc, n_false)])
        centre = np.concatenate([centre, rng.uniform(0.05, 0.95, (n_false, 2))])
        size = np.concatenate([size, false_size])
        if fmt == "obb":  # corners about the centre: the labels', then axis-aligned false boxes
            square = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
            xy = np.concatenate([xy - xy.mean(1, keepdims=True), square[None] * false_size[:, None]])
        n = len(cls)
        shift = rng.uniform(-0.15, 0.15, (n, 2)) * size
        new_centre = np.clip(centre + shift, 0.0, 1.0)
        scale = rng.uniform(0.8, 1.25, (n, 1))
        if fmt == "detect":
            coords = np.concatenate([new_centre, size * scale], 1)  # cx cy w h
        else:
            a = np.deg2rad(rng.uniform(-10, 10, n))
            rot = np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)], -2)
            corners = np.einsum("nij,nkj->nki", rot, xy * scale[:, :, None]) + new_centre[:, None]
            coords = corners.reshape(n, 8)
        scores = np.round(rng.uniform(0.05, 1.0, n), 1)
        if n:
            text = "".join(f"{int(c)} " + " ".join(f"{v:.6f}" for v in row) + f" {s:g}\n"
                           for c, row, s in zip(cls, coords, scores))  # fmt: skip
            (out / f.name).write_text(text, encoding="utf-8")
            total += n
    return total


def add_bow_ties(pred: Path, out: Path, n: int, rng: np.random.Generator) -> int:
    """Copy an obb ``--pred-dir`` with ``n`` of its predictions turned into self-intersecting ("bow tie")
    quadrilaterals (corners 2 and 3 swapped); returns how many rows were changed."""
    shutil.copytree(pred, out, dirs_exist_ok=True)
    rows = [(f, i) for f in sorted(out.glob("*.txt")) for i in range(len(f.read_text().splitlines()))]
    picked = sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False).tolist())
    for k in picked:
        f, i = rows[k]
        lines = f.read_text().splitlines()
        t = lines[i].split()
        t[3:5], t[5:7] = t[5:7], t[3:5]  # cls x1 y1 [x2 y2] [x3 y3] x4 y4 conf: swap corners 2 and 3
        lines[i] = " ".join(t)
        f.write_text("\n".join(lines) + "\n")
    return len(picked)


def count_bow_ties(folder: Path) -> int:
    """Self-intersecting quadrilaterals among the detections of a folder's Task1 files."""
    from ultralytics_fss.large_images.geometry import make_polygons
    from ultralytics_fss.large_images.merge_back.metric import read_task_file

    boxes = [read_task_file(f, "Task1")[2] for f in sorted(folder.glob("Task1_*.txt"))]
    return int(make_polygons(np.concatenate(boxes or [np.zeros((0, 8))]))[1].sum())


# ---------------------------------------------------------------------------------------------------- checks
def compare(folder: Path, task: str, names: tuple[str, ...], gt: dict, devkit: tuple, gt_files: tuple) -> list[tuple]:
    """Per-class AP of ours and the devkit's on one folder of Task files: ``(class, objects, ours, devkit)`` rows."""
    from ultralytics_fss.large_images.merge_back.metric import evaluate_task_files

    ours = evaluate_task_files(folder, task, names, gt)
    module = devkit[0] if task == "Task1" else devkit[1]
    annotations = gt_files[0] if task == "Task1" else gt_files[1]
    return [
        (name, ours["objects"][name], ap, devkit_ap(module, folder, task, annotations, gt_files[2], name))
        for name, ap in ours["AP"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    """Build the devkit, run the noisy sets and any ``--merged`` folders, print both metrics; 1 if they differ."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devkit", type=Path, help=f"a DOTA_devkit checkout (default: git clone {DEVKIT_URL})")
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="DOTA source folder (default: the shipped samples)")
    p.add_argument("--crops", type=int, nargs="+", default=[256, 1024], help="tile sides (default: 256 1024)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="noise seeds per set (default: 0 1)")
    p.add_argument("--bow-ties", type=int, default=3, help="bow ties of one extra obb set, reported apart (default: 3)")
    p.add_argument("--merged", type=Path, nargs="*", default=[], help="merge_dota output folders to check as well")
    p.add_argument("--dir", type=Path, help="working folder (default: a temporary one)")
    a = p.parse_args(argv)
    if not (a.src / "images").is_dir() or not (a.src / "labelTxt").is_dir():
        fail(f"--src {a.src}: not a DOTA folder (images/ and labelTxt/)")
    if a.devkit is not None and not a.devkit.is_dir():
        fail(f"--devkit {a.devkit}: not a folder")
    for m in a.merged:
        if not any(m.glob("Task[12]_*.txt")):
            fail(f"--merged {m}: no Task1_*.txt or Task2_*.txt files (a merge_dota output folder)")
    if min(a.crops) < 32:
        fail("--crops must be at least 32 pixels")
    if a.bow_ties < 0:
        fail("--bow-ties must be 0 or more")

    import logging

    from ultralytics.utils import LOGGER

    from ultralytics_fss.large_images import merge_dota, tile_dota
    from ultralytics_fss.large_images.merge_back.metric import read_ground_truth

    with tempfile.TemporaryDirectory(prefix="dota_devkit_check.") as tmp:
        work = a.dir or Path(tmp)
        devkit = build_devkit(get_devkit(a.devkit, Path(tmp)), work)
        images = {f.stem for f in (a.src / "images").iterdir()}
        labels = {f.stem: f for f in sorted((a.src / "labelTxt").glob("*.txt")) if f.stem in images}
        gt_files = write_devkit_labels(labels, work / "devkit-labels")
        LOGGER.setLevel(logging.ERROR)
        sets = []  # (description, folder, task, names, ground truth)
        bow_tie_set = None
        for crop in a.crops:
            for fmt in ("obb", "detect"):
                dst = work / f"tiles-{fmt}-{crop}"
                tile_dota(a.src, dst, crop=crop, stride=crop * 800 // 1024, format=fmt, workers=1)
                names = _names(dst)
                gt = read_ground_truth(labels, names)
                for seed in a.seeds:
                    pred = work / f"pred-{fmt}-{crop}-{seed}"
                    rows = noisy_predictions(dst / "labels" / SPLIT, pred, fmt, len(names), np.random.default_rng(seed))
                    r = merge_dota(dst, work / f"merged-{fmt}-{crop}-{seed}", pred_dir=pred, split=SPLIT)
                    what = f"noisy {fmt}, crop {crop}, seed {seed}: {rows} tile predictions, {r.detections} merged"
                    sets.append((what, r.out, r.task, names, gt))
                    if fmt == "obb" and a.bow_ties and (crop, seed) == (a.crops[0], a.seeds[0]):
                        tied = work / f"pred-bowties-{crop}-{seed}"
                        n = add_bow_ties(pred, tied, a.bow_ties, np.random.default_rng(seed))
                        r = merge_dota(dst, work / f"merged-bowties-{crop}-{seed}", pred_dir=tied, split=SPLIT)
                        kept = count_bow_ties(r.out)
                        what = f"the same with {n} tile predictions made bow ties: {kept} of {r.detections} merged"
                        bow_tie_set = (what, r.out, r.task, names, gt)
        for m in a.merged:
            task = "Task1" if any(m.glob("Task1_*.txt")) else "Task2"
            names = tuple(sorted(f.stem.split("_", 1)[1] for f in m.glob(f"{task}_*.txt")))  # the files' classes
            sets.append((f"{m}", m, task, names, read_ground_truth(labels, names)))

        largest = 0.0
        for what, folder, task, names, gt in sets:
            largest = max(largest, print_set(what, compare(folder, task, names, gt, devkit, gt_files), task))
        verdict = "the same" if largest <= TOLERANCE else "DIFFERENT"
        print(f"\n{len(sets)} sets of Task files: largest AP difference {largest:.2e} ({verdict}, tolerance "
              f"{TOLERANCE:g})")  # fmt: skip
        if bow_tie_set is not None:
            what, folder, task, names, gt = bow_tie_set
            ties = print_set(what, compare(folder, task, names, gt, devkit, gt_files), task)
            print(f"\nWith bow ties (not part of the verdict: we read a bow tie as the hull of its corners, polyiou "
                  f"does not): largest AP difference {ties:.2e}")  # fmt: skip
    return 0 if largest <= TOLERANCE else 1


def print_set(what: str, rows: list[tuple], task: str) -> float:
    """Print one set's per-class table; return its largest difference."""
    print(f"\n{what} ({task})")
    print("| class | objects | ours | devkit | difference |\n|---|---|---|---|---|")
    for name, n, ours, theirs in rows:
        print(f"| {name} | {n} | {ours:.6f} | {theirs:.6f} | {abs(ours - theirs):.2e} |")
    return max((abs(ours - theirs) for _, _, ours, theirs in rows), default=0.0)


def _names(dst: Path) -> tuple[str, ...]:
    """The tiler's class list (DOTA's official names), from its options."""
    from ultralytics_fss.large_images.merge_back.tile_predictions import TileIndex

    return TileIndex.load(dst, SPLIT).names


if __name__ == "__main__":
    sys.exit(main())
