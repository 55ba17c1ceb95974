"""Tile DOTA-format aerial images into an Ultralytics YOLO dataset, YOLT-style (FSS paper, section 4.1).

Images are rescaled by each rate and cut into ``crop`` x ``crop`` windows every ``stride`` pixels (the last window on
each axis aligned to the image edge, small images zero-padded); each object polygon is clipped to the window with
shapely and kept when intersection / object area >= ``iof``. Output: ``DST/images/{split}``, ``DST/labels/{split}``
(tiles named ``{stem}__{rate}__{left}___{top}`` as in the DOTA devkit), ``DST/data.yaml`` and ``DST/manifest.csv``.

Every file is written atomically; a record per finished image (``DST/.tile_dota/done``) makes a rerun skip finished
images and lets ``--shard K/N`` runs on several machines fill one DST in any order.

Examples:
    Command line::

        python -m ultralytics_fss.tile_dota DOTA-v1.5 DOTA-v1.5-tiles --crop 1024 --stride 800 --rates 0.5 1.0
        yolo detect train data=DOTA-v1.5-tiles/data.yaml

    Python::

        >>> from ultralytics_fss.tile_dota import tile_dota
        >>> summary = tile_dota("DOTA-v1.5", "DOTA-v1.5-tiles", workers=4)  # doctest: +SKIP
        >>> summary.tiles_with_objects, summary.ok  # doctest: +SKIP

Reference:
    FSS paper, section 4.1 (1024 x 1024 patches, stride 800, zero padding); DOTA devkit ``ImgSplit`` (tile names).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ultralytics.utils import LOGGER, TQDM, colorstr

from ultralytics_fss.dota import io
from ultralytics_fss.dota.labels import (
    DOTA_CATEGORIES,
    dataset_names,
    load_names_file,
    read_categories,
    read_label_file,
)
from ultralytics_fss.dota.worker import ImageJob, ImageResult, TileConfig, init_worker, record_path, run_job

__all__ = ["TileSummary", "TilingError", "TilingInterrupted", "main", "tile_dota"]

TilingError = io.TilingError
PREFIX = colorstr("tile_dota: ")

# Memory one worker needs besides its image: interpreter, numpy/cv2/shapely and the libraries the package imports.
_WORKER_BASE_BYTES = 400 * 2**20
# Share of the available memory the pool may plan for, leaving room for the OS page cache and other programs.
_MEMORY_SHARE = 0.8
# Images queued per worker: enough to keep workers busy, few enough to keep the queue's label arrays small.
_QUEUE_PER_WORKER = 2
_STAT_KEYS = ("tiles", "tiles_with_objects", "tiles_empty", "kept", "truncated", "dropped", "repaired", "degenerate")


@dataclass
class TileSummary:
    """What a run did, returned by :func:`tile_dota` and printed at the end.

    Tile and object counters cover every image of this run (this shard), those finished by earlier runs included,
    so the last run's summary describes the whole dataset.

    Attributes:
        dst (Path): Output root.
        images (int): Images in this run (this shard).
        images_tiled (int): Images tiled by this run.
        images_skipped (int): Images finished by an earlier run.
        images_failed (int): Images that could not be tiled (see ``errors``).
        images_pending (int): Images not reached (interrupted run).
        tiles (int): Tiles written.
        tiles_with_objects (int): Tiles with at least one object.
        tiles_empty (int): Tiles without objects (and test-split tiles).
        objects (int): Objects read from the label files.
        kept (int): Object labels written (an object in two overlapping tiles counts twice).
        truncated (int): Of those, objects cut by a tile edge (labelled from their clipped part).
        dropped (int): Object-tile pairs left out because the IoF was below the threshold.
        repaired (int): Self-intersecting or mis-ordered polygons replaced by their convex hull.
        degenerate (int): Polygons below one square pixel, left out.
        difficult_dropped (int): Objects left out by ``difficult="drop"``.
        warnings (list[str]): Data problems that did not stop an image (malformed lines, orphan files...).
        errors (list[str]): Images that failed.
        interrupted (bool): Whether the run was stopped by Ctrl-C or SIGTERM.
        seconds (float): Wall time.
    """

    dst: Path
    images: int = 0
    images_tiled: int = 0
    images_skipped: int = 0
    images_failed: int = 0
    images_pending: int = 0
    tiles: int = 0
    tiles_with_objects: int = 0
    tiles_empty: int = 0
    objects: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    repaired: int = 0
    degenerate: int = 0
    difficult_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every image of the run is finished."""
        return not self.errors and not self.interrupted and self.images_pending == 0

    def add(self, result: ImageResult) -> None:
        """Add one image's counters and messages."""
        for k in _STAT_KEYS:
            setattr(self, k, getattr(self, k) + result.stats.get(k, 0))
        self.warnings += result.messages


class TilingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run after cleaning up; ``summary`` holds what was finished."""

    def __init__(self, summary: TileSummary):
        super().__init__("tiling interrupted")
        self.summary = summary


# ------------------------------------------------------------------------------------------------------- preparation
def _parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) to ``(K, N)``; None is ``(1, 1)``."""
    if shard is None:
        return 1, 1
    try:
        k, n = (int(v) for v in shard.split("/")) if isinstance(shard, str) else shard
    except ValueError:
        raise TilingError(f"--shard must look like K/N (e.g. 2/8), got {shard!r}") from None
    if not 1 <= k <= n:
        raise TilingError(f"--shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def _resolve_names(names: str | Path | None, version: str, splits: list[io.SplitSource]):
    """Category tokens, data.yaml names and token-to-index map for a DOTA version, a class-list file or ``auto``."""
    if names is None:
        if version not in DOTA_CATEGORIES:
            raise TilingError(f"unknown DOTA version {version!r}, choose from {', '.join(DOTA_CATEGORIES)}")
        tokens, builtin = DOTA_CATEGORIES[version], True
    elif str(names) == "auto":
        found = set()
        for s in splits:
            for p in io.list_files(s.labels, (".txt",)).values():
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


def _collect_jobs(src: Path, splits: list[io.SplitSource], classes: dict[str, int], difficult: str, shard, summary):
    """List this shard's images with their parsed labels; report orphans and malformed lines.

    Returns:
        (list[ImageJob]): Jobs sorted by split order, then stem.

    Raises:
        TilingError: If a label file names a category outside the class list (file and line in the message).
    """
    k, n = shard
    entries = []
    for s in splits:
        images = io.list_files(s.images, io.IMAGE_SUFFIXES)
        labels = io.list_files(s.labels, (".txt",))
        if k == 1:  # orphan label files belong to no image, hence to no slice: the first shard reports them
            summary.warnings += [
                f"{p}: label file without image, skipped" for st, p in labels.items() if st not in images
            ]
        entries += [(s, stem, path, labels.get(stem)) for stem, path in images.items()]
    jobs, unknown = [], []
    for i, (s, stem, path, label) in enumerate(entries):
        if i % n != k - 1:  # deterministic round-robin slice of the sorted list: balanced shards
            continue
        if s.labels is not None and label is None:
            summary.warnings.append(
                f"{path}: image without label file {s.labels / (stem + '.txt')}, tiled as background"
            )
        parsed = read_label_file(label, classes) if label is not None else None
        points, cls = (np.zeros((0, 4, 2)), np.zeros(0, np.int64)) if parsed is None else (parsed.points, parsed.cls)
        if parsed is not None:
            summary.warnings += parsed.problems
            unknown += [f"{label}:{ln}: unknown category {c!r}" for c, ln, ci in
                        zip(parsed.categories, parsed.lines.tolist(), parsed.cls.tolist()) if ci < 0]  # fmt: skip
            summary.objects += len(cls)
            if difficult == "drop":
                summary.difficult_dropped += int(parsed.difficult.sum())
                points, cls = points[~parsed.difficult], cls[~parsed.difficult]
        rel = path.relative_to(src).as_posix() if path.is_relative_to(src) else str(path)
        jobs.append(ImageJob(s.name, stem, path, rel, points, cls, s.labels is not None))
    if unknown:
        more = f"\n... and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise TilingError(
            f"{len(unknown)} objects with a category outside the class list (use --version 2.0, --names FILE or "
            f"--names auto for other DOTA-format datasets):\n" + "\n".join(unknown[:20]) + more
        )
    return jobs


def _check_state(dst: Path, cfg: TileConfig, overwrite: bool, sharded: bool, token: str) -> None:
    """Compare with the options of an earlier run into ``dst``; ``overwrite`` clears the tiler's output first."""
    state = dst / io.STATE_DIR
    if overwrite:
        if sharded:
            raise TilingError(
                "--overwrite clears DST for every shard: run it once without --shard, or clear DST yourself"
            )
        for name in ("images", "labels", "obb", io.MANIFEST, "data.yaml", io.STATE_DIR):
            p = dst / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    options = json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as they come back from the file
    path = state / "options.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != options:
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in options.items() if old.get(k) != v)
            raise TilingError(f"{dst} holds tiles made with other options ({diff}); use --overwrite or another DST")
        return
    state.mkdir(parents=True, exist_ok=True)
    io.write_atomic(path, json.dumps(options, indent=1), token)


def _default_workers(jobs: list[ImageJob], rates: tuple[float, ...]) -> int:
    """CPU count, lowered so that the largest image fits in memory in every worker at once."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(cpus, len(jobs)))
    if workers == 1:
        return 1
    import psutil  # an Ultralytics dependency

    biggest = max(w * h * max(b, 1) for w, h, b in (io.image_header(j.image) for j in jobs))
    # decoded source + 8-bit/3-channel conversion + the rescaled copy at the largest rate + tile buffers
    per_worker = _WORKER_BASE_BYTES + biggest * (2 + 2 * max(rates) ** 2)
    fit = max(1, int(psutil.virtual_memory().available * _MEMORY_SHARE // per_worker))
    if fit < workers:
        LOGGER.info(
            f"{PREFIX}{fit} workers instead of {workers}: the largest image needs ~{per_worker / 2**30:.1f} GiB each"
        )
    return min(workers, fit)


# --------------------------------------------------------------------------------------------------------- execution
def _signal_to_interrupt(signum, frame):
    """SIGTERM (job schedulers, ``kill``) takes the same clean path as Ctrl-C."""
    raise KeyboardInterrupt


def _run_inline(jobs, cfg, dst, token, pbar, on_result) -> None:
    """Tile in this process (one worker): no pool start-up cost."""
    for job in jobs:
        on_result(job, run_job(job, cfg, dst, token))
        pbar.update(1)


def _run_pool(jobs, cfg, dst, token, pbar, on_result, workers, start_method, summary) -> None:
    """Tile in a process pool; a dead worker ends the run with the images it held reported as failed."""
    context = mp.get_context(start_method)
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker)
    queue, running = iter(jobs), {}
    try:
        while True:
            while len(running) < workers * _QUEUE_PER_WORKER and (job := next(queue, None)) is not None:
                running[executor.submit(run_job, job, cfg, dst, token)] = job
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                on_result(job, future.result())  # re-raises a worker's KeyboardInterrupt, or BrokenProcessPool
                pbar.update(1)
    except BrokenProcessPool:
        executor.shutdown(wait=True, cancel_futures=True)
        lost = [j for j in running.values() if not record_path(dst, j.split, j.stem).is_file()]
        held = ", ".join(str(j.image) for j in lost)
        summary.errors.append(f"a worker process died (killed, or out of memory?) while tiling one of: {held}")
        summary.images_failed += len(lost)
    except BaseException:
        for p in list(getattr(executor, "_processes", {}).values()):  # stop busy workers now, idle ones ignore it
            try:
                os.kill(p.pid, signal.SIGINT)
            except OSError:
                pass
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def tile_dota(
    src: str | Path,
    dst: str | Path,
    *,
    splits: list[str] | None = None,
    crop: int = 1024,
    stride: int = 800,
    rates: tuple[float, ...] | list[float] = (1.0,),
    iof: float = 0.7,
    format: str = "detect",
    version: str = "1.5",
    names: str | Path | None = None,
    difficult: str = "keep",
    empty: str = "keep",
    ext: str | None = None,
    keep_16bit: bool = False,
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
        stride (int): Step between tiles, pixels (``crop - stride`` is the overlap, the "gap" of split_dota).
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
    """
    t0 = time.perf_counter()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    _check_options(crop, stride, rates, iof, format, difficult, empty, ext, keep_16bit)
    if dst == src:
        raise TilingError(f"DST must differ from SRC ({src})")
    layout, found = io.detect_layout(src)
    wanted = splits or [s for s in ("train", "val", "test") if s in found] or sorted(found)
    missing = [s for s in wanted if s not in found]
    if missing:
        raise TilingError(f"split(s) {missing} not in {src} ({layout} layout has {sorted(found)})")
    sources = [found[s] for s in wanted]
    tokens, yaml_names, classes = _resolve_names(names, version, sources)
    cfg = TileConfig(crop, stride, tuple(float(r) for r in rates), float(iof), format, tokens, difficult, empty, ext,
                     keep_16bit)  # fmt: skip
    k, n = _parse_shard(shard)
    summary = TileSummary(dst=dst)
    jobs = _collect_jobs(src, sources, classes, difficult, (k, n), summary)
    summary.images = len(jobs)
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    _check_state(dst, cfg, overwrite, n > 1, token)

    roots = [dst] + [dst / f for f in cfg.formats()[1:]]
    folders = [r / kind / s for r in roots for kind in ("images", "labels") for s in wanted]
    folders += [dst / io.STATE_DIR / "done" / s for s in wanted]
    io.remove_stale_tmp(folders, stems={j.stem for j in jobs})  # left by a killed run; only this shard's images
    todo = []
    for job in jobs:
        record = record_path(dst, job.split, job.stem)
        if record.is_file():
            summary.add(ImageResult(**json.loads(record.read_text(encoding="utf-8"))))
            summary.images_skipped += 1
        else:
            todo.append(job)
    workers = _default_workers(todo, cfg.rates) if workers is None else max(1, min(workers, len(todo) or 1))
    shard_text = f", shard {k}/{n}" if n > 1 else ""
    LOGGER.info(
        f"{PREFIX}{src} ({layout} layout, splits {', '.join(wanted)}{shard_text}): {len(jobs)} images, "
        f"{summary.images_skipped} already done, {len(todo)} to tile with {workers} worker(s) -> {dst}"
    )

    handled = set()

    def on_result(job: ImageJob, result: ImageResult) -> None:
        handled.add((job.split, job.stem))
        if result.error:
            summary.errors.append(result.error)
            summary.images_failed += 1
        else:
            summary.add(result)
            summary.images_tiled += 1

    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _signal_to_interrupt) if in_main else None
    pbar = TQDM(total=len(todo), desc=f"{PREFIX}images")
    try:
        if workers <= 1 or len(todo) <= 1:
            _run_inline(todo, cfg, dst, token, pbar, on_result)
        else:
            _run_pool(todo, cfg, dst, token, pbar, on_result, workers, start_method, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        pbar.close()
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
        io.remove_stale_tmp(folders + [dst / io.STATE_DIR, dst], token=token)
    for job in todo:  # finished while the run was stopping: count them as the manifest will
        record = record_path(dst, job.split, job.stem)
        if (job.split, job.stem) not in handled and record.is_file():
            summary.add(ImageResult(**json.loads(record.read_text(encoding="utf-8"))))
            summary.images_tiled += 1
    summary.images_pending = summary.images - summary.images_tiled - summary.images_skipped - summary.images_failed
    io.write_manifest(dst, token)
    done_dir = dst / io.STATE_DIR / "done"
    tiled_splits = wanted + sorted(
        d.name for d in (done_dir.iterdir() if done_dir.is_dir() else ()) if d.name not in wanted
    )
    for root in roots:  # every split tiled into dst so far, also by runs with other --splits
        io.write_atomic(root / "data.yaml", io.data_yaml_text(root, tiled_splits, yaml_names), token)
    summary.seconds = time.perf_counter() - t0
    log_summary(summary)
    if summary.interrupted:
        raise TilingInterrupted(summary)
    return summary


def _check_options(crop, stride, rates, iof, format, difficult, empty, ext, keep_16bit) -> None:
    """Reject impossible option values with a message (never ``assert``)."""
    problems = []
    if not (isinstance(crop, int) and crop > 0):
        problems.append(f"crop must be a positive integer, got {crop!r}")
    elif not (isinstance(stride, int) and 0 < stride <= crop):
        problems.append(f"stride must be an integer in 1..crop ({crop}), got {stride!r}")
    if not rates or any(not r > 0 for r in rates) or len(set(rates)) != len(rates):
        problems.append(f"rates must be distinct positive numbers, got {list(rates)}")
    if not 0 <= iof <= 1:
        problems.append(f"iof must be in [0, 1], got {iof}")
    for name, value, choices in (
        ("format", format, ("detect", "obb", "both")),
        ("difficult", difficult, ("keep", "drop")),
        ("empty", empty, ("keep", "drop")),
        ("ext", ext, (None, "png", "jpg")),
    ):
        if value not in choices:
            problems.append(f"{name} must be one of {choices}, got {value!r}")
    if keep_16bit and ext == "jpg":
        problems.append("keep_16bit needs PNG tiles (JPEG is 8-bit)")
    if problems:
        raise TilingError("; ".join(problems))


def log_summary(s: TileSummary) -> None:
    """Print the closing summary and every problem found."""
    for w in s.warnings:
        LOGGER.warning(f"{PREFIX}{w}")
    for e in s.errors:
        LOGGER.error(f"{PREFIX}ERROR {e}")
    state = "interrupted" if s.interrupted else "done" if s.ok else "finished with errors"
    LOGGER.info(
        f"{PREFIX}{colorstr('bold', state)} in {s.seconds:.1f}s. Images: {s.images} ({s.images_tiled} tiled, "
        f"{s.images_skipped} already done, {s.images_failed} failed, {s.images_pending} not reached). "
        f"Tiles: {s.tiles} ({s.tiles_with_objects} with objects, {s.tiles_empty} without). "
        f"Objects: {s.objects} in labels; {s.kept} labels written, {s.truncated} truncated, {s.dropped} dropped "
        f"(IoF below threshold), {s.repaired} repaired, {s.degenerate} degenerate, "
        f"{s.difficult_dropped} difficult dropped. Problems: {len(s.warnings)} warnings, {len(s.errors)} errors. "
        f"Output: {s.dst}"
    )


# --------------------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m ultralytics_fss.tile_dota``."""
    p = argparse.ArgumentParser(
        prog="python -m ultralytics_fss.tile_dota",
        description="Tile a DOTA-format dataset (official, Ultralytics or flat layout) into an Ultralytics YOLO "
        "dataset with data.yaml and manifest.csv. Rerun to resume; use --shard K/N to split the work.",
    )
    p.add_argument("src", type=Path, help="DOTA source root")
    p.add_argument("dst", type=Path, help="output root")
    p.add_argument("--splits", nargs="+", help="splits to tile (default: train val, plus test when present)")
    p.add_argument("--crop", type=int, default=1024, help="tile side in pixels (default: 1024)")
    p.add_argument("--stride", type=int, default=800, help="step between tiles in pixels (default: 800)")
    p.add_argument("--rates", type=float, nargs="+", default=[1.0], help="image scale factors, e.g. 0.5 1.0 1.5")
    p.add_argument(
        "--iof", type=float, default=0.7, help="min intersection/object area to keep an object (default: 0.7)"
    )
    p.add_argument("--format", choices=("detect", "obb", "both"), default="detect", help="label format")
    p.add_argument("--version", choices=tuple(DOTA_CATEGORIES), default="1.5", help="DOTA class list (default: 1.5)")
    p.add_argument("--names", help="class-list file (one per line, or YAML names:) or 'auto'; overrides --version")
    p.add_argument("--difficult", choices=("keep", "drop"), default="keep", help="objects flagged difficult")
    p.add_argument("--empty", choices=("keep", "drop"), default="keep", help="tiles without objects")
    p.add_argument("--ext", choices=("png", "jpg"), help="tile format (default: the source's, PNG for DOTA)")
    p.add_argument("--keep-16bit", action="store_true", help="keep 16-bit images 16-bit (PNG) instead of value >> 8")
    p.add_argument("--workers", type=int, help="worker processes (default: CPU count, limited by memory)")
    p.add_argument("--overwrite", action="store_true", help="delete earlier tiler output in DST first")
    p.add_argument("--shard", help="K/N: tile only the K-th of N deterministic slices of the images")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exits 0 when every image is tiled, 1 when some failed, 2 on bad arguments, 130 when interrupted.

    Args:
        argv (list[str] | None): Arguments; None: ``sys.argv[1:]``.

    Returns:
        (int): The exit status (also passed to ``sys.exit`` when run as a script).
    """
    a = build_parser().parse_args(argv)
    try:
        summary = tile_dota(
            a.src, a.dst, splits=a.splits, crop=a.crop, stride=a.stride, rates=a.rates, iof=a.iof, format=a.format,
            version=a.version, names=a.names, difficult=a.difficult, empty=a.empty, ext=a.ext,
            keep_16bit=a.keep_16bit, workers=a.workers, overwrite=a.overwrite, shard=a.shard,
        )  # fmt: skip
    except TilingError as e:
        LOGGER.error(f"{PREFIX}ERROR {e}")
        return 2
    except KeyboardInterrupt:  # TilingInterrupted: summary already printed
        return 130
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
