"""Preparation stage of the DOTA tiler: source layout, splits, class names and this shard's jobs; nothing is written.

Every problem that concerns the run as a whole (unknown split, unknown category, bad ``--shard``) is raised here as a
:class:`TilingError`, before DST is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import TilingError
from ..dota import SplitSource, detect_layout
from ..files import IMAGE_SUFFIXES, list_files
from ..dota import DOTA_CATEGORIES, dataset_names, load_names_file, read_categories, read_label_file
from .config import TileConfig
from .records import ImageJob

# Unknown categories listed in the error message; the rest are counted.
_MAX_LISTED = 20


@dataclass
class LabelReport:
    """What reading the label files of a run's images found.

    Attributes:
        objects (int): Objects read from the label files.
        difficult_dropped (int): Objects left out by ``difficult="drop"``.
        warnings (list[str]): Problems that do not stop the run (orphan label files, images without labels,
            malformed label lines), in source order.
    """

    objects: int = 0
    difficult_dropped: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a run will tile, decided before anything is written.

    Attributes:
        src (Path): Source root, absolute.
        layout (str): Source layout, a key of ``dota.LAYOUTS``.
        splits (list[str]): Splits to tile, in order.
        cfg (TileConfig): Output options, class tokens included.
        yaml_names (list[str]): Class names for data.yaml, in class order.
        shard (tuple[int, int]): ``(K, N)``: this run tiles the K-th of N slices of the images.
        jobs (list[ImageJob]): This shard's images, sorted by split order, then stem.
        labels (LabelReport): What reading their label files found.
        sources (dict[str, SplitSource]): Where each split of ``splits`` lives (DOTA sources).
        data (Path | None): The dataset YAML of a YOLO source, absolute; None for DOTA sources.
    """

    src: Path
    layout: str
    splits: list[str]
    cfg: TileConfig
    yaml_names: list[str]
    shard: tuple[int, int]
    jobs: list[ImageJob]
    labels: LabelReport
    sources: dict[str, SplitSource] = field(default_factory=dict)
    data: Path | None = None


def prepare(
    src: Path,
    dst: Path,
    cfg: TileConfig,
    *,
    splits: list[str] | None,
    version: str,
    names: str | Path | None,
    shard: str | tuple[int, int] | None,
) -> Plan:
    """Find the source's splits, resolve the class list and list this shard's images with their labels.

    Args:
        src (Path): Source root, absolute.
        dst (Path): Output root, absolute (only checked to differ from ``src``).
        cfg (TileConfig): Output options; its ``names`` are replaced by the resolved class tokens.
        splits (list[str] | None): Splits to tile; None: train and val, plus test when present (else all found).
        version (str): DOTA class list, a key of ``DOTA_CATEGORIES``.
        names (str | Path | None): Class-list file, ``auto``, or None for ``version``.
        shard (str | tuple[int, int] | None): ``"K/N"`` or ``(K, N)``; None: the whole source.

    Returns:
        (Plan): What to tile.

    Raises:
        TilingError: Same DST as SRC, no usable layout, missing split, unknown category, bad class list or shard.
    """
    if dst == src:
        raise TilingError(f"DST must differ from SRC ({src})")
    layout, found = detect_layout(src)
    wanted = splits or [s for s in ("train", "val", "test") if s in found] or sorted(found)
    missing = [s for s in wanted if s not in found]
    if missing:
        raise TilingError(f"split(s) {missing} not in {src} ({layout} layout has {sorted(found)})")
    sources = [found[s] for s in wanted]
    tokens, yaml_names, classes = resolve_names(names, version, sources)
    cfg = replace(cfg, names=tokens)
    k, n = parse_shard(shard)
    jobs, labels = collect_jobs(src, sources, classes, cfg.difficult, (k, n))
    return Plan(
        src=src,
        layout=layout,
        splits=wanted,
        cfg=cfg,
        yaml_names=yaml_names,
        shard=(k, n),
        jobs=jobs,
        labels=labels,
        sources={s.name: s for s in sources},
    )


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) to ``(K, N)``; None is ``(1, 1)``.

    Raises:
        TilingError: If ``shard`` is malformed or K is outside 1..N.
    """
    if shard is None:
        return 1, 1
    try:
        k, n = (int(v) for v in shard.split("/")) if isinstance(shard, str) else shard
    except ValueError:
        raise TilingError(f"--shard must look like K/N (e.g. 2/8), got {shard!r}") from None
    if not 1 <= k <= n:
        raise TilingError(f"--shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def resolve_names(
    names: str | Path | None, version: str, splits: list[SplitSource]
) -> tuple[tuple[str, ...], list[str], dict[str, int]]:
    """Category tokens, data.yaml names and token-to-index map for a DOTA version, a class-list file or ``auto``.

    Args:
        names (str | Path | None): Class-list file, ``auto`` (tokens found in the label files, sorted), or None.
        version (str): DOTA class list used when ``names`` is None.
        splits (list[SplitSource]): Splits whose label files ``auto`` reads.

    Returns:
        tokens (tuple[str, ...]): Category tokens in class order.
        yaml_names (list[str]): Names for data.yaml (spaces for the built-in DOTA lists, as Ultralytics spells them).
        classes (dict[str, int]): Token (or data.yaml-style name) to class index.

    Raises:
        TilingError: Unknown version, unreadable class-list file, or no categories found by ``auto``.
    """
    if names is None:
        if version not in DOTA_CATEGORIES:
            raise TilingError(f"unknown DOTA version {version!r}, choose from {', '.join(DOTA_CATEGORIES)}")
        tokens, builtin = DOTA_CATEGORIES[version], True
    elif str(names) == "auto":
        found = set()
        for s in splits:
            for p in list_files(s.labels, (".txt",)).values():
                found |= read_categories(p)
        if not found:
            raise TilingError("--names auto found no categories in the label files")
        tokens, builtin = tuple(sorted(found)), False
    else:
        try:
            tokens, builtin = load_names_file(Path(names)), False
        except (OSError, ValueError) as e:
            raise TilingError(f"cannot read --names {names}: {e}") from None
    classes = {t: i for i, t in enumerate(tokens)}
    # data.yaml-style names ("storage tank") also match DOTA's label tokens ("storage-tank")
    classes.update({t.replace(" ", "-"): i for i, t in enumerate(tokens)})
    return tokens, dataset_names(tokens, builtin), classes


def collect_jobs(
    src: Path, splits: list[SplitSource], classes: dict[str, int], difficult: str, shard: tuple[int, int]
) -> tuple[list[ImageJob], LabelReport]:
    """List this shard's images with their parsed labels; report orphans and malformed lines.

    Args:
        src (Path): Source root (manifest paths are relative to it).
        splits (list[SplitSource]): Splits to tile, in order.
        classes (dict[str, int]): Category token to class index.
        difficult (str): ``keep`` or ``drop`` objects flagged difficult.
        shard (tuple[int, int]): ``(K, N)``: keep every N-th image of the sorted list, starting with the K-th.

    Returns:
        jobs (list[ImageJob]): This shard's images, sorted by split order, then stem.
        labels (LabelReport): Object counts and warnings.

    Raises:
        TilingError: If a label file names a category outside the class list (file and line in the message).
    """
    k, n = shard
    entries, report = [], LabelReport()
    for s in splits:
        images = list_files(s.images, IMAGE_SUFFIXES)
        labels = list_files(s.labels, (".txt",))
        if k == 1:  # orphan label files belong to no image, hence to no slice: the first shard reports them
            orphans = [p for st, p in labels.items() if st not in images]
            report.warnings += [f"{p}: label file without image, skipped" for p in orphans]
        entries += [(s, stem, path, labels.get(stem)) for stem, path in images.items()]
    jobs, unknown = [], []
    for i, (s, stem, path, label) in enumerate(entries):
        if i % n != k - 1:  # deterministic round-robin slice of the sorted list: balanced shards
            continue
        if s.labels is not None and label is None:
            missing = s.labels / f"{stem}.txt"
            report.warnings.append(f"{path}: image without label file {missing}, tiled as background")
        parsed = read_label_file(label, classes) if label is not None else None
        points, cls = (np.zeros((0, 4, 2)), np.zeros(0, np.int64)) if parsed is None else (parsed.points, parsed.cls)
        if parsed is not None:
            report.warnings += parsed.problems
            unknown += [
                f"{label}:{ln}: unknown category {c!r}"
                for c, ln, ci in zip(parsed.categories, parsed.lines.tolist(), parsed.cls.tolist())
                if ci < 0
            ]
            report.objects += len(cls)
            if difficult == "drop":
                report.difficult_dropped += int(parsed.difficult.sum())
                points, cls = points[~parsed.difficult], cls[~parsed.difficult]
        rel = path.relative_to(src).as_posix() if path.is_relative_to(src) else str(path)
        jobs.append(ImageJob(s.name, stem, path, rel, points, cls, s.labels is not None))
    if unknown:
        more = f"\n... and {len(unknown) - _MAX_LISTED} more" if len(unknown) > _MAX_LISTED else ""
        raise TilingError(
            f"{len(unknown)} objects with a category outside the class list (use --version 2.0, --names FILE or "
            f"--names auto for other DOTA-format datasets):\n" + "\n".join(unknown[:_MAX_LISTED]) + more
        )
    return jobs, report
