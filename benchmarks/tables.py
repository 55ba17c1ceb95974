"""The study tables of the README and the docs, made from the studies' stored summaries and never typed by hand.

    python benchmarks/tables.py keep runs/aerial/detect/study aerial-detect --command "python benchmarks/aerial.py ..."
    python benchmarks/tables.py readme            # rewrite every generated table of README.md and docs/*.md
    python benchmarks/tables.py readme --check    # exit 1 when a table differs from its stored summary

`keep` copies a finished study's `summary.csv` and `summary.md` (`python -m ultralytics_fss.compare`'s outputs) into
`benchmarks/results/NAME/` with `study.json`: the command that made it, the date its last run finished, the versions
and training arguments its runs' identity records hold, and the machine. The per-seed numbers behind every README
table stay in the repository as those small text files.

`readme` fills each block of README.md and docs/*.md that starts with a marker line

    <!-- table: NAME | METRIC[, METRIC...] -->
    <!-- table: NAME | METRIC[, METRIC...] | vs VARIANT -->

and ends with `<!-- /table -->`: a caption (model, recipe and budget, seeds, date, versions, machine, command, and
the runs of the planned grid still missing) and one row per variant: each seed's value of the first metric, its
mean +- std, the paired difference to the reference variant (the study's first, or VARIANT) in percentage points
with its 95% t interval over seeds (`ultralytics_fss.evidence.compare.paired`), then the mean and paired difference
of every further metric, and the mean positives per GT in the last epoch.

    python benchmarks/tables.py keep runs/table5 table5 --command "..." --variants tal fss paa dw --seeds 0 1 2

`--variants`/`--seeds` name the study's planned grid when it has not finished: the caption then lists the missing
runs, and the command given resumes them. `--also FOLDER...` stores the rows of later projects of the same design
beside the study's (a screen of remedies next to the study it pairs with; a folder may be one call's summary,
`PROJECT/summaries/ID`, when later calls rewrote the project's own); a run present in both must agree.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ultralytics_fss.evidence.compare import paired

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"^<!-- table: (?P<name>[\w.-]+) \| (?P<metrics>[^>|]+?)(?: \| vs (?P<ref>[\w.-]+))? -->$")
END = "<!-- /table -->"
NAMES = {  # how a summary.csv column reads in a table
    "full mAP50": "DOTA mAP50, full images",
    "full mAP50-95": "DOTA mAP50-95, full images",
    "full AP": "COCO AP, full images",
    "AP": "COCO AP",
    "mAP50": "mAP50",
    "mAP50-95": "mAP50-95",
}


def read_summary(path: Path) -> list[dict]:
    """The rows of a `summary.csv`: variant and seed, every metric column as a float (empty cells left out)."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out = {"variant": row.pop("variant"), "seed": int(row.pop("seed")), "folder": row.pop("folder", "")}
            out.update({k: float(v) for k, v in row.items() if v != ""})
            rows.append(out)
    return rows


VOLATILE = {"folder", "s/epoch"}  # summary.csv columns that differ between two runs of the same training
DEFAULT_RECIPE = {"batch", "epochs", "imgsz", "workers", "device"}  # what Ultralytics' default recipe sets


def keep(
    study: Path | list[Path],
    name: str,
    command: str,
    results: Path = RESULTS,
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
) -> Path:
    """Copy a study's summaries into `results/name` and write its `study.json` (see the module docstring).

    `study` may be several project folders of one design (a study and a later screen beside it: same model and
    training arguments): their rows are stored together, and a (variant, seed) run found in two of them must have
    the same numbers in both (runs are deterministic), else nothing is written. `variants` and `seeds`, when given,
    are the planned grid of an unfinished study (stored as `planned`).
    """
    from ultralytics.utils.torch_utils import get_cpu_info

    studies = [study] if isinstance(study, Path) else list(study)
    fields, raws, seen, records, finished = [], [], {}, [], []
    for folder in studies:
        summary = folder / "summary.csv"
        if not summary.is_file():
            raise FileNotFoundError(f"{summary}: no summary.csv (run the study first)")
        with open(summary, newline="") as f:
            reader = csv.DictReader(f)
            fields += [c for c in reader.fieldnames or [] if c not in fields]
            for raw in reader:
                key, values = (raw["variant"], raw["seed"]), {k: v for k, v in raw.items() if k not in VOLATILE}
                if key in seen:
                    if seen[key][1] != values:
                        raise ValueError(f"{summary}: {key[0]} seed {key[1]} differs from its run in {seen[key][0]}")
                    continue
                seen[key] = (summary, values)
                run = folder / raw["folder"]
                if not run.is_dir() and folder.parent.name == "summaries":  # compare's copy of one call's summary
                    run = folder.parent.parent / raw["folder"]
                record = json.loads((run / "compare.json").read_text())["record"]
                if records and (record["train_args"], record["model"]) != (
                    records[0]["train_args"],
                    records[0]["model"],
                ):
                    raise ValueError(f"{run}: trained with other arguments than {studies[0] / raws[0]['folder']}")
                records.append(record)
                finished.append((run / "results.csv").stat().st_mtime)
                raws.append({**raw, "folder": os.path.relpath(run, studies[0])})
    versions = {k: v for k, v in records[0]["versions"].items() if all(rec["versions"].get(k) == v for rec in records)}
    out = results / name
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(raws)
    texts = [(folder / "summary.md").read_text() for folder in studies]
    (out / "summary.md").write_text(
        "\n\n".join([texts[0], *(f"## Also: {f}\n\n{t}" for f, t in zip(studies[1:], texts[1:]))])
    )
    meta = {
        "command": command,
        "date": datetime.datetime.fromtimestamp(max(finished), datetime.timezone.utc).date().isoformat(),
        "model": records[0]["model"].get("model", ""),
        "train_args": records[0]["train_args"],
        "versions": versions,
        "device": records[0]["device_type"],
        "machine": f"{get_cpu_info()}, {os.cpu_count()} CPU cores",
        "runs": len(raws),
    }
    if variants or seeds:
        meta["planned"] = {
            "variants": variants or list(dict.fromkeys(r["variant"] for r in raws)),
            "seeds": seeds or sorted({int(r["seed"]) for r in raws}),
        }
    (out / "study.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def caption(meta: dict, rows: list[dict]) -> str:
    """One paragraph: what was trained, on what budget, when, with which versions, on which machine, by which command."""
    seeds = sorted({r["seed"] for r in rows})
    train_args = meta["train_args"]
    args = ", ".join(f"{k} {v}" for k, v in sorted(train_args.items()))
    recipe = "Ultralytics' default recipe" if set(train_args) <= DEFAULT_RECIPE else "recipe: Ultralytics' defaults but"
    v = meta["versions"]
    versions = ", ".join(f"{k} {v[k]}" for k in ("torch", "ultralytics", "ultralytics_fss") if k in v)
    text = (
        f"`{meta['model']}` from scratch, {recipe} ({args}); {len(seeds)} seed"
        f"{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}), paired by seed; best.pt of each run. "
        f"Measured {meta['date']} on {meta['machine']} ({meta['device']}), {versions}. Made by `{meta['command']}`; "
        f"every per-seed number is in `benchmarks/results/{meta['name']}/summary.csv`."
    )
    plan = meta.get("planned")
    done = {(r["variant"], r["seed"]) for r in rows}
    missing = [f"{v} seed {s}" for v in plan["variants"] for s in plan["seeds"] if (v, s) not in done] if plan else []
    if missing:
        text += f" **Not finished: {', '.join(missing)} missing** (the command above trains them, keeping the rest)."
    return text


def table(rows: list[dict], metrics: list[str], reference: str | None = None) -> str:
    """Markdown: per variant the first metric per seed, mean +- std and the paired difference to `reference` (default
    the first variant; points, 95% t interval over seeds); the mean and paired difference of each further metric; mean
    pos/GT. The reference is the first row."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    base = reference or variants[0]
    if base not in variants:
        raise ValueError(f"no variant {base} to compare with (variants: {', '.join(variants)})")
    variants = [base, *(v for v in variants if v != base)]

    def by(v: str, metric: str) -> dict[int, float]:
        return {r["seed"]: r[metric] for r in rows if r["variant"] == v and metric in r}

    def difference(v: str, metric: str) -> str:
        p = paired(by(v, metric), by(base, metric)) if v != base else None
        if p is None:
            return "-"
        return f"{100 * p[0]:+.1f}" + ("" if math.isnan(p[1]) else f" ± {100 * p[1]:.1f}")

    names = {**NAMES, "mAP50": "mAP50, val tiles"} if any("full AP" in r or "full mAP50" in r for r in rows) else NAMES
    first = names.get(metrics[0], metrics[0])
    head = ["variant", *(f"{first}: seed {s}" if i == 0 else f"seed {s}" for i, s in enumerate(seeds))]
    head += ["mean ± std", f"vs {base}, points (95%)"]
    for m in metrics[1:]:
        head += [f"{names.get(m, m)}, mean", f"vs {base}, points (95%)"]
    head.append("pos/GT")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in variants:
        values = by(v, metrics[0])
        mean = np.mean(list(values.values()))
        std = f"{np.std(list(values.values()), ddof=1):.3f}" if len(values) > 1 else "-"
        cells = [v, *(f"{values[s]:.3f}" if s in values else "-" for s in seeds), f"{mean:.3f} ± {std}"]
        cells.append(difference(v, metrics[0]))
        for m in metrics[1:]:
            cells += [f"{np.mean(list(by(v, m).values())):.3f}", difference(v, m)]
        pos = [r["pos_per_gt"] for r in rows if r["variant"] == v and "pos_per_gt" in r]
        cells.append(f"{np.mean(pos):.2f}" if pos else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block(name: str, metrics: list[str], results: Path = RESULTS, reference: str | None = None) -> str:
    """The generated text of one README block: caption, blank line, table."""
    folder = results / name
    if not (folder / "summary.csv").is_file():
        raise FileNotFoundError(f"{folder / 'summary.csv'}: no stored summary (benchmarks/tables.py keep ...)")
    rows = read_summary(folder / "summary.csv")
    missing = [m for m in metrics if not any(m in r for r in rows)]
    if missing:
        raise ValueError(f"{folder / 'summary.csv'}: no column {', '.join(missing)}")
    meta = {**json.loads((folder / "study.json").read_text()), "name": name}
    try:
        body = table(rows, metrics, reference)
    except ValueError as e:
        raise ValueError(f"{folder / 'summary.csv'}: {e}") from None
    return f"{caption(meta, rows)}\n\n{body}"


def render(text: str, results: Path = RESULTS, source: str = "README.md") -> str:
    """`text` with every marked block regenerated; a marker without its end line is an error naming its line."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        out.append(lines[i])
        match = MARKER.match(lines[i])
        i += 1
        if not match:
            continue
        end = next((j for j in range(i, len(lines)) if lines[j] == END), None)
        if end is None:
            raise ValueError(f"{source}:{i}: '{lines[i - 1]}' has no '{END}' line after it")
        metrics = [m.strip() for m in match["metrics"].split(",")]
        try:
            out += block(match["name"], metrics, results, match["ref"]).split("\n")
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"{source}:{i}: {e}") from None
        out.append(END)
        i = end + 1
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    k = sub.add_parser("keep", help="store a finished study's summaries under benchmarks/results/NAME")
    k.add_argument("study", type=Path, help="the study's project folder (summary.csv, run folders)")
    k.add_argument("name", help="folder name under benchmarks/results")
    k.add_argument("--also", type=Path, nargs="+", default=[], help="more project folders of the same design")
    k.add_argument("--command", required=True, help="the command that made the study")
    k.add_argument("--results", type=Path, default=RESULTS)
    k.add_argument("--variants", nargs="+", help="the planned variants, when the study has not finished")
    k.add_argument("--seeds", type=int, nargs="+", help="the planned seeds, when the study has not finished")
    r = sub.add_parser("readme", help="regenerate the marked tables of the README and the docs")
    r.add_argument("--files", type=Path, nargs="+", default=[ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    r.add_argument("--results", type=Path, default=RESULTS)
    r.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is out of date")
    a = p.parse_args(argv)
    try:
        if a.action == "keep":
            print(f"kept {keep([a.study, *a.also], a.name, a.command, a.results, a.variants, a.seeds)}")
            return 0
        texts = {path: path.read_text() for path in a.files}
        new = {path: render(text, a.results, str(path)) for path, text in texts.items()}  # all, before writing any
    except (OSError, ValueError, KeyError) as e:
        print(f"tables.py: {e}", file=sys.stderr)
        return 2
    stale = [path for path in a.files if new[path] != texts[path]]
    if a.check:
        for path in stale:
            print(f"{path}: generated tables differ from benchmarks/results (run benchmarks/tables.py readme)")
        return 1 if stale else 0
    for path in stale:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(new[path])
        tmp.replace(path)  # whole or not at all
    count = sum(bool(MARKER.match(line)) for text in new.values() for line in text.split("\n"))
    print(f"{count} generated tables up to date in {len(a.files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
