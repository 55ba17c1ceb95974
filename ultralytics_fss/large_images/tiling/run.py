"""Run stage of the DOTA tiler: how many workers, and tiling the jobs inline or in a process pool.

Ctrl-C and SIGTERM stop a run the same way: a KeyboardInterrupt in the main process, which stops busy workers and
leaves the clean-up to the caller.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Callable

from ultralytics.utils import LOGGER, TQDM

from ..images import image_header
from .config import TileConfig
from .output import TileOutput
from .records import ImageJob, ImageResult
from .summary import PREFIX
from .tile import init_worker, run_job

# Memory one worker needs besides its image: interpreter, numpy/cv2/shapely and the libraries the package imports.
_WORKER_BASE_BYTES = 400 * 2**20
# Share of the available memory the pool may plan for, leaving room for the OS page cache and other programs.
_MEMORY_SHARE = 0.8
# Images queued per worker: enough to keep workers busy, few enough to keep the queue's label arrays small.
_QUEUE_PER_WORKER = 2

OnResult = Callable[[ImageJob, ImageResult], None]


class WorkerDied(Exception):
    """A worker process died (killed, out of memory) and took the pool down; ``lost`` holds its unfinished images."""

    def __init__(self, lost: list[ImageJob]):
        """Name the images the dead worker may have held (those in flight without a record)."""
        held = ", ".join(str(j.image) for j in lost)
        super().__init__(f"a worker process died (killed, or out of memory?) while tiling one of: {held}")
        self.lost = lost


def default_workers(jobs: list[ImageJob], rates: tuple[float, ...]) -> int:
    """CPU count, lowered so that the largest image fits in memory in every worker at once.

    Args:
        jobs (list[ImageJob]): Images to tile (their headers are read, not their pixels).
        rates (tuple[float, ...]): Scale factors; the largest sizes the rescaled copy.

    Returns:
        (int): Worker processes, at least 1 and at most one per image.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(cpus, len(jobs)))
    if workers == 1:
        return 1
    import psutil  # an Ultralytics dependency

    biggest = max(w * h * max(b, 1) for w, h, b in (image_header(j.image) for j in jobs))
    # decoded source + 8-bit/3-channel conversion + the rescaled copy at the largest rate + tile buffers
    per_worker = _WORKER_BASE_BYTES + biggest * (2 + 2 * max(rates) ** 2)
    fit = max(1, int(psutil.virtual_memory().available * _MEMORY_SHARE // per_worker))
    if fit < workers:
        LOGGER.info(
            f"{PREFIX}{fit} workers instead of {workers}: the largest image needs ~{per_worker / 2**30:.1f} GiB each"
        )
    return min(workers, fit)


def run_jobs(
    jobs: list[ImageJob],
    cfg: TileConfig,
    out: TileOutput,
    token: str,
    on_result: OnResult,
    *,
    workers: int,
    start_method: str | None = None,
    prefix: str = PREFIX,
) -> None:
    """Tile ``jobs`` with a progress bar, in this process (one worker) or in a pool; SIGTERM acts as Ctrl-C.

    Args:
        jobs (list[ImageJob]): Images to tile.
        cfg (TileConfig): Output options.
        out (TileOutput): Output state in DST.
        token (str): Run token for temporary names.
        on_result (Callable[[ImageJob, ImageResult], None]): Called in the main process as each image ends.
        workers (int): Worker processes; 1 (or a single job) tiles inline, with no pool start-up cost.
        start_method (str | None): Multiprocessing start method; None: the platform default.
        prefix (str): Log prefix of the progress bar.

    Raises:
        WorkerDied: A worker process died; the images it may have held are unfinished (no record).
        KeyboardInterrupt: Ctrl-C or SIGTERM; busy workers are stopped, temporary files are left to the caller.
    """
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _signal_to_interrupt) if in_main else None
    pbar = TQDM(total=len(jobs), desc=f"{prefix}images")

    def finished(job: ImageJob, result: ImageResult) -> None:
        on_result(job, result)
        pbar.update(1)

    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                finished(job, run_job(job, cfg, out, token))
        else:
            _run_pool(jobs, cfg, out, token, finished, workers, start_method)
    finally:
        pbar.close()
        if in_main:
            signal.signal(signal.SIGTERM, old_term)


def _signal_to_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (job schedulers, ``kill``) takes the same clean path as Ctrl-C."""
    raise KeyboardInterrupt


def _signal_workers(executor: ProcessPoolExecutor, signum: int) -> None:
    """Send `signum` to every worker process of `executor` still alive."""
    for p in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            os.kill(p.pid, signum)
        except OSError:  # already gone
            pass


def _run_pool(
    jobs: list[ImageJob],
    cfg: TileConfig,
    out: TileOutput,
    token: str,
    finished: OnResult,
    workers: int,
    start_method: str | None,
) -> None:
    """Tile in a process pool, at most ``_QUEUE_PER_WORKER`` images queued per worker (arguments: :func:`run_jobs`).

    Raises:
        WorkerDied: A worker process died and took the pool down.
        KeyboardInterrupt: Ctrl-C or SIGTERM (also re-raised from a worker); busy workers get SIGINT first.
    """
    executor = ProcessPoolExecutor(workers, mp_context=mp.get_context(start_method), initializer=init_worker)
    queue, running = iter(jobs), {}
    try:
        while True:
            while len(running) < workers * _QUEUE_PER_WORKER and (job := next(queue, None)) is not None:
                running[executor.submit(run_job, job, cfg, out, token)] = job
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                finished(job, future.result())  # re-raises a worker's KeyboardInterrupt, or BrokenProcessPool
    except BrokenProcessPool:
        # The pool's SIGTERM makes a busy survivor report its interruption through the result queue, whose lock the
        # dead worker may have held: it would block forever and the shutdown with it. Survivors are killed outright.
        _signal_workers(executor, signal.SIGKILL)
        executor.shutdown(wait=True, cancel_futures=True)
        raise WorkerDied([j for j in running.values() if not out.record_path(j.split, j.stem).is_file()]) from None
    except BaseException:
        _signal_workers(executor, signal.SIGINT)  # stop busy workers now, idle ones ignore it
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
