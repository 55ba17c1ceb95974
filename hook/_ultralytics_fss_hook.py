"""Startup hook of `ultralytics_fss`: lets Ultralytics' unmodified `yolo` console script accept `trainer=` and `fss_*`.

`ultralytics_fss_hook.pth` (site-packages) imports this module at every interpreter start. It does nothing unless the
running program is Ultralytics' console script (`yolo` or `ultralytics`), and it never imports Ultralytics or torch.
For that script it puts a one-shot finder on `sys.meta_path`: when `ultralytics.cfg` is imported, its module runs
unchanged, then its `entrypoint` is replaced by a thin wrapper that hands the command line to
`ultralytics_fss.cli.entrypoint` (which falls back to the stock entrypoint for every command without `trainer=` or
`fss_*`). Nothing is written to disk. Set `ULTRALYTICS_FSS_HOOK=0` to switch it off for one run; delete the `.pth`
(or `pip uninstall ultralytics-fss`) to remove it.
"""

import os
import sys

SCRIPTS = ("yolo", "ultralytics")  # Ultralytics' console scripts (project.scripts of its pyproject.toml)
TARGET = "ultralytics.cfg"  # the module whose `entrypoint` the console scripts call


def is_console_script(argv=None, orig_argv=None) -> bool:
    """Return True when the running program is Ultralytics' `yolo`/`ultralytics` console script.

    Args:
        argv (list[str], optional): `sys.argv` by default.
        orig_argv (list[str], optional): The interpreter's own command line, `sys.orig_argv` (Python >= 3.10).

    Returns:
        (bool): The script's file name (without `.exe` or `-script.py`) is `yolo` or `ultralytics`, and it was run as a
            script file (not `python -c` or `python -m`).
    """
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0]:
        return False
    name = argv[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix in (".exe", "-script.pyw", "-script.py"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name not in SCRIPTS:
        return False
    orig_argv = getattr(sys, "orig_argv", None) if orig_argv is None else orig_argv
    return orig_argv is None or argv[0] in orig_argv  # `python -c`/`-m` put "-c" or a module path in argv[0]


def _patch(module) -> None:
    """Replace `module.entrypoint` (Ultralytics' CLI) by a wrapper that defers to `ultralytics_fss.cli.entrypoint`."""
    stock = module.entrypoint
    if getattr(stock, "__wrapped__", None) is not None:  # already patched
        return

    def entrypoint(debug: str = ""):
        """Ultralytics' `yolo` entrypoint, extended by `ultralytics_fss` with `trainer=` and `fss_*` arguments."""
        try:
            from ultralytics_fss.cli import entrypoint as fss_entrypoint
        except ImportError as e:  # a broken ultralytics_fss must not break the stock CLI
            sys.stderr.write(f"ultralytics_fss: startup hook inactive ({e}); running the stock yolo command\n")
            return stock(debug)
        return fss_entrypoint(debug)

    entrypoint.__wrapped__ = stock  # ultralytics_fss.cli calls the stock function through this
    module.entrypoint = entrypoint


class _Loader:
    """Run the real loader of `ultralytics.cfg`, then patch the module; every other attribute is the real loader's."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        _patch(module)


class Finder:
    """One-shot `sys.meta_path` finder: wraps the loader of `ultralytics.cfg` and removes itself."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != TARGET:
            return None
        uninstall()
        for finder in sys.meta_path:  # the finders that would have loaded it (this one is gone)
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> bool:
    """Install the finder once (the `.pth` may be processed more than once); return whether the hook is active."""
    if "ultralytics.cfg" in sys.modules:  # imported before us (not at startup): patch in place
        _patch(sys.modules[TARGET])
        return True
    if Finder not in sys.meta_path:
        sys.meta_path.insert(0, Finder)
    return True


def uninstall() -> None:
    """Remove the finder from `sys.meta_path` (the patched entrypoint, if any, stays)."""
    while Finder in sys.meta_path:
        sys.meta_path.remove(Finder)


if os.environ.get("ULTRALYTICS_FSS_HOOK", "1") != "0" and is_console_script():
    install()
