"""Preparation stage for Ultralytics YOLO-format sources: a dataset YAML in, the same `Plan`
the DOTA path makes, so every later stage (output state, workers, restart records, manifest, data.yaml) is shared.

Labels stay normalised here (`ImageJob.outlines`): the worker reads the image, so it knows the size that turns them
into pixels. Nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import TilingError
from ..yolo_labels import label_path, parse_yolo_label_text, resolve_yolo_dataset
from .config import TileConfig
from .prepare import LabelReport, Plan, parse_shard
from .records import ImageJob

TASK_OF_FORMAT = {"detect": "detect", "obb": "obb", "segment": "segment", "both": "obb"}  # how label lines are read


def prepare_yolo(
    data: str | Path, dst: Path, cfg: TileConfig, *, splits: list[str] | None, shard: str | tuple[int, int] | None
) -> Plan:
    """Resolve a YOLO dataset YAML (Ultralytics' own checks) and list this shard's images with their labels.

    Args:
        data (str | Path): The dataset YAML.
        dst (Path): Output root, absolute (checked to differ from the dataset's root).
        cfg (TileConfig): Output options; its ``format`` says how label lines are read (`TASK_OF_FORMAT`).
        splits (list[str] | None): Splits to tile; None: every split the YAML names among train, val and test.
        shard (str | tuple[int, int] | None): ``"K/N"`` or ``(K, N)``; None: the whole dataset.

    Returns:
        (Plan): What to tile; ``layout`` is ``yolo``.

    Raises:
        TilingError: A YAML that does not resolve (Ultralytics' message), a split it does not name, two images of a
            split with the same file stem (tile names start with it), a bad shard.
    """
    wanted = list(splits or ("train", "val", "test"))
    try:
        names, images = resolve_yolo_dataset(data, tuple(wanted))
    except (FileNotFoundError, RuntimeError, OSError, SyntaxError) as e:
        raise TilingError(f"{data}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    missing = [s for s in wanted if s not in images]
    if splits and missing:
        raise TilingError(f"{data}: split(s) {missing} not in the dataset (it has {sorted(images)})")
    wanted = [s for s in wanted if s in images]
    root = Path(data).resolve().parent
    if dst == root:
        raise TilingError(f"DST must differ from the dataset's folder ({root})")
    for split in wanted:
        repeated = [stem for stem, n in Counter(p.stem for p in images[split]).items() if n > 1]
        if repeated:
            raise TilingError(
                f"{data}: split {split} has several images named {repeated[:5]} (in different "
                "folders); tile names start with the image's stem, so stems must be unique per split"
            )
    k, n = parse_shard(shard)
    task = TASK_OF_FORMAT[cfg.format]
    report, jobs = LabelReport(), []
    entries = [(split, path) for split in wanted for path in sorted(images[split], key=lambda p: p.stem)]
    for i, (split, path) in enumerate(entries):
        if i % n != k - 1:
            continue
        label = label_path(path)
        outlines, cls = (), np.zeros(0, np.int64)
        if label.is_file():
            parsed = parse_yolo_label_text(label.read_text(encoding="utf-8", errors="replace"), label, task, 1, 1,
                                           len(names))  # fmt: skip
            report.warnings += parsed.problems
            report.objects += len(parsed.cls)
            outlines, cls = tuple(parsed.polygons), parsed.cls
        else:
            report.warnings.append(f"{path}: image without label file {label}, tiled as background")
        rel = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else str(path)
        jobs.append(ImageJob(split, path.stem, path, rel, np.zeros((0, 4, 2)), cls, True, outlines))
    cfg = replace(cfg, names=tuple(names))
    return Plan(
        src=root,
        layout="yolo",
        splits=wanted,
        cfg=cfg,
        yaml_names=list(names),
        shard=(k, n),
        jobs=jobs,
        labels=report,
        data=Path(data).resolve(),
    )
