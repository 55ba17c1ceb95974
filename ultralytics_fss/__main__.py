"""`python -m ultralytics_fss`: the installed version (`--version`) and the package's commands."""

from __future__ import annotations

import argparse

from ultralytics_fss import __version__

COMMANDS = {
    "demo": "stock vs FSS on a generated dataset, offline (the quick start's main job)",
    "compare": "assigners and settings compared over seeds, COCO metrics, full-image scores of tiled data",
    "visualize": "one image's assignment: FSS (or a baseline) beside Ultralytics' assigner",
    "evaluate": "the 12 COCO metrics (pycocotools) of a model on a split",
    "tile_dota": "DOTA (or DOTA-format) images into tiles, YOLT-style",
    "tile": "any Ultralytics dataset into tiles",
    "merge_dota": "tile predictions merged back to DOTA images and scored with DOTA's metric",
    "merge_tiles": "tile predictions merged back to any dataset's images and scored with COCO's metrics",
    "predict_tiled": "tiled prediction on large images, merged in memory",
}


def main(argv: list[str] | None = None) -> None:
    """Print the version with `--version`, else the commands `python -m ultralytics_fss.<command>` runs."""
    p = argparse.ArgumentParser(
        prog="python -m ultralytics_fss",
        description="FSS label assignment for Ultralytics YOLO. Commands: python -m ultralytics_fss.<command> -h\n"
        + "\n".join(f"  {name:<14} {text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ultralytics-fss {__version__}")
    p.parse_args(argv)
    p.print_help()


if __name__ == "__main__":
    main()
