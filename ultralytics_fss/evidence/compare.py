"""Controlled comparisons: assignment variants x seeds, trained with identical data, arguments and seed, each scored
with COCO metrics (`evidence.coco`); a summary table with the paired difference to the first variant, a CSV and a
plot. The engine of `python -m ultralytics_fss.compare` and of `benchmarks/accuracy.py`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ultralytics_fss.evidence import schedule
from ultralytics_fss.evidence.coco import COCO_KEYS
from ultralytics_fss.evidence.records import RECORD, read_run, write_json, write_text
from ultralytics_fss.train.cfg import check_fss_args

# name: fss_* keys (None: Ultralytics' own trainer of the task, its assignment recorded).
BUILTIN: dict[str, dict[str, Any] | None] = {
    "tal": None,
    "fss": {},
    "sel": dict(fss_prior=False, fss_weights=False),
    "sel+prior": dict(fss_weights=False),
    "maxiou": dict(fss_assigner="maxiou"),
    "atss": dict(fss_assigner="atss"),
    "simota": dict(fss_assigner="simota"),
    "gfl": dict(fss_assigner="atss", fss_cls="qfl", fss_target="iou"),  # ATSS + Quality Focal Loss on the IoU
    "paa": dict(fss_assigner="paa"),
    "dw": dict(fss_assigner="dw"),
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """`--help` that shows every option's default, as `(default: X)` after its help text (lists as `0 1 2`); not for
    options whose text already names its default, whose default is None or False (flags), or without help text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        """The help text, with the default appended where it says something."""
        text, default = action.help or "", action.default
        quiet = default is None or default is False or default == argparse.SUPPRESS  # nothing to say (0 is shown)
        if not text or "default" in text or quiet or not action.option_strings:
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class CommandLine(argparse.ArgumentParser):
    """`argparse` with one-line errors (`prog: error: message` on stderr, exit status 2) and the defaults in `--help`
    (`DefaultsHelpFormatter`, unless another `formatter_class` is given)."""

    def __init__(self, *args: Any, **kwargs: Any):
        """Build the parser; `formatter_class` defaults to `DefaultsHelpFormatter`."""
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """Print one line naming the problem and exit 2 (argparse would print its usage first)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


STAT_KEYS = ("pos_per_gt", "no_pos_share", "k_mean", "target_mean", "w_min", "w_max")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # Student t, 97.5%


def parse_variant(spec: str) -> tuple[str, dict[str, Any] | None]:
    """`name` (built-in, `BUILTIN`) or `name:key=value,key=value` (`fss_*` keys on top of the defaults).

    Raises:
        ValueError: For an unknown name, a malformed spec, or an invalid key or value (named).
    """
    from ultralytics.cfg import smart_value

    name, _, keys = spec.partition(":")
    if not keys:
        if name not in BUILTIN:
            raise ValueError(f"unknown variant {spec!r}; built-in: {sorted(BUILTIN)}, or name:fss_key=value,...")
        return name, BUILTIN[name]
    fss = {}
    for item in keys.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.startswith("fss_"):
            raise ValueError(f"variant {spec!r}: {item!r} is not fss_key=value")
        fss[key.strip()] = smart_value(value.strip())
    try:
        check_fss_args(fss)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"variant {spec!r}: {e}") from e
    return name, fss


def find_run_dir(project: Path, name: str, seed: int, record: dict) -> tuple[Path, dict | None]:
    """The folder of the run with exactly this record, or the first free one (`{name}-seed{seed}`, then `-2`,
    `-3`, ... as Ultralytics numbers its run folders); folders holding other runs are never reused.

    Returns:
        run_dir (Path): The run's folder.
        stored (dict | None): Its stored {record, result} when the run exists already.
    """
    from ultralytics.utils import LOGGER

    from ultralytics_fss.evidence.identity import differences

    base, others = f"{name}-seed{seed}", []
    for i in range(1, 10_000):
        run_dir = project / (base if i == 1 else f"{base}-{i}")
        if not run_dir.exists():
            if others:
                LOGGER.info(f"{name} seed {seed}: {', '.join(others)}; training into {run_dir.name}")
            return run_dir, None
        stored = read_run(run_dir)
        if stored is not None and stored.get("record") == record:
            return run_dir, stored
        diff = differences(stored["record"], record) if stored is not None and "record" in stored else []
        others.append(
            f"{run_dir.name} holds "
            + (f"another run ({'; '.join(diff[:4])})" if diff else "files of no comparison run")
        )
    raise RuntimeError(f"no free run folder for {base} in {project}")


def resumable(last: Path) -> bool:
    """Whether `last` is the checkpoint of an interrupted training (Ultralytics marks a finished one with epoch -1;
    a run stopped after training, before its result was stored, trains again: runs are deterministic)."""
    if not last.is_file():
        return False
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(last)
    return ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None


def run_one(
    run_dir: Path, data: str, name: str, fss: dict | None, seed: int, train_args: dict, record: dict, coco: bool = True
) -> dict:
    """Train (or resume) one run into `run_dir`, score best.pt with COCO metrics (detect models) and, on a tiler's
    output, on the full images merged back from the val tiles (`run_dir/full_images`), store its record and result
    in `run_dir/compare.json` and return the result row."""
    from ultralytics_fss.evidence.coco import evaluate
    from ultralytics_fss.large_images.merge_back.full_images import score_full_images, tiled_root
    from ultralytics_fss.evidence.runs import STOCK_TRAINERS, train_run
    from ultralytics_fss.train import FSSTrainer
    from ultralytics_fss.train.seam import model_file_task

    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RECORD, {"record": record, "result": None})  # before training: the folder is claimed
    last = run_dir / "weights" / "last.pt"
    extra = {"resume": str(last)} if resumable(last) else {}  # an interrupted run resumes from its last.pt
    task = model_file_task(train_args["model"])  # the model's own task, as `yolo train` reads it
    cls = STOCK_TRAINERS[task] if fss is None else FSSTrainer
    row = train_run(run_dir, cls, Path(data), seed, **train_args, **(fss or {}), **extra)
    if coco and task == "detect":  # COCO box metrics; other tasks report their own mAP (mask, pose, obb)
        metrics = evaluate(
            data,
            model=run_dir / "weights" / "best.pt",
            out=run_dir / "coco",
            imgsz=train_args.get("imgsz", 640),
            batch=train_args.get("batch", 16),
            device=train_args.get("device"),
        )
        row.update(metrics)
    if (tiles := tiled_root(data)) is not None:  # tiles of large images: scored as the paper scores DOTA, in full
        given = {k: train_args.get(k) for k in ("imgsz", "batch", "device") if train_args.get(k) is not None}
        row.update(score_full_images(tiles, run_dir / "full_images", run_dir / "weights" / "best.pt", **given))
    row.update(variant=name, fss=fss, folder=run_dir.name)
    write_json(run_dir / RECORD, {"record": record, "result": row})
    return row


def plan_runs(
    project: Path, data: str, variants: list[str], seeds: list[int], train_args: dict, model_info: dict | None = None
):
    """Check the data and model, build each (variant, seed) run's record and find its folder, before anything
    trains or is written. `model_info`: the model's `model_fingerprint`, when the caller has it already.

    Returns:
        (list[dict]): One job per run, seed-major: name, fss, seed, record, run_dir, stored (or None).

    Raises:
        DataError: For a missing or unreadable dataset or model (named).
        ValueError: For a bad variant (named).
    """
    from ultralytics_fss.evidence.identity import dataset_fingerprint, model_fingerprint, run_record

    parsed = dict(parse_variant(v) for v in variants)  # every name checked before anything trains
    seeds = list(dict.fromkeys(seeds))
    data_info = {"path": str(Path(data).resolve()) if Path(data).exists() else data, **dataset_fingerprint(data)}
    model_info = model_info or model_fingerprint(train_args["model"])  # run_study checked it already
    jobs = []
    for seed in seeds:
        for name, fss in parsed.items():
            record = run_record(name, fss, seed, train_args, data_info, model_info)
            run_dir, stored = find_run_dir(project, name, seed, record)
            jobs.append(dict(name=name, fss=fss, seed=seed, record=record, run_dir=run_dir, stored=stored))
    return jobs


def run_study(
    p: CommandLine,
    data: str,
    variants: list[str],
    seeds: list[int],
    train_args: dict,
    project: str,
    jobs: int = 1,
    devices: list[str] | None = None,
    ray: str | None = None,
    cpus_per_run: int = 1,
    notes: tuple[str, ...] = (),
) -> Path:
    """The command lines' study (`python -m ultralytics_fss.compare`, `python -m ultralytics_fss.demo`): check
    everything (variants, model task, data, model file) before anything is written, then train what is missing,
    print the tables and write the outputs; every problem found before training stops with `p.error` (exit 2).
    The answer comes last, after the training logs and the tables: where the outputs are, `notes` (lines the caller
    adds), and one line with each variant's paired difference to the first (`differences_line`).

    Returns:
        (Path): The project folder.
    """
    from ultralytics.utils import LOGGER, colorstr

    from ultralytics_fss.assign import BASELINES, ROTATED_BASELINES
    from ultralytics_fss.evidence.identity import DataError, model_fingerprint
    from ultralytics_fss.large_images import MergeError
    from ultralytics_fss.large_images.merge_back.full_images import check_full_images, tiled_root
    from ultralytics_fss.train.seam import model_file_task

    t0 = time.perf_counter()
    try:
        parsed = [parse_variant(v) for v in variants]
    except ValueError as e:
        p.error(str(e))
    if len({name for name, _ in parsed}) < len(parsed):
        p.error(f"--variants {' '.join(variants)}: two variants share a name")
    try:
        model_info = model_fingerprint(train_args["model"])  # a missing model file, before its task is guessed
    except DataError as e:
        p.error(str(e))
    task = model_file_task(train_args["model"])  # a YAML's head or the weights' model, not the file's name
    if task not in {"detect", "obb", "segment", "pose"}:
        p.error(f"--model {train_args['model']} is a {task} model; FSS trains detect, obb, segment and pose models")
    axis_aligned = set(BASELINES) - set(ROTATED_BASELINES)  # baselines without an oriented-box version (PAA, DW)
    baselines = [v for v, (_, fss) in zip(variants, parsed) if (fss or {}).get("fss_assigner") in axis_aligned]
    if task == "obb" and baselines:
        p.error(f"variants {baselines} assign axis-aligned boxes; --model {train_args['model']} is an obb model "
                f"(oriented boxes take tal, fss, {', '.join(ROTATED_BASELINES)})")
    if (tiles := tiled_root(data)) is not None:  # each run is scored on the full images too: can it be?
        try:
            check_full_images(tiles, "val", task)
        except MergeError as e:
            p.error(str(e))
    root = Path(project).resolve()
    if ray is not None and not schedule.has_ray():
        p.error(f"--ray needs Ray: {schedule.RAY_INSTALL}")
    with schedule.cluster(ray) as gpus:
        train_args = schedule.ray_device(train_args, gpus)  # the record holds the kind of device the runs use
        try:
            planned = plan_runs(root, data, variants, seeds, train_args, model_info)
        except DataError as e:
            p.error(str(e))
        rows = train_planned(root, data, planned, train_args, jobs, devices, task == "detect", gpus, cpus_per_run)
    rule = "=" * 100
    LOGGER.info(f"\n{rule}\n{colorstr('bold', 'Summary')} ({root / 'summary.md'})\n\n{summary_text(rows)}\n")
    missing = len(planned) - len(rows)
    if missing:
        LOGGER.warning(f"{missing} of {len(planned)} runs did not finish (see {root / 'logs'}); rerun to resume them")
    LOGGER.info(
        f"Saved summary.csv, summary.md, compare.png to {colorstr('bold', root)} (this study's copies: "
        f"{colorstr('bold', root / 'summaries')})"
    )
    trained = sum(not (job["stored"] and job["stored"].get("result")) for job in planned)
    n_reused = len(planned) - trained
    reused = f", {n_reused} reused (done before with the same arguments)" if n_reused else ""
    LOGGER.info(f"Time: {(time.perf_counter() - t0) / 60:.1f} min; {trained} of {len(planned)} runs trained{reused}")
    for note in notes:
        LOGGER.info(note)
    LOGGER.info(f"{colorstr('bold', 'Result:')} {differences_line(rows)}\n{rule}")
    return root


def run_all(
    project: str | Path,
    data: str,
    variants: list[str],
    seeds: list[int],
    train_args: dict,
    jobs: int = 1,
    devices: list[str] | None = None,
    coco: bool = True,
    ray: str | None = None,
    cpus_per_run: int = 1,
) -> list[dict]:
    """Train every (variant, seed) run not yet done with exactly these arguments, seed-major (an interrupted study
    keeps complete pairs), `jobs` at a time (each in its own process, on its own device when `devices` is given), or
    as Ray tasks (`ray`: a Ray address, "" for Ray's default: `RAY_ADDRESS` or a new local instance; one GPU per
    run where the cluster has GPUs, `cpus_per_run` CPUs otherwise);
    write this call's summary (`write_outputs`) and return its result rows.

    A run is reused only when its stored record (`evidence.identity`) equals this call's: a run made with other
    arguments, data, `fss_*` values or versions stays on disk untouched, and this call trains into a new folder.
    """
    project = Path(project).resolve()
    with schedule.cluster(ray) as gpus:
        train_args = schedule.ray_device(train_args, gpus)  # the record holds the kind of device the runs use
        planned = plan_runs(project, data, variants, seeds, train_args)
        return train_planned(project, data, planned, train_args, jobs, devices, coco, gpus, cpus_per_run)


def train_planned(
    project: Path,
    data: str,
    planned: list[dict],
    train_args: dict,
    jobs: int = 1,
    devices: list[str] | None = None,
    coco: bool = True,
    ray_gpus: int | None = None,
    cpus_per_run: int = 1,
) -> list[dict]:
    """Train the runs of `plan_runs` not yet done (arguments as for `run_all`; `ray_gpus`: the GPUs of the Ray
    cluster `schedule.cluster` connected to, None: no Ray), write the outputs, return the rows."""
    from ultralytics.utils import LOGGER

    for job in planned:
        if job["stored"] and job["stored"].get("result"):
            LOGGER.info(f"{job['name']} seed {job['seed']}: done before with these arguments ({job['run_dir'].name})")
    todo = [job for job in planned if not (job["stored"] and job["stored"].get("result"))]
    if ray_gpus is not None:
        schedule.on_ray(project, todo, data, train_args, coco, gpus=ray_gpus, cpus_per_run=cpus_per_run)
    elif devices or jobs > 1:
        slots = devices or [train_args.get("device", "cpu")] * jobs
        schedule.in_processes(project, todo, data, train_args, coco, slots=slots)
    else:
        for job in todo:
            run_one(job["run_dir"], data, job["name"], job["fss"], job["seed"], train_args, job["record"], coco)
    rows = [stored["result"] for job in planned if (stored := read_run(job["run_dir"])) and stored.get("result")]
    write_outputs(project, rows, [job["record"] for job in planned])
    return rows


def study_id(records: list[dict]) -> str:
    """A short id of a call's set of runs: the same variants, seeds and arguments give the same id."""
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:10]


def write_outputs(project: Path, rows: list[dict], records: list[dict]) -> Path:
    """Write this call's `summary.csv`, `summary.md` (`summary_text`) and `compare.png` into
    `project/summaries/{study}/` (one folder per set of runs, kept) and as the latest copies at the top of `project`,
    each file atomically.

    Returns:
        (Path): The study folder.
    """
    study = project / "summaries" / study_id(records)
    study.mkdir(parents=True, exist_ok=True)
    text = summary_text(rows)
    for folder in (study, project):
        write_summary(folder / "summary.csv", rows)
        write_text(folder / "summary.md", text + "\n")
        if rows:
            plot_compare(rows, folder / "compare.png")
    write_json(study / "study.json", records)
    return study


def summary_text(rows: list[dict]) -> str:
    """Markdown of a study: each table under a heading that names its metric, what it was measured on and its unit
    (the per-seed tables of COCO AP for detect runs and of the task's mAP50-95, the means over seeds, one line per
    run)."""
    if not rows:
        return "(no finished runs)"
    full = full_image_metric(rows)  # tiles of large images: the full images first, as the paper scores DOTA
    blocks = [(metric_title(rows, full), summary_table(rows, full))] if full else []
    blocks += [(metric_title(rows, "AP"), summary_table(rows, "AP"))] if all("AP" in r for r in rows) else []
    where = "`full` ones on the full images, the others on the val tiles" if full else "on the val split"
    blocks += [(metric_title(rows, "mAP50-95"), summary_table(rows, "mAP50-95")),
               (f"Means over seeds: metrics of best.pt ({where}; fractions of 1); pos/GT: positives per ground "
                "truth in the last epoch; s/epoch: seconds of training per epoch", means_table(rows)),
               ("Per run: the same metrics, seconds per epoch, positives per GT, run folder", runs_table(rows))]
    return "\n\n".join(f"### {title}\n\n{table}" for title, table in blocks)


TASK_METRICS = {"detect": "boxes", "obb": "oriented boxes", "segment": "masks", "pose": "keypoints"}


FULL_TITLES = {  # the headline metric of runs on tiles, scored on the full images merged back from the val tiles
    "full mAP50": "DOTA's mAP50 (VOC07, the devkit's rules) on the full images merged back from the val tiles",
    "full AP": "COCO AP (pycocotools: boxes, IoU 0.50:0.95) on the full images merged back from the val tiles",
}


def full_image_metric(rows: list[dict]) -> str | None:
    """The full-image headline metric every row has (`FULL_TITLES`), None for runs on untiled data."""
    return next((k for k in FULL_TITLES if rows and all(k in r for r in rows)), None)


def full_image_keys(rows: list[dict]) -> list[str]:
    """Every full-image metric of the rows (`full mAP50`, `full mAP50-95`; `full AP`, ...), in first-seen order."""
    return list(dict.fromkeys(k for r in rows for k in r if k.startswith("full ")))


def metric_title(rows: list[dict], metric: str) -> str:
    """The heading of `summary_table(rows, metric)`: the metric, what it was computed on, its unit."""
    if metric in FULL_TITLES:
        return f"{FULL_TITLES[metric]}, best.pt, per seed (a fraction of 1; differences in percentage points)"
    if metric == "AP":
        what = "COCO AP (pycocotools: boxes, IoU 0.50:0.95)"
    else:
        tasks = {r.get("task") for r in rows}
        kind = TASK_METRICS.get(tasks.pop(), "the task's own") if len(tasks) == 1 else "the task's own"
        what = f"Ultralytics mAP50-95 ({kind})"
    where = "the val tiles (objects cut by a tile edge count)" if full_image_metric(rows) else "the val split"
    return f"{what} of best.pt on {where}, per seed (a fraction of 1; differences in percentage points)"


def write_summary(path: Path, rows: list[dict]) -> None:
    """One CSV row per run: variant, seed, the full-image metrics (runs on tiles), the twelve COCO numbers, mAP50,
    mAP50-95, epochs, s/epoch, the last epoch's assignment statistics and the run folder; written atomically."""
    keys = ["variant", "seed", *full_image_keys(rows), *COCO_KEYS, "mAP50", "mAP50-95", "epochs", "s/epoch",
            *STAT_KEYS, "folder"]  # fmt: skip
    buffer = io.StringIO(newline="")
    w = csv.writer(buffer)
    w.writerow(keys)
    for r in rows:
        last = r["epochs"][-1] if r["epochs"] else {}
        values = {**r, "epochs": len(r["epochs"]), **last}
        w.writerow([values.get(k, "") for k in keys])
    write_text(path, buffer.getvalue())


def runs_table(rows: list[dict]) -> str:
    """Markdown: one line per run with its final metrics (on tiles the full-image headline first), seconds per epoch,
    positives per GT and folder."""
    coco = any("AP" in r for r in rows)
    full = full_image_metric(rows)
    head = "| variant | seed |" + (f" {full} |" if full else "") + " mAP50 | mAP50-95 |" + (" COCO AP |" if coco else "")
    head += " s/epoch | pos/GT | run |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        metrics = (f" {r[full]:.3f} |" if full else "") + f" {r['mAP50']:.3f} | {r['mAP50-95']:.3f} |"
        metrics += f" {r['AP']:.3f} |" if coco else ""
        lines.append(
            f"| {r['variant']} | {r['seed']} |{metrics} {r['s/epoch']:.1f} | {r['pos/GT']:.2f} | {r.get('folder', '')} |"
        )
    return "\n".join(lines)


def means_table(rows: list[dict]) -> str:
    """Markdown: per variant the mean over seeds of each final metric (on tiles the full-image ones first: DOTA's
    mAP50 and mAP50-95, or COCO's AP, AP50, AP75; COCO AP, AP50, AP75 for detect; mAP50 and mAP50-95), of positives
    per GT in the last epoch and of seconds per epoch."""
    headline = {"full mAP50", "full mAP50-95", "full AP", "full AP50", "full AP75"}
    full = [k for k in full_image_keys(rows) if k in headline and all(k in r for r in rows)]
    keys = full + [k for k in ("AP", "AP50", "AP75") if all(k in r for r in rows)]
    keys += ["mAP50", "mAP50-95", "pos/GT", "s/epoch"]
    lines = ["| variant | seeds | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for v in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == v]
        digits = {"s/epoch": 1, "pos/GT": 2}
        cells = [f"{np.mean([r[k] for r in mine]):.{digits.get(k, 3)}f}" for k in keys]
        lines.append(f"| {v} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(values: dict[int, float], base: dict[int, float]) -> tuple[float, float] | None:
    """Mean paired difference over the seeds both have, and the half-width of its 95% t interval (None: < 2 seeds)."""
    d = np.array([values[s] - base[s] for s in values if s in base])
    if len(d) < 2:
        return (float(d.mean()), math.nan) if len(d) else None
    return float(d.mean()), T_975.get(len(d) - 1, 1.96) * float(d.std(ddof=1)) / math.sqrt(len(d))


def summary_table(rows: list[dict], metric: str = "mAP50-95") -> str:
    """Markdown: per variant each seed's `metric` (a fraction) and its difference to the first variant in percentage
    points, paired by seed; with two or more seeds also the mean +- std over seeds and the 95% t interval of the
    paired difference (one seed gives no interval, so none is shown)."""
    if not rows:
        return "(no finished runs)"
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    by = {v: {r["seed"]: r[metric] for r in rows if r["variant"] == v} for v in variants}
    several = len(seeds) > 1
    head = ["variant", *(f"seed {s}" for s in seeds)]
    head += (
        ["mean +- std", f"vs {variants[0]}, points (mean of paired differences)", "95% interval, points (t over seeds)"]
        if several
        else [f"vs {variants[0]}, points"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in variants:
        vals = list(by[v].values())
        cells = [v, *(f"{by[v][s]:.3f}" if s in by[v] else "-" for s in seeds)]
        p = paired(by[v], by[variants[0]]) if v != variants[0] else None
        diff = "-" if p is None else f"{100 * p[0]:+.1f}"
        if several:
            std = f"{np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "-"
            interval = "-" if p is None or math.isnan(p[1]) else f"+- {100 * p[1]:.1f}"
            cells += [f"{np.mean(vals):.3f} +- {std}", diff, interval]
        else:
            cells.append(diff)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences_line(rows: list[dict]) -> str:
    """One line for the end of a study's output: each variant's paired difference to the first in percentage points
    of its headline metric (on tiles: the full-image one; COCO AP for detect, else mAP50-95), with its 95% interval
    where two or more seeds pair."""
    if not rows:
        return "no finished runs"
    full = full_image_metric(rows)
    metric = full or ("AP" if all("AP" in r for r in rows) else "mAP50-95")
    name = {"full mAP50": "DOTA mAP50 on the full images", "full AP": "COCO AP on the full images",
            "AP": "COCO AP"}.get(metric, metric)  # fmt: skip
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    by = {v: {r["seed"]: r[metric] for r in rows if r["variant"] == v} for v in variants}
    base = variants[0]
    parts = [f"{base} {np.mean(list(by[base].values())):.3f}"]
    for v in variants[1:]:
        p = paired(by[v], by[base])
        if p is None:
            parts.append(f"{v}: no seed paired with {base}")
            continue
        n = sum(s in by[base] for s in by[v])
        spread = (
            f" +- {100 * p[1]:.1f} (95% interval, {n} seeds)"
            if not math.isnan(p[1])
            else " (1 seed: no interval; more --seeds give one)"
        )
        parts.append(f"{v} {np.mean(list(by[v].values())):.3f}, {100 * p[0]:+.1f} points{spread}")
    return f"{name} of best.pt (fraction of 1): " + "; ".join(parts)


def plot_compare(rows: list[dict], path: Path) -> None:
    """`compare.png`: mAP50-95 per epoch per variant, and the final COCO AP, AP50, AP75 side by side, in
    Ultralytics' plotting style; with two or more seeds, the mean over seeds with a +- std band and error bars (one
    seed: its own values, and the titles say which seed)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from ultralytics.utils import plt_settings

    from ultralytics_fss.evidence.pictures import gt_colour  # Ultralytics' colours, contrasting, no near-white

    @plt_settings()
    def draw():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), tight_layout=True)
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        for i, v in enumerate(variants):
            curves = [np.array(r.get("map_per_epoch", []), dtype=float) for r in rows if r["variant"] == v]
            curves = [c for c in curves if len(c)]
            if curves:
                n = min(len(c) for c in curves)
                c = np.stack([c[:n] for c in curves])
                x = np.arange(1, n + 1)
                colour = gt_colour(i)
                ax1.plot(x, c.mean(0), color=colour, label=v, lw=1.8)
                ax1.fill_between(x, c.mean(0) - c.std(0), c.mean(0) + c.std(0), color=colour, alpha=0.2)
        seeds = sorted({r["seed"] for r in rows})
        over = f"mean +- std over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}"
        split = "val tiles" if full_image_metric(rows) else "val split"
        ax1.set(xlabel="epoch", ylabel=f"mAP50-95 on the {split} (fraction of 1)")
        ax1.set_title(f"mAP50-95 per epoch ({over})")
        ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax1.legend()
        keys = [k for k in (full_image_metric(rows),) if k] + (
            [k for k in ("AP", "AP50", "AP75") if all(k in r for r in rows)] or ["mAP50-95"]
        )
        width = 0.8 / len(variants)
        for i, v in enumerate(variants):
            vals = np.array([[r[k] for k in keys] for r in rows if r["variant"] == v])
            ax2.bar(
                np.arange(len(keys)) + i * width,
                vals.mean(0),
                width,
                yerr=vals.std(0) if len(vals) > 1 else None,
                color=gt_colour(i),
                label=v,
            )
        if full_image_metric(rows):  # tiles: say which bars are of the full images and which of the tiles
            ticks = [{"full mAP50": "full images\nDOTA mAP50", "full AP": "full images\nCOCO AP"}.get(k, f"val tiles\n{k}")
                     for k in keys]  # fmt: skip
            ylabel, where = "metric (fraction of 1)", ""
        else:
            ticks = keys
            ylabel = f"{'COCO metric, pycocotools' if keys[0] == 'AP' else 'mAP50-95'} (fraction of 1)"
            where = " on the val split"
        ax2.set_xticks(np.arange(len(keys)) + width * (len(variants) - 1) / 2, ticks)
        ax2.set(ylabel=ylabel, title=f"best.pt{where} ({over})")
        ax2.legend()
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # atomic: a reader never sees half a PNG
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
        plt.close(fig)

    draw()


if __name__ == "__main__":  # one run in its own process (`schedule.run_process`: --jobs, --devices, --ray)
    spec = json.loads(sys.argv[1])
    run_one(
        Path(spec["run_dir"]),
        spec["data"],
        spec["name"],
        spec["fss"],
        spec["seed"],
        spec["train_args"],
        spec["record"],
        spec["coco"],
    )
