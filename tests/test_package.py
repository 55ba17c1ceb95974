"""The package as it is published: `python -m build` makes an sdist and a wheel (from that sdist, as pip does for
anyone installing the sdist), `twine check` passes, and the wheel installed into a fresh environment, run from outside
the source tree, ships what a user needs: the recipes (`cfg=fss.yaml` by name), the startup hook of the stock `yolo`
command, the entry points, one version."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from ultralytics import __version__ as ultralytics_version

import ultralytics_fss
from ultralytics_fss.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.name for p in (ROOT / "ultralytics_fss" / "recipes").glob("*.yaml"))


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> str:
    """Run `cmd` in `cwd` without PYTHONPATH (a checkout on it would shadow the installed package); its output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{out[-3000:]}"
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel of this checkout, built as a release is (`python -m build`: the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    return out


def test_sdist_and_wheel_carry_the_recipes_and_the_hook_and_pass_twine(dist):
    version = ultralytics_fss.__version__
    sdist, wheel = dist / f"ultralytics_fss-{version}.tar.gz", dist / f"ultralytics_fss-{version}-py3-none-any.whl"
    assert sdist.is_file() and wheel.is_file(), sorted(p.name for p in dist.iterdir())
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert sorted(n.rsplit("/", 1)[1] for n in names if "/ultralytics_fss/recipes/" in n) == RECIPES
    with zipfile.ZipFile(wheel) as z:
        files = set(z.namelist())
        metadata = z.read(f"ultralytics_fss-{version}.dist-info/METADATA").decode()
    assert {f"ultralytics_fss/recipes/{r}" for r in RECIPES} <= files
    assert {"ultralytics_fss_hook.pth", "_ultralytics_fss_hook.py", "ultralytics_fss/__main__.py"} <= files
    assert f"\nVersion: {version}\n" in metadata
    run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], cwd=dist)


def test_the_wheel_installed_elsewhere_runs_the_demo_and_the_yolo_command(dist, tmp_path):
    """A fresh venv reusing this environment's packages (torch, Ultralytics...: appended to its path, so the wheel's
    own files come first and this checkout is not on it) gets the wheel and Ultralytics' `yolo` script (no
    dependencies: from the registry); from a folder outside the tree the demo runs at its smallest size and the stock
    `yolo` command trains one tiny epoch with FSSTrainer and the packaged recipe by name."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path)
                   .strip().splitlines()[-1])  # fmt: skip
    ours = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if Path(p).is_dir()]
    (purelib / "zz_reuse_parent.pth").write_text("\n".join(ours) + "\n")  # after the venv's own site-packages
    wheel = next(dist.glob("*.whl"))
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel),
         f"ultralytics=={ultralytics_version}"],
        cwd=tmp_path)  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([str(python), "-c", "import ultralytics_fss, ultralytics; print(ultralytics_fss.__file__)"], work)
    assert str(purelib) in where and str(ROOT) not in where
    version = run([str(python), "-m", "ultralytics_fss", "--version"], work).strip()
    assert version == f"ultralytics-fss {ultralytics_fss.__version__}"
    out = run([str(python), "-m", "ultralytics_fss.demo", "--epochs", "1", "--images", "20", "--imgsz", "64",
               "--batch", "4", "--project", str(work / "demo")], work)  # fmt: skip
    assert "Result:" in out and (work / "demo" / "summary.csv").is_file()
    data = make_dataset(tmp_path / "shapes", images=8, imgsz=64, objects=(2, 4))
    out = run([str(venv / "bin" / "yolo"), "detect", "train", "trainer=ultralytics_fss.FSSTrainer", "cfg=fss.yaml",
               "model=yolo11n.yaml", f"data={data}", "epochs=1", "imgsz=64", "batch=4", "device=cpu", "workers=0",
               f"project={work / 'runs'}", "name=cli", "plots=False"], work)  # fmt: skip
    args = (work / "runs" / "cli" / "args.yaml").read_text()
    assert "trainer: ultralytics_fss.FSSTrainer" in args and "fss_alpha: 0.5" in args, args
    assert "FSS assignment:" in out and (work / "runs" / "cli" / "weights" / "last.pt").is_file()
