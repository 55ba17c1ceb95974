"""Benchmark: ``ultralytics_fss.large_images.tile_dota`` against Ultralytics' ``split_dota.split_trainval`` on generated
data.

Generates a DOTA-format set in Ultralytics' layout (``images/{train,val}``, DOTA polygons in
``labels/{split}_original`` for us, the normalised YOLO-OBB labels Ultralytics' splitter reads in ``labels/{split}``),
then tiles it with both tools at the same crop and gap (stride = crop - gap), both writing JPEG, each in its own
process. Prints wall time, peak memory (resident set of the whole process tree, sampled) and tiles / object labels
written, with our/Ultralytics ratios.

Examples:
    python benchmarks/tile_dota.py                       # 8 images of 4000 x 4000, 250 objects each (~1 minute)
    python benchmarks/tile_dota.py --images 32 --size 6000 --objects 1000 --workers 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

# Sampling period of the memory monitor: short next to a run of tens of seconds, cheap for psutil.
_SAMPLE_S = 0.05


def make_dataset(root: Path, images: int, size: int, objects: int, seed: int = 0) -> None:
    """Write ``images`` aerial-like PNGs (smooth background, textured rotated objects) with DOTA and YOLO-OBB labels.

    Args:
        root (Path): Dataset root (Ultralytics DOTA layout); a complete existing one is reused.
        images (int): Number of images; a quarter (at least one) goes to val.
        size (int): Image side, pixels.
        objects (int): Rotated rectangles per image.
        seed (int): Random seed.
    """
    stamp = root / "benchmark.json"
    spec = {"images": images, "size": size, "objects": objects, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == spec:
        return
    rng = np.random.default_rng(seed)
    names = ["plane", "ship", "storage-tank", "small-vehicle", "large-vehicle", "harbor", "bridge", "helicopter"]
    n_val = max(1, images // 4)
    for i in range(images):
        split = "val" if i < n_val else "train"
        for d in (f"images/{split}", f"labels/{split}", f"labels/{split}_original"):
            (root / d).mkdir(parents=True, exist_ok=True)
        low = rng.integers(40, 200, (size // 64, size // 64, 3), dtype=np.uint8)
        im = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        im = cv2.add(im, rng.integers(0, 24, im.shape, dtype=np.uint8))  # sensor noise: JPEG work like real images
        c = rng.uniform(0, size, (objects, 2))
        wh = rng.uniform(12, 160, (objects, 2))
        ang = rng.uniform(0, 180, objects)
        polys = np.stack([cv2.boxPoints(((x, y), (w, h), a)) for (x, y), (w, h), a in zip(c, wh, ang)])  # (n, 4, 2)
        polys = np.clip(polys, 0, size - 1)
        cls = rng.integers(0, len(names), objects)
        for p in polys:
            cv2.fillPoly(im, [p.astype(np.int32)], tuple(int(v) for v in rng.integers(0, 255, 3)))
        stem = f"B{i:04d}"
        cv2.imwrite(str(root / "images" / split / f"{stem}.png"), im)
        dota = ["imagesource:benchmark", "gsd:0.5"]
        dota += [" ".join(f"{v:.1f}" for v in p.ravel()) + f" {names[k]} 0" for p, k in zip(polys, cls)]
        (root / "labels" / f"{split}_original" / f"{stem}.txt").write_text("\n".join(dota) + "\n")
        yolo = [f"{k} " + " ".join(f"{v / size:.6g}" for v in p.ravel()) for p, k in zip(polys, cls)]
        (root / "labels" / split / f"{stem}.txt").write_text("\n".join(yolo) + "\n")
    stamp.write_text(json.dumps(spec))


def run_measured(code: str) -> tuple[float, float]:
    """Run Python ``code`` in a fresh process; return wall seconds and peak resident memory (GiB) of its process tree.

    The clock starts inside the child after its imports (it prints the elapsed time last), so the ~2 s torch import
    that both tools pay through Ultralytics is not part of the comparison.
    """
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak, done = 0, threading.Event()

    def monitor() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(_SAMPLE_S)

    t = threading.Thread(target=monitor, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{out}")
    return float(out.strip().splitlines()[-1]), peak / 2**30


def count_outputs(root: Path) -> tuple[int, int]:
    """Tiles (images under ``root/images``) and object labels (lines under ``root/labels``) written."""
    tiles = sum(1 for p in (root / "images").rglob("*.jpg"))
    labels = sum(len(p.read_text().splitlines()) for p in (root / "labels").rglob("*.txt"))
    return tiles, labels


def main(argv: list[str] | None = None) -> None:
    """Generate the data, run both tilers, print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=8, help="images to generate (default: 8)")
    p.add_argument("--size", type=int, default=4000, help="image side in pixels (default: 4000)")
    p.add_argument("--objects", type=int, default=250, help="rotated objects per image (default: 250)")
    p.add_argument("--crop", type=int, default=1024, help="tile side (default: 1024)")
    p.add_argument("--gap", type=int, default=224, help="overlap; stride = crop - gap (default: 224)")
    p.add_argument("--workers", type=int, help="our worker processes (default: tile_dota's default)")
    p.add_argument("--dir", type=Path, help="working folder (default: a temporary one); generated data is reused")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        data = work / "data"
        t0 = time.perf_counter()
        make_dataset(data, a.images, a.size, a.objects)
        print(f"data: {a.images} images {a.size}x{a.size}, {a.objects} objects each ({time.perf_counter() - t0:.0f}s)")
        ours, theirs = work / "ours", work / "ultralytics"
        for d in (ours, theirs):
            subprocess.run(["rm", "-rf", str(d)], check=True)
        stride = a.crop - a.gap
        t_ul, m_ul = run_measured(
            "import time; from ultralytics.data.split_dota import split_trainval; t = time.perf_counter(); "
            f"split_trainval({str(data)!r}, {str(theirs)!r}, crop_size={a.crop}, gap={a.gap}); "
            "print(time.perf_counter() - t)"
        )
        t_us, m_us = run_measured(
            "import time; from ultralytics_fss.large_images import tile_dota; t = time.perf_counter(); "
            f"tile_dota({str(data)!r}, {str(ours)!r}, splits=['train', 'val'], crop={a.crop}, stride={stride}, "
            f"ext='jpg', format='obb', workers={a.workers}); print(time.perf_counter() - t)"
        )
        (n_ul, o_ul), (n_us, o_us) = count_outputs(theirs), count_outputs(ours)

    rows = [
        ("wall time (s)", t_ul, t_us, t_ul / t_us, "x faster"),
        ("peak memory (GiB)", m_ul, m_us, m_us / m_ul, "x memory"),
        ("tiles written", n_ul, n_us, n_us / max(n_ul, 1), "x tiles"),
        ("object labels", o_ul, o_us, o_us / max(o_ul, 1), "x labels"),
    ]
    print(f"\ncrop {a.crop}, stride {stride} (gap {a.gap}), JPEG output, {a.images} images of {a.size}x{a.size}")
    print(f"| {'metric':<18} | {'split_trainval':>14} | {'tile_dota':>10} | {'ratio':>16} |")
    print(f"|{'-' * 20}|{'-' * 16}|{'-' * 12}|{'-' * 18}|")
    for name, ul, us, ratio, unit in rows:
        fmt = (lambda v: f"{v:.2f}") if isinstance(ul, float) else str
        print(f"| {name:<18} | {fmt(ul):>14} | {fmt(us):>10} | {f'{ratio:.2f} {unit}':>16} |")


if __name__ == "__main__":
    main()
