"""Benchmark: tiling a YOLO-format dataset (``tile``) against the DOTA path (``tile_dota``) on the same pixels.

Generates an xView-sized set with ``benchmarks/tile_dota.py``'s generator (PNG images, rotated objects, DOTA polygons in
``labels/{split}_original`` and the same objects as normalised YOLO-OBB lines in ``labels/{split}``), adds the dataset
YAML that makes it an Ultralytics dataset, then tiles it through both sources at the same crop, stride, format and
JPEG output, each run in its own process. The clock starts after imports and after Ultralytics' font check, which its
dataset check (``check_det_dataset``) runs once per process: offline and without the font cached it scans
matplotlib's font list and tries a download (about 0.5 s here), where the font is cached it returns at once; it does
not depend on the number of images. Prints seconds per image, tiles and labels written, and the YOLO/DOTA ratios, for
oriented boxes (both sources) and axis-aligned boxes (``detect``). Each path runs ``--repeats`` times, alternating, and
its fastest run counts (every run tiles into an empty folder). Run it with nothing else running: two
processes on two cores change the ratio.

Examples:
    python benchmarks/tile_yolo.py                       # 20 images of 3000 x 3000, 300 objects each (~2 minutes)
    python benchmarks/tile_yolo.py --images 8 --size 2000 --workers 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tile_dota import count_outputs, make_dataset, run_measured  # noqa: E402 (the sibling benchmark's generator)

NAMES = ["plane", "ship", "storage-tank", "small-vehicle", "large-vehicle", "harbor", "bridge", "helicopter"]


def main(argv: list[str] | None = None) -> None:
    """Generate the data, tile it through both sources, print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20, help="images to generate (default: 20)")
    p.add_argument("--size", type=int, default=3000, help="image side in pixels (default: 3000)")
    p.add_argument("--objects", type=int, default=300, help="objects per image (default: 300)")
    p.add_argument("--crop", type=int, default=1024, help="tile side (default: 1024)")
    p.add_argument("--stride", type=int, default=800, help="step between tiles (default: 800)")
    p.add_argument("--workers", type=int, help="worker processes of both (default: the tiler's default)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each path, alternating; the fastest counts (3)")
    p.add_argument("--dir", type=Path, help="working folder (default: a temporary one); generated data is reused")
    a = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        data = work / "data"
        t0 = time.perf_counter()
        make_dataset(data, a.images, a.size, a.objects)
        data_yaml = data / "data.yaml"
        data_yaml.write_text(yaml.safe_dump({"path": str(data), "train": "images/train", "val": "images/val",
                                             "names": dict(enumerate(NAMES))}))  # fmt: skip
        print(f"data: {a.images} images {a.size}x{a.size}, {a.objects} objects each ({time.perf_counter() - t0:.0f}s)")
        common = f"crop={a.crop}, stride={a.stride}, ext='jpg', workers={a.workers}"
        warm = "from ultralytics.utils.checks import check_font; check_font('Arial.ttf'); "  # once per process
        for fmt in ("obb", "detect"):
            dota_dst, yolo_dst = work / f"dota-{fmt}", work / f"yolo-{fmt}"
            code = {
                "dota": "import time; from ultralytics_fss.large_images import tile_dota; "
                f"{warm}t = time.perf_counter(); "
                f"tile_dota({str(data)!r}, {str(dota_dst)!r}, splits=['train', 'val'], format={fmt!r}, {common}); "
                "print(time.perf_counter() - t)",
                "yolo": "import time; from ultralytics_fss.large_images import tile_yolo; "
                f"{warm}t = time.perf_counter(); "
                f"tile_yolo({str(data_yaml)!r}, {str(yolo_dst)!r}, task={fmt!r}, {common}); "
                "print(time.perf_counter() - t)",
            }
            best = {"dota": float("inf"), "yolo": float("inf")}
            for _ in range(a.repeats):  # alternating, so that a burst of other load hits both paths alike
                for path, dst in (("dota", dota_dst), ("yolo", yolo_dst)):
                    subprocess.run(["rm", "-rf", str(dst)], check=True)  # every run tiles from scratch, unclocked
                    best[path] = min(best[path], run_measured(code[path])[0])
            t_dota, t_yolo = best["dota"], best["yolo"]
            rows.append((fmt, t_dota / a.images, t_yolo / a.images, count_outputs(dota_dst), count_outputs(yolo_dst)))

    print(f"\ncrop {a.crop}, stride {a.stride}, JPEG output, {a.images} images of {a.size}x{a.size}, "
          f"workers {a.workers or 'default'}, fastest of {a.repeats} runs each")  # fmt: skip
    print("| format | s/image DOTA path | s/image YOLO path | YOLO / DOTA time | tiles (DOTA, YOLO) "
          "| labels (DOTA, YOLO) |")
    print("|---|---:|---:|---:|---:|---:|")
    for fmt, s_dota, s_yolo, (n_d, o_d), (n_y, o_y) in rows:
        print(f"| {fmt} | {s_dota:.3f} | {s_yolo:.3f} | {s_yolo / s_dota:.2f} | {n_d}, {n_y} | {o_d}, {o_y} |")


if __name__ == "__main__":
    main()
