"""Startup cost of the `yolo` hook: `python -c pass` with and without `ultralytics_fss_hook.pth`.

Two scratch virtual environments of this interpreter differ only in the hook's two files (the `.pth` and
`_ultralytics_fss_hook.py`, taken from this environment's site-packages if installed, else from `hook/`). Runs of
`python -c pass` alternate between them so that background load hits both alike; the table gives the median and mean
wall time and the added milliseconds (the issue's bar: < 5 ms). `-X importtime` then shows the hook module's own
import time, and a last check confirms the hook imports neither Ultralytics nor torch.

    python benchmarks/startup_hook.py --runs 200
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HOOK_FILES = ("ultralytics_fss_hook.pth", "_ultralytics_fss_hook.py")


def hook_sources() -> list[Path]:
    """The installed hook files, or the repository's copies."""
    site = Path(sysconfig.get_paths()["purelib"])
    installed = [site / name for name in HOOK_FILES]
    repo = [Path(__file__).parents[1] / "hook" / name for name in HOOK_FILES]
    return installed if all(p.is_file() for p in installed) else repo


def make_venv(root: Path, with_hook: bool) -> Path:
    """Create a venv without pip; add the hook files to its site-packages when asked; return its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    if with_hook:
        for src in hook_sources():
            shutil.copy(src, site / src.name)
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True)  # as pip does on install
    return python


def time_once(python: Path) -> float:
    """Wall time of one `python -c pass` in milliseconds."""
    t0 = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1e3


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pythons = {"without hook": make_venv(Path(tmp, "a"), False), "with hook": make_venv(Path(tmp, "b"), True)}
        for python in pythons.values():  # warm the file system cache
            for _ in range(5):
                time_once(python)
        times = {name: [] for name in pythons}
        for _ in range(runs):
            for name, python in pythons.items():
                times[name].append(time_once(python))
        importtime = subprocess.run([str(pythons["with hook"]), "-X", "importtime", "-c", "pass"], capture_output=True,
                                    text=True).stderr  # fmt: skip
        hook_line = next((line for line in importtime.splitlines() if "_ultralytics_fss_hook" in line), "")
        code = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {'ultralytics', 'torch'}))"
        heavy = subprocess.check_output([str(pythons["with hook"]), "-c", code], text=True).strip()

    base_med, base_mean = statistics.median(times["without hook"]), statistics.fmean(times["without hook"])
    print(f"`python -c pass`, {runs} alternating runs each, {sys.executable} (Python {sys.version.split()[0]})\n")
    print("| configuration | median (ms) | mean (ms) | added, median (ms) | added, mean (ms) |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        med, mean = statistics.median(values), statistics.fmean(values)
        print(f"| {name} | {med:.2f} | {mean:.2f} | {med - base_med:+.2f} | {mean - base_mean:+.2f} |")
    if hook_line:
        self_us, cumulative_us, _ = hook_line.split(":", 1)[1].split("|")  # "import time: self | cumulative | name"
        print(f"\n-X importtime of the hook module: self {int(self_us)} us, cumulative {int(cumulative_us)} us")
    print(f"Ultralytics/torch modules imported by `python -c pass` with the hook: {heavy}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of `python -c pass` per configuration")
    main(parser.parse_args().runs)
