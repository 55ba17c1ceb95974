"""Controlled comparisons: assignment variants x seeds, trained with identical data, arguments and seed, each scored
with COCO metrics (`evidence.coco`); a summary table with the paired difference to the first variant, a CSV and a
plot. The engine of `python -m ultralytics_fss.compare` and of `benchmarks/accuracy.py`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ultralytics_fss.evidence.coco import COCO_KEYS
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
}
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


def result_file(project: Path, name: str, seed: int) -> Path:
    """Where the result of one (variant, seed) run is saved."""
    return project / "results" / f"{name}-seed{seed}.json"


def run_one(project: Path, data: str, name: str, fss: dict | None, seed: int, train_args: dict, coco: bool = True):
    """Train (or resume) one run, score best.pt with COCO metrics (detect models), save and return its result row."""
    from ultralytics.nn.tasks import guess_model_task

    from ultralytics_fss.evidence.coco import evaluate
    from ultralytics_fss.evidence.runs import STOCK_TRAINERS, train_run
    from ultralytics_fss.train import FSSTrainer

    last = project / f"{name}-seed{seed}" / "weights" / "last.pt"
    extra = {"resume": str(last)} if last.is_file() else {}  # an interrupted run resumes from its last.pt
    task = guess_model_task(train_args["model"])
    cls = STOCK_TRAINERS[task] if fss is None else FSSTrainer
    row = train_run(name, cls, Path(data), project, seed, **train_args, **(fss or {}), **extra)
    if coco and task == "detect":  # COCO box metrics; other tasks report their own mAP (mask, pose, obb)
        best = project / f"{name}-seed{seed}" / "weights" / "best.pt"
        metrics = evaluate(data, model=best, out=project / f"{name}-seed{seed}" / "coco",
                           imgsz=train_args.get("imgsz", 640), batch=train_args.get("batch", 16),
                           device=train_args.get("device"))  # fmt: skip
        row.update(metrics)
    row.update(variant=name, fss=fss)
    out = result_file(project, name, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(row))
    tmp.replace(out)
    return row


def run_all(project: str | Path, data: str, variants: list[str], seeds: list[int], train_args: dict,
            jobs: int = 1, devices: list[str] | None = None, coco: bool = True) -> list[dict]:  # fmt: skip
    """Train every missing (variant, seed) run, seed-major (an interrupted study keeps complete pairs), `jobs` at a
    time (each in its own process, on its own device when `devices` is given); return all result rows."""
    from ultralytics.utils import LOGGER

    project = Path(project).resolve()
    parsed = dict(parse_variant(v) for v in variants)  # every name checked before anything trains
    todo = [(n, s) for s in seeds for n in parsed if not result_file(project, n, s).is_file()]
    if devices:
        jobs = len(devices)
    if jobs <= 1:
        for name, seed in todo:
            run_one(project, data, name, parsed[name], seed, train_args, coco)
    else:
        free = list(devices or [train_args.get("device", "cpu")] * jobs)

        def launch(job):
            name, seed = job
            device = free.pop()
            log = project / "logs" / f"{name}-seed{seed}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            spec = json.dumps(dict(project=str(project), data=data, name=name, fss=parsed[name], seed=seed,
                                   train_args={**train_args, "device": device}, coco=coco))  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
            with open(log, "w") as f:
                rc = subprocess.run([sys.executable, "-m", "ultralytics_fss.evidence.compare", spec], stdout=f,
                                    stderr=subprocess.STDOUT, env=env).returncode  # fmt: skip
            free.append(device)
            LOGGER.info(f"{name} seed {seed}: {'done' if rc == 0 else f'FAILED (exit {rc}), see {log}'}")

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(launch, todo))
    rows = [json.loads(result_file(project, n, s).read_text()) for s in seeds for n in parsed
            if result_file(project, n, s).is_file()]  # fmt: skip
    write_summary(project / "summary.csv", rows)
    return rows


def write_summary(path: Path, rows: list[dict]) -> None:
    """One CSV row per run: variant, seed, the twelve COCO numbers, mAP50, mAP50-95, epochs, s/epoch and the last
    epoch's assignment statistics."""
    keys = ["variant", "seed", *COCO_KEYS, "mAP50", "mAP50-95", "epochs", "s/epoch", *STAT_KEYS]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            last = r["epochs"][-1] if r["epochs"] else {}
            values = {**r, "epochs": len(r["epochs"]), **last}
            w.writerow([values.get(k, "") for k in keys])


def paired(values: dict[int, float], base: dict[int, float]) -> tuple[float, float] | None:
    """Mean paired difference over the seeds both have, and the half-width of its 95% t interval (None: < 2 seeds)."""
    d = np.array([values[s] - base[s] for s in values if s in base])
    if len(d) < 2:
        return (float(d.mean()), math.nan) if len(d) else None
    return float(d.mean()), T_975.get(len(d) - 1, 1.96) * float(d.std(ddof=1)) / math.sqrt(len(d))


def summary_table(rows: list[dict], metric: str = "mAP50-95") -> str:
    """Markdown: per variant each seed's `metric`, mean +- std, and the paired difference to the first variant with
    its 95% interval over seeds (points)."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    by = {v: {r["seed"]: r[metric] for r in rows if r["variant"] == v} for v in variants}
    lines = [f"| variant | " + " | ".join(f"seed {s}" for s in seeds)
             + f" | mean +- std | vs {variants[0]} (paired, 95% interval) |", "|" + "---|" * (len(seeds) + 3)]  # fmt: skip
    for v in variants:
        vals = list(by[v].values())
        std = np.std(vals, ddof=1) if len(vals) > 1 else 0.0
        cells = [f"{by[v][s]:.3f}" if s in by[v] else "-" for s in seeds]
        diff = "-"
        if v != variants[0] and (p := paired(by[v], by[variants[0]])) is not None:
            diff = f"{100 * p[0]:+.1f}" + ("" if math.isnan(p[1]) else f" +- {100 * p[1]:.1f}")
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {np.mean(vals):.3f} +- {std:.3f} | {diff} |")
    return "\n".join(lines)


def plot_compare(rows: list[dict], path: Path) -> None:
    """`compare.png`: mAP50-95 per epoch (mean +- std band over seeds) per variant, and the final COCO AP, AP50, AP75
    side by side, in Ultralytics' plotting style."""
    import matplotlib.pyplot as plt
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
        ax1.set(xlabel="epoch", ylabel="mAP50-95 (validation)", title="mAP50-95 per epoch (mean +- std over seeds)")
        ax1.legend()
        keys = [k for k in ("AP", "AP50", "AP75") if all(k in r for r in rows)] or ["mAP50-95"]
        width = 0.8 / len(variants)
        for i, v in enumerate(variants):
            vals = np.array([[r[k] for k in keys] for r in rows if r["variant"] == v])
            ax2.bar(np.arange(len(keys)) + i * width, vals.mean(0), width, yerr=vals.std(0) if len(vals) > 1 else None,
                    color=gt_colour(i), label=v)  # fmt: skip
        ax2.set_xticks(np.arange(len(keys)) + width * (len(variants) - 1) / 2, keys)
        ax2.set(title="final metrics of best.pt (mean +- std over seeds)")
        ax2.legend()
        fig.savefig(path, dpi=150)
        plt.close(fig)

    draw()


if __name__ == "__main__":  # one run in a subprocess of `run_all` (jobs > 1)
    spec = json.loads(sys.argv[1])
    run_one(Path(spec["project"]), spec["data"], spec["name"], spec["fss"], spec["seed"], spec["train_args"],
            spec["coco"])  # fmt: skip
