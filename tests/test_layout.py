"""The package layout of ARCHITECTURE.md (read from that file): which folder may import which, no import circles (lazy
imports included), nothing imports an entry point, and the public names import from the package root."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ultralytics_fss"
ENTRY_POINTS = {  # `python -m` targets
    "ultralytics_fss.cli", "ultralytics_fss.demo", "ultralytics_fss.tile_dota", "ultralytics_fss.visualize",
    "ultralytics_fss.evaluate", "ultralytics_fss.compare", "ultralytics_fss.merge_dota",
    "ultralytics_fss.predict_tiled", "ultralytics_fss.tile", "ultralytics_fss.merge_tiles", "ultralytics_fss.__main__",
}  # fmt: skip
FOLDERS = ("assign", "train", "evidence", "large_images", "metrics")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """`ultralytics_fss` modules imported by a file (relative imports resolved); with `top_level_only`, only the
    imports that run when the module is imported (not those inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path) if path.is_relative_to(PACKAGE) else ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "ultralytics_fss"}


def existing(modules: set[str]) -> set[str]:
    """Keep the names that are modules or packages of ours (drop imported functions and classes)."""
    out = set()
    for m in modules:
        path = ROOT.joinpath(*m.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            out.add(m)
    return out


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FOLDERS) else None


def architecture_rules() -> dict[str, set[str]]:
    """The import rules of ARCHITECTURE.md, "What each folder may import": folder -> the folders it may import."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## What each folder may import"):text.index("## The Ultralytics seam")]
    rows = re.findall(r"^\| `(\w+)/` \| ([^|]+) \|", section, re.M)
    return {folder: set(re.findall(r"`(\w+)/`", cell)) for folder, cell in rows}


def test_architecture_file_describes_every_folder_and_seam_module():
    """ARCHITECTURE.md has an import rule for every folder and names every module of the seam."""
    assert set(architecture_rules()) == set(FOLDERS)
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    seam = {p.stem for p in (PACKAGE / "train" / "seam").glob("*.py")} - {"__init__"}
    assert seam and all(f"| `{m}` |" in text for m in seam), seam


def test_folders_import_only_what_architecture_allows():
    allowed = architecture_rules()
    # The exceptions: the `fss_plot_assign` and `fss_coco` training options (train/trainer.py) import their callbacks
    # inside the function that registers them, so that importing train/ never imports evidence/ (no import circle).
    lazy_exceptions = {("ultralytics_fss.train.trainer", f"ultralytics_fss.evidence.{m}") for m in ("pictures", "coco")}
    lazy_exceptions.add(("ultralytics_fss.train.trainer", "ultralytics_fss.evidence"))
    # and the version, read from the one place it is set when a run's identity record is written
    lazy_exceptions.add(("ultralytics_fss.evidence.identity", "ultralytics_fss"))
    checked = 0
    for path in package_files():
        here = folder(module_name(path))
        if here not in allowed:
            continue
        top_level = existing(imports(path, top_level_only=True))
        for imported in existing(imports(path)):
            there = folder(imported)
            if (module_name(path), imported) in lazy_exceptions:
                assert imported not in top_level
                continue
            assert there in allowed[here], f"{path.relative_to(ROOT)} imports {imported}"
            checked += 1
    assert checked > 20


def test_nothing_imports_an_entry_point():
    files = package_files() + sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    for path in files:
        bad = existing(imports(path)) & ENTRY_POINTS
        assert not bad, f"{path.relative_to(ROOT)} imports the entry point(s) {sorted(bad)}"


def test_no_import_circles():
    """Depth-first search over the import-time graph of our modules (a package's `__init__` counts as its module)."""
    graph = {module_name(p): existing(imports(p, top_level_only=True)) - {module_name(p)} for p in package_files()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == "ultralytics_fss" or node.startswith(nxt + "."):
                continue  # importing a submodule runs its parent packages first: not an edge back
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert len(state) == len(graph) > 20


# Lazy imports that may close a circle, each documented where it is made: the `fss_plot_assign` and `fss_coco`
# training options (train/trainer.py) register evidence/'s callbacks, and evidence/ trains through train/.
LAZY_CIRCLE_EXCEPTIONS = {
    ("ultralytics_fss.train.trainer", "ultralytics_fss.evidence"),
    *(("ultralytics_fss.train.trainer", f"ultralytics_fss.evidence.{m}") for m in ("pictures", "coco")),
}


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import circle of a module graph, as a path (None: there is none). Importing a submodule runs its
    parent packages first: that is not an edge back."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == "ultralytics_fss" or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return path + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    return next((c for node in sorted(graph) if node not in state and (c := visit(node, [node]))), None)


def test_no_import_circles_through_lazy_imports_either():
    """Imports inside functions count too (an import made at call time still needs its target's imports to finish):
    no circle but through the documented exceptions."""
    graph = {module_name(p): existing(imports(p)) - {module_name(p)} for p in package_files()}
    graph = {m: {n for n in found if (m, n) not in LAZY_CIRCLE_EXCEPTIONS} for m, found in graph.items()}
    assert import_circle(graph) is None, "import circle: " + " -> ".join(import_circle(graph))
    # the check sees a lazy circle: the run records' old home, compare <-> schedule, made one
    circular = {**graph, "ultralytics_fss.evidence.schedule": {"ultralytics_fss.evidence.compare"}}
    assert import_circle(circular) is not None


def test_root_holds_only_what_users_type_or_import():
    root_modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert root_modules == {"__init__", "__main__", "cli", "demo", "synthetic", "tile_dota", "visualize", "evaluate", "compare",
                            "merge_dota", "predict_tiled", "tile", "merge_tiles"}  # fmt: skip
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(FOLDERS)


LARGE_IMAGES_LAYOUT = {  # large_images/: the two halves as subpackages, the pieces both use at the top
    "": {"__init__", "dota", "errors", "files", "geometry", "images", "polygons", "yolo_labels"},
    "tiling": {"__init__", "config", "output", "pipeline", "prepare", "records", "run", "summary", "tile",
               "yolo_source"},
    "merge_back": {"__init__", "full_images", "merge_dota", "merge_tiles", "metric", "nms", "predict_tiled",
                   "tile_predictions"},
}


def large_images_part(module: str) -> str | None:
    """The part of large_images/ a module belongs to: a half (`tiling`, `merge_back`), `shared` (a module at the
    folder's top), or None (the package `ultralytics_fss.large_images` itself, or a module outside the folder)."""
    parts = module.split(".")
    if parts[:2] != ["ultralytics_fss", "large_images"] or len(parts) == 2:
        return None
    return parts[2] if parts[2] in LARGE_IMAGES_LAYOUT else "shared"


def test_large_images_layout_and_halves():
    """Every module of large_images/ is where the layout says (no module left at an old path), and the halves import
    only downwards: the tiler never imports the merge-back, which reads the tiler's output through its owners; the
    shared modules import neither half."""
    dota = PACKAGE / "large_images"
    found = {part: {p.stem for p in (dota / part).glob("*.py")} for part in LARGE_IMAGES_LAYOUT}
    assert found == LARGE_IMAGES_LAYOUT
    assert {p.name for p in dota.iterdir() if p.is_dir() and any(p.glob("*.py"))} == set(LARGE_IMAGES_LAYOUT) - {""}
    allowed = {"shared": {"shared"}, "tiling": {"shared", "tiling"}, "merge_back": {"shared", "tiling", "merge_back"}}
    checked = 0
    for path in sorted(dota.rglob("*.py")):
        here = large_images_part(module_name(path))
        if here is None:
            continue  # large_images/__init__.py: the public names, loaded lazily from both halves
        for imported in existing(imports(path)):
            there = large_images_part(imported)
            assert there is None or there in allowed[here], f"{path.relative_to(ROOT)} imports {imported}"
            checked += there is not None
    assert checked > 30


def test_public_names():
    import ultralytics_fss
    from ultralytics_fss import FSSAssigner, FSSTrainer, enable_fss
    from ultralytics_fss.assign.fss import FSSAssigner as assigner_home
    from ultralytics_fss.train.trainer import FSSTrainer as trainer_home
    from ultralytics_fss.train.trainer import enable_fss as enable_home

    assert (FSSAssigner, FSSTrainer, enable_fss) == (assigner_home, trainer_home, enable_home)
    assert all(hasattr(ultralytics_fss, name) for name in ultralytics_fss.__all__)
    import ultralytics_fss.large_images as dota

    assert all(getattr(dota, name) is not None for name in dota.__all__)  # the lazy ones resolve in their new homes


def test_tiling_workers_start_without_torch():
    """A tiling pool worker imports `ultralytics_fss.large_images.tiling.tile` (and with it the package root): neither
    torch nor Ultralytics may come along, or every spawned worker pays their import time."""
    code = ("import sys, ultralytics_fss.large_images.tiling.tile; "
            "print([m for m in ('torch', 'ultralytics') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["[]"], proc.stdout + proc.stderr
