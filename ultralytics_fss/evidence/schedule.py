"""Where the runs of a comparison train: one after another in this process, in local processes (`--jobs`,
`--devices`), or as Ray tasks on a local Ray instance or an existing cluster (`--ray`).

Every run is the same `run_one` (`evidence.compare`), in a process of its own except in the first case, writing its
run folder and `compare.json` into the project folder, with its log in `project/logs/`. With Ray the project folder
should be on a filesystem every node shares: a run that finished on a node where this machine cannot see its folder
has its `compare.json` (record and result) written here from what the task returned, so the summary and resuming
work, while its weights, plots and log stay on that node (named in a warning).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RUN_MODULE = "ultralytics_fss.evidence.compare"  # `python -m RUN_MODULE SPEC` trains one run (its __main__)
RAY_INSTALL = 'pip install "ultralytics-fss[ray]"'


def has_ray() -> bool:
    """Whether Ray is installed (the `ray` extra)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def run_spec(job: dict, data: str, train_args: dict, coco: bool) -> str:
    """The JSON argument of one run's process (`RUN_MODULE`'s __main__)."""
    return json.dumps(
        dict(
            run_dir=str(job["run_dir"]),
            data=data,
            name=job["name"],
            fss=job["fss"],
            seed=job["seed"],
            train_args=train_args,
            record=job["record"],
            coco=coco,
        )
    )


def run_process(spec: str, log: str | Path, threads: int) -> int:
    """Train one run in a new Python process with `threads` CPU threads, its output in `log`; return its exit code."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads))}
    with open(log, "w") as f:
        return subprocess.run(
            [sys.executable, "-m", RUN_MODULE, spec], stdout=f, stderr=subprocess.STDOUT, env=env
        ).returncode


def log_path(project: Path, job: dict) -> Path:
    """The log file of a run trained in its own process."""
    return project / "logs" / f"{Path(job['run_dir']).name}.log"


def report(job: dict, rc: int, log: Path, where: str = "") -> None:
    """One line per finished run."""
    from ultralytics.utils import LOGGER

    state = "done" if rc == 0 else f"FAILED (exit {rc}), see {log}"
    LOGGER.info(f"{job['name']} seed {job['seed']}: {state}{where}")


def in_processes(project: Path, todo: list[dict], data: str, train_args: dict, coco: bool, slots: list[str]) -> None:
    """Train the runs in local processes, one per slot at a time; each slot is a device ("0", "1", ... or "cpu" for
    each of `--jobs`), and CPU threads are shared out between the slots."""
    free = list(slots)
    threads = (os.cpu_count() or 1) // len(slots)

    def launch(job: dict) -> None:
        device = free.pop()
        log = log_path(project, job)
        rc = run_process(run_spec(job, data, {**train_args, "device": device}, coco), log, threads)
        free.append(device)
        report(job, rc, log)

    with ThreadPoolExecutor(len(slots)) as pool:
        list(pool.map(launch, todo))


def connect(address: str | None) -> tuple[bool, int]:
    """Connect to Ray: `address` ("auto", "ray://host:10001", ...) or, when empty, Ray's own default (the cluster in
    `RAY_ADDRESS`, else a new local instance on this machine's CPUs and GPUs).

    Returns:
        started (bool): Whether this call connected (and so should disconnect when the study ends).
        gpus (int): GPUs in the cluster (0: the runs train on CPUs).

    Raises:
        ModuleNotFoundError: Without Ray, naming the extra to install.
    """
    try:
        import ray
    except ImportError as e:
        raise ModuleNotFoundError(f"Ray is not installed: {RAY_INSTALL}") from e
    started = not ray.is_initialized()
    if started:
        ray.init(address=address or None, log_to_driver=False)
    return started, int(ray.cluster_resources().get("GPU", 0))


@contextmanager
def cluster(address: str | None) -> Iterator[int | None]:
    """Inside the block, connected to Ray (`connect`) when `address` is not None: yields the cluster's GPUs (None
    without Ray); disconnects at the end if it connected."""
    if address is None:
        yield None
        return
    started, gpus = connect(address)
    try:
        yield gpus
    finally:
        if started:
            import ray

            ray.shutdown()


def ray_device(train_args: dict, gpus: int | None) -> dict:
    """The train arguments of runs on Ray: device 0 (each task's own GPU) when the cluster has GPUs, else cpu."""
    return train_args if gpus is None else {**train_args, "device": "0" if gpus else "cpu"}


def ray_run(spec: str, log: str, threads: int) -> dict:
    """A Ray task: train one run in its own process (as `in_processes` does) and return its exit code, the node it
    ran on and its stored `compare.json` as that node sees it."""
    from ultralytics_fss.evidence.records import read_run

    rc = run_process(spec, log, threads)
    return dict(rc=rc, node=socket.gethostname(), stored=read_run(Path(json.loads(spec)["run_dir"])))


def on_ray(
    project: Path, todo: list[dict], data: str, train_args: dict, coco: bool, gpus: int, cpus_per_run: int
) -> None:
    """Train the runs as Ray tasks on the connected cluster (`cluster`, which found `gpus` GPUs): one GPU per run
    where the cluster has GPUs (Ray sets each task's visible GPU, so each run trains on device 0), `cpus_per_run`
    CPUs per run otherwise. Paths of data and model files are made absolute (a worker's working folder may differ)."""
    import ray
    from ultralytics.utils import LOGGER

    from ultralytics_fss.evidence.records import RECORD, write_json

    here = socket.gethostname()
    resources = dict(num_gpus=1, num_cpus=1) if gpus else dict(num_cpus=cpus_per_run)
    task = ray.remote(max_retries=0, **resources)(ray_run)
    args = ray_device(train_args, gpus)
    if Path(args["model"]).is_file():
        args["model"] = str(Path(args["model"]).resolve())
    data = str(Path(data).resolve()) if Path(data).is_file() else data
    pending = {
        task.remote(run_spec(job, data, args, coco), str(log_path(project, job)), cpus_per_run): job for job in todo
    }
    LOGGER.info(
        f"Ray: {len(pending)} runs submitted, {'1 GPU' if gpus else f'{cpus_per_run} CPU(s)'} each "
        f"({ray.cluster_resources().get('CPU', 0):.0f} CPUs, {gpus} GPUs in the cluster)"
    )
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(finished[0])
        try:
            out = ray.get(finished[0])
        except Exception as e:  # the task died (node lost, out of memory): the run stays unfinished, rerun resumes
            LOGGER.warning(f"{job['name']} seed {job['seed']}: Ray task failed ({type(e).__name__}: {e})")
            continue
        local = Path(job["run_dir"]) / RECORD
        if out["stored"] and out["stored"].get("result") and not local.is_file():  # a folder this machine cannot see
            local.parent.mkdir(parents=True, exist_ok=True)
            write_json(local, out["stored"])
            LOGGER.warning(f"{job['name']} seed {job['seed']}: its run folder {job['run_dir']} is not shared with "
                           f"node {out['node']}; its record is written here, its weights and log stay there")
        report(job, out["rc"], log_path(project, job), "" if out["node"] == here else f" on {out['node']}")
