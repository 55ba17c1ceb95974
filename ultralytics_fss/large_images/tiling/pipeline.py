"""Tile DOTA-format aerial images into an Ultralytics YOLO dataset, YOLT-style (FSS paper, section 4.1).

Images are rescaled by each rate and cut into ``crop`` x ``crop`` windows every ``stride`` pixels (the last window on
each axis aligned to the image edge, small images zero-padded); each object polygon is clipped to the window with
shapely and kept when intersection / object area >= ``iof``. Output (see :mod:`.output`): ``DST/images/{split}``,
``DST/labels/{split}`` (tiles named ``{stem}__{rate}__{left}___{top}`` as in the DOTA devkit), ``DST/data.yaml`` and
``DST/manifest.csv``.

Every file is written atomically; a record per finished image (``DST/.tile_dota/done``) makes a rerun skip finished
images and lets ``shard="K/N"`` runs on several machines fill one DST in any order.

The stages, in order: prepare (options, layout, class names, jobs; nothing written), check or reset the output state,
resume (clean up after a killed run, skip finished images), run (inline or in a pool), finish (manifest, data.yaml,
summary).

Reference:
    FSS paper, section 4.1 (1024 x 1024 patches, stride 800, zero padding); DOTA devkit ``ImgSplit`` (tile names).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from ultralytics.utils import LOGGER

from ..errors import TilingError
from ..files import unwritable
from ..dota import DEFAULT_VERSION
from .config import DEFAULTS, TileConfig
from .output import DATA_YAML, TileOutput, yaml_splits
from .prepare import Plan, prepare
from .records import ImageJob, ImageResult
from .run import WorkerDied, default_workers, run_jobs
from .summary import TileSummary, TilingInterrupted, log_summary, prefix_of


def tile_dota(
    src: str | Path,
    dst: str | Path,
    *,
    splits: list[str] | None = None,
    crop: int = DEFAULTS.crop,
    stride: int | None = None,
    rates: tuple[float, ...] | list[float] = DEFAULTS.rates,
    iof: float = DEFAULTS.iof,
    format: str = DEFAULTS.format,
    version: str = DEFAULT_VERSION,
    names: str | Path | None = None,
    difficult: str = DEFAULTS.difficult,
    empty: str = DEFAULTS.empty,
    ext: str | None = DEFAULTS.ext,
    keep_16bit: bool = DEFAULTS.keep_16bit,
    workers: int | None = None,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    start_method: str | None = None,
) -> TileSummary:
    """Tile a DOTA-format dataset into an Ultralytics dataset; rerunning skips finished images.

    Args:
        src (str | Path): Source root in the official, Ultralytics or flat DOTA layout (detected).
        dst (str | Path): Output root.
        splits (list[str] | None): Splits to tile; None: train and val, plus test when present.
        crop (int): Tile side, pixels.
        stride (int | None): Step between tiles, pixels (``crop - stride`` is the overlap, the "gap" of split_dota);
            None: the paper's share of the crop (:func:`~.config.default_stride`: 800 for 1024, 200 for 256).
        rates (tuple[float, ...] | list[float]): Scale factors applied to the image before cutting.
        iof (float): Keep an object in a tile when area(object & tile) / area(object) >= iof.
        format (str): ``detect`` (xywh), ``obb`` (four corners) or ``both`` (obb dataset in ``DST/obb``).
        version (str): DOTA class list: ``1.0``, ``1.5`` or ``2.0``.
        names (str | Path | None): Class-list file (text, one per line, or YAML ``names:``) or ``auto`` (collected
            from the labels, sorted); overrides ``version``.
        difficult (str): ``keep`` or ``drop`` objects flagged difficult.
        empty (str): ``keep`` or ``drop`` tiles without objects.
        ext (str | None): ``png`` or ``jpg``; None: the source's format (PNG for DOTA, lossless).
        keep_16bit (bool): Keep 16-bit sources 16-bit (PNG only); otherwise 8-bit by ``value >> 8``.
        workers (int | None): Worker processes; None: CPU count, lowered to fit the largest image in memory.
        overwrite (bool): Delete the tiler's earlier output in ``dst`` first (not with ``shard``).
        shard (str | tuple[int, int] | None): ``"K/N"``: tile only the K-th of N deterministic slices of the images.
        start_method (str | None): Multiprocessing start method (``spawn``, ``fork``...); None: the platform default.

    Returns:
        (TileSummary): Counters, problems and timing.

    Raises:
        TilingError: Bad arguments, unusable source, unknown categories, or ``dst`` made with other options.
        TilingInterrupted: Ctrl-C or SIGTERM; finished images are kept, temporary files removed.

    Examples:
        >>> from ultralytics_fss.large_images import tile_dota
        >>> summary = tile_dota("DOTA-v1.5", "DOTA-v1.5-tiles", rates=(0.5, 1.0), workers=4)  # doctest: +SKIP
        >>> summary.tiles_with_objects, summary.ok  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    # 1. prepare: options first (TileConfig validates itself), then source, class names, this shard's jobs
    cfg = TileConfig(
        crop=crop,
        stride=stride,
        rates=tuple(float(r) for r in rates),
        iof=float(iof),
        format=format,
        difficult=difficult,
        empty=empty,
        ext=ext,
        keep_16bit=keep_16bit,
    )
    writable(dst)
    plan = prepare(src, dst, cfg, splits=splits, version=version, names=names, shard=shard)
    return run_plan(plan, dst, t0, overwrite=overwrite, workers=workers, start_method=start_method)


def tile_yolo(
    data: str | Path,
    dst: str | Path,
    *,
    task: str = "detect",
    splits: list[str] | None = None,
    crop: int = DEFAULTS.crop,
    stride: int | None = None,
    rates: tuple[float, ...] | list[float] = DEFAULTS.rates,
    iof: float = DEFAULTS.iof,
    empty: str = DEFAULTS.empty,
    ext: str | None = DEFAULTS.ext,
    workers: int | None = None,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    start_method: str | None = None,
) -> TileSummary:
    """Tile an Ultralytics YOLO dataset (detect, obb or segment labels) with the DOTA path's windows, clipping, IoF
    rule, output state, restart records and manifest (command line: ``python -m ultralytics_fss.tile``). The
    arguments after ``task`` are :func:`tile_dota`'s.

    Args:
        data (str | Path): The dataset YAML, in any form Ultralytics accepts.
        dst (str | Path): Output root.
        task (str): ``detect``, ``obb`` or ``segment``: how label lines are read and written.

    Returns:
        (TileSummary): Counters, problems and timing.
    """
    from .yolo_source import prepare_yolo

    t0 = time.perf_counter()
    dst = Path(dst).resolve()
    cfg = TileConfig(
        crop=crop,
        stride=stride,
        rates=tuple(float(r) for r in rates),
        iof=float(iof),
        format=task,
        empty=empty,
        ext=ext,
    )
    writable(dst)
    plan = prepare_yolo(data, dst, cfg, splits=splits, shard=shard)
    return run_plan(plan, dst, t0, overwrite=overwrite, workers=workers, start_method=start_method)


def writable(dst: Path) -> None:
    """Refuse an output root nothing can be written into, before the source is read.

    Raises:
        TilingError: Naming DST and why (`files.unwritable`).
    """
    if why := unwritable(dst):
        raise TilingError(f"DST {dst}: cannot write there: {why}")


def run_plan(
    plan: Plan, dst: Path, t0: float, *, overwrite: bool, workers: int | None, start_method: str | None
) -> TileSummary:
    """Stages 2-4 of a prepared run, whatever its source: output state and resume, run, finish."""
    src = plan.src
    out, token = TileOutput(dst, plan.cfg.formats()), f"{os.getpid()}-{secrets.token_hex(3)}"
    found = plan.labels
    summary = TileSummary(
        dst=dst,
        images=len(plan.jobs),
        objects=found.objects,
        difficult_dropped=found.difficult_dropped,
        warnings=list(found.warnings),
    )
    # 2. check or reset the output state, then resume: skip finished images
    out.check_or_reset(plan.cfg, overwrite=overwrite, sharded=plan.shard[1] > 1, token=token)
    out.write_source(src, {n: (s.images, s.labels) for n, s in plan.sources.items()}, token, data=plan.data)
    todo = _resume(plan, out, summary)
    workers = default_workers(todo, plan.cfg.rates) if workers is None else max(1, min(workers, len(todo) or 1))
    _log_start(plan, summary, len(todo), workers, dst)

    handled: set[tuple[str, str]] = set()  # (split, stem) of the images whose outcome came back

    def on_result(job: ImageJob, result: ImageResult) -> None:
        handled.add((job.split, job.stem))
        if result.error:
            summary.errors.append(result.error)
            summary.images_failed += 1
        else:
            summary.add(result)
            summary.images_tiled += 1

    # 3. run: inline or in a pool; whatever stops it, this run's temporaries go
    try:
        run_jobs(todo, plan.cfg, out, token, on_result, workers=workers, start_method=start_method,
                 prefix=prefix_of(plan.layout))
    except WorkerDied as e:
        summary.errors.append(str(e))
        summary.images_failed += len(e.lost)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        out.remove_run_tmp(plan.splits, token)
    # 4. finish: manifest, data.yaml, summary
    _finish(plan, out, summary, [j for j in todo if (j.split, j.stem) not in handled], token)
    summary.seconds = time.perf_counter() - t0
    log_summary(summary, prefix_of(plan.layout))
    if summary.interrupted:
        raise TilingInterrupted(summary)
    return summary


def _resume(plan: Plan, out: TileOutput, summary: TileSummary) -> list[ImageJob]:
    """Remove temporaries a killed run left for this run's images; count finished images; return the others."""
    out.remove_stale_tmp(plan.splits, stems={j.stem for j in plan.jobs})  # only this shard's images
    todo = []
    for job in plan.jobs:
        record = out.read_record(job.split, job.stem)
        if record is None:
            todo.append(job)
        else:
            summary.add(record)
            summary.images_skipped += 1
    return todo


def _log_start(plan: Plan, summary: TileSummary, todo: int, workers: int, dst: Path) -> None:
    """One line: what the run found and is about to do."""
    k, n = plan.shard
    shard_text = f", shard {k}/{n}" if n > 1 else ""
    LOGGER.info(
        f"{prefix_of(plan.layout)}{plan.src} ({plan.layout} layout, splits {', '.join(plan.splits)}{shard_text}): "
        f"{summary.images} images, {summary.images_skipped} already done, {todo} to tile with {workers} worker(s) "
        f"-> {dst}"
    )


def _finish(plan: Plan, out: TileOutput, summary: TileSummary, unreported: list[ImageJob], token: str) -> None:
    """Count images finished while the run was stopping, then rebuild the manifest and data.yaml from all records.

    Args:
        plan (Plan): The run.
        out (TileOutput): Output state in DST.
        summary (TileSummary): This run's summary, completed here.
        unreported (list[ImageJob]): Jobs of this run whose outcome never reached the main process.
        token (str): Run token for temporary names.
    """
    for job in unreported:  # finished while the run was stopping: count them as the manifest will
        record = out.read_record(job.split, job.stem)
        if record is not None:
            summary.add(record)
            summary.images_tiled += 1
    summary.count_pending()
    out.write_manifest(token)
    tiled = out.write_data_yaml(plan.splits, plan.yaml_names, token)  # every split tiled into DST so far
    train, val = yaml_splits(tiled)
    if val == train:  # a warning, not an error: the devkit's samples and many private sets have one split only
        summary.warnings.append(
            f"{out.dst / DATA_YAML}: no val split was tiled, so 'val: images/{train}': validation will run on the "
            f"{train} tiles (optimistic metrics). Add a val split to the source and tile it (--splits ... val)"
        )
