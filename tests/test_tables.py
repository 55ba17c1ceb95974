"""`benchmarks/tables.py`: the study tables of the README and the docs come from the stored summaries, and the pages
agree with them."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "tables.py"
RESULTS = Path(__file__).parent / "data" / "tables"  # a small stored study: toy-study/summary.csv, study.json
T_975_2 = 4.303  # Student t, 97.5%, 2 degrees of freedom


def tables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, check=False)


def readme_with(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\nbefore\n\n{body}\n\nafter\n")
    return path


def test_a_table_is_made_from_the_stored_summary(tmp_path):
    readme = readme_with(tmp_path, "<!-- table: toy-study | full mAP50, full mAP50-95 -->\nstale text\n<!-- /table -->")
    done = tables("readme", "--files", str(readme), "--results", str(RESULTS))
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n<!-- /table -->\n\nafter\n")
    assert "stale text" not in text
    assert "Measured 2026-12-01 on Some CPU, 2 CPU cores (cpu), torch 2.14.1, ultralytics 8.4.190" in text
    assert "`yolo11n-obb.yaml` from scratch" in text and "(batch 4, epochs 3, imgsz 512); 3 seeds (0, 1, 2)" in text
    assert "`python benchmarks/aerial.py --task obb --epochs 3`" in text
    rows = {line.split(" | ")[0].strip("| "): line.strip("|").split(" | ") for line in text.splitlines()
            if line.startswith(("| tal", "| fss"))}  # fmt: skip
    # independent arithmetic: paired differences in points, 95% t interval over 3 seeds
    d = [100 * (a - b) for a, b in zip((0.12, 0.21, 0.33), (0.10, 0.20, 0.30))]
    half = T_975_2 * statistics.stdev(d) / math.sqrt(3)
    fss = [c.strip() for c in rows["fss"]]
    assert fss[1:4] == ["0.120", "0.210", "0.330"]
    assert fss[4] == f"{statistics.mean((0.12, 0.21, 0.33)):.3f} ± {statistics.stdev((0.12, 0.21, 0.33)):.3f}"
    assert fss[5] == f"{statistics.mean(d):+.1f} ± {half:.1f}" == "+2.0 ± 2.5"
    d95 = [100 * (a - b) for a, b in zip((0.05, 0.07, 0.15), (0.04, 0.08, 0.12))]
    assert (
        fss[6] == "0.090" and fss[7] == f"{statistics.mean(d95):+.1f} ± {T_975_2 * statistics.stdev(d95) / 3**0.5:.1f}"
    )
    assert fss[8] == "2.00" and [c.strip() for c in rows["tal"]][5:9] == ["-", "0.080", "-", "4.50"]
    again = tables("readme", "--files", str(readme), "--results", str(RESULTS), "--check")
    assert again.returncode == 0, again.stdout  # regenerating changes nothing


def test_check_finds_a_retyped_number_and_bad_markers_are_named(tmp_path):
    readme = readme_with(tmp_path, "<!-- table: toy-study | full mAP50 -->\n<!-- /table -->")
    assert tables("readme", "--files", str(readme), "--results", str(RESULTS)).returncode == 0
    good = readme.read_text()
    readme.write_text(good.replace("| 0.330 |", "| 0.331 |"))
    stale = tables("readme", "--files", str(readme), "--results", str(RESULTS), "--check")
    assert stale.returncode == 1 and "differ" in stale.stdout
    for body, words in [("<!-- table: toy-study | full mAP50 -->\nno end", "README.md:5: '<!-- table: toy-study"),
                        ("<!-- table: nowhere | AP -->\n<!-- /table -->", "README.md:5: "),
                        ("<!-- table: toy-study | AP -->\n<!-- /table -->", "no column AP")]:  # fmt: skip
        readme = readme_with(tmp_path, body)
        before = readme.read_text()
        bad = tables("readme", "--files", str(readme), "--results", str(RESULTS))
        assert bad.returncode == 2 and words in bad.stderr and len(bad.stderr.splitlines()) == 1, bad.stderr
        assert readme.read_text() == before  # nothing written


def test_the_readme_and_docs_tables_are_the_stored_summaries():
    """Every generated table in README.md and docs/*.md equals what the script makes from `benchmarks/results`."""
    done = tables("readme", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_reference_variant_recipe_and_missing_runs(tmp_path):
    """`| vs fss` makes fss the first row and the reference; a tuned recipe is named as such; an unfinished study's
    caption lists the planned runs still missing; an unknown reference is named with exit 2."""
    readme = readme_with(tmp_path, "<!-- table: toy-fast | AP, mAP50 | vs fss -->\n<!-- /table -->")
    done = tables("readme", "--files", str(readme), "--results", str(RESULTS))
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert (
        "recipe: Ultralytics' defaults but (batch 8, epochs 20, imgsz 128, lr0 0.005, mosaic 0.0, optimizer AdamW)"
        in text
    )
    assert "Ultralytics' default recipe" not in text
    assert "Not finished: tal seed 2, fss seed 2, dw seed 2 missing" in text
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r[0].strip() for r in rows] == ["variant", "fss", "tal", "dw"]
    assert rows[0][1] == "COCO AP: seed 0" and "mAP50, mean" in rows[0]  # not "val tiles": this study is not tiled
    tal, dw = ([c.strip() for c in r] for r in rows[2:])
    d = [100 * (a - b) for a, b in zip((0.18, 0.17), (0.19, 0.20))]  # tal - fss, points
    assert tal[4] == f"{statistics.mean(d):+.1f} ± {12.706 * statistics.stdev(d) / math.sqrt(2):.1f}" == "-2.0 ± 12.7"
    assert dw[4].startswith("+1.5 ± ") and rows[1][4].strip() == "-"
    readme = readme_with(tmp_path, "<!-- table: toy-fast | AP | vs gfl -->\n<!-- /table -->")
    bad = tables("readme", "--files", str(readme), "--results", str(RESULTS))
    assert bad.returncode == 2 and "no variant gfl" in bad.stderr and len(bad.stderr.splitlines()) == 1, bad.stderr
