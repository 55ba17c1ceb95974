"""`trainer=` and `fss_*` arguments for Ultralytics' stock `yolo` command.

Ultralytics' `entrypoint` checks every key against its default config, so `trainer=` and `fss_*` are rejected before
any trainer runs, and it has no way to hand a trainer class to `Model.train`. The startup hook
(`_ultralytics_fss_hook`, installed with the package) therefore routes the `yolo` console script through
`entrypoint` below, which pre-scans the command line with Ultralytics' own parsers:

- no `trainer=`, no `fss_*` key (on the command line or in a `cfg=` YAML) and no resume of a checkpoint that records a
  trainer: Ultralytics' entrypoint runs unchanged;
- otherwise (train mode only): the trainer class is imported, the `fss_*` keys are validated, and the run is
  `YOLO(model, task=task).train(trainer=cls, **overrides)`, the call Ultralytics' entrypoint itself ends with;
- `yolo tune trainer=...` (a mode Ultralytics' entrypoint lacks: without `trainer=` it stays Ultralytics' error) is
  `YOLO(model, task=task).tune(trainer=cls, **overrides)` (`ultralytics_fss.train.tune`), with `space=space.yaml`
  (`key: [min, max]` ranges, lists of strings or booleans as choices; `FSS_SPACE` when missing), `iterations=`,
  `use_ray=True` and Ultralytics' other tune arguments.

Ultralytics' entrypoint offers no seam between parsing and the key check, so its argument loop and its train-mode
defaults are mirrored in `ultralytics_fss.train.seam` (`parse_yolo_args`, `yolo_train`), with the other copies of
Ultralytics code; resume and DDP stay Ultralytics'.
`python -m ultralytics_fss.cli ...` does the same without the hook.

Examples:
    >>> from ultralytics_fss.cli import entrypoint
    >>> entrypoint("yolo detect train trainer=ultralytics_fss.FSSTrainer model=yolo11n.yaml data=coco8.yaml fss_beta=4")
    >>> entrypoint("yolo tune trainer=ultralytics_fss.FSSTrainer model=yolo11n.yaml data=coco8.yaml iterations=30")
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ultralytics.utils import DEFAULT_CFG, LOGGER, YAML, colorstr

from ultralytics_fss.train.cfg import TRAINER_KEY, check_fss_args, trainer_path
from ultralytics_fss.train.cfg import import_trainer as load_trainer
from ultralytics_fss.train.seam import (
    install_tune_routing,
    parse_yolo_args,
    resumed_train_args,
    stock_entrypoint,
    yolo_train,
)

RECIPES = Path(__file__).parent / "recipes"  # fss.yaml and the paper's recipes, usable by name: cfg=fss.yaml
FSS_TRAINER = "ultralytics_fss.FSSTrainer"
TUNE = "tune"  # the mode word this module adds for trainers (Ultralytics' MODES lack it)


class CLIError(Exception):
    """A user error on the command line, reported as one line without a traceback."""


def resolve_cfg(name: str | Path) -> Path:
    """Return the path of a `cfg=` YAML: an existing file, a YAML shipped in `ultralytics_fss/recipes` (by name), or
    whatever Ultralytics' `check_yaml` finds.

    Raises:
        CLIError: If no such YAML exists.
    """
    path = Path(name)
    if path.is_file():
        return path
    if (RECIPES / path.name).is_file() and path.name == str(name):
        return RECIPES / path.name
    from ultralytics.utils.checks import check_yaml

    try:
        return Path(check_yaml(str(name)))
    except Exception as e:
        shipped = ", ".join(sorted(p.name for p in RECIPES.glob("*.yaml")))
        raise CLIError(f"cfg={name}: file not found ({e}); YAMLs shipped with ultralytics_fss: {shipped}") from e


def parse_args(args: list[str]) -> dict[str, Any] | None:
    """Parse `yolo` arguments the way Ultralytics' entrypoint does, merging a `cfg=` YAML (the command line wins).

    Args:
        args (list[str]): The command line without the program name.

    Returns:
        (dict | None): Overrides, with `task` and `mode` when given; None for anything this module leaves to
            Ultralytics (special commands such as `help`, unknown words, malformed pairs), so its own message shows.
    """
    parsed = parse_yolo_args([f"mode={TUNE}" if a == TUNE else a for a in args])
    if parsed is None:
        return None
    overrides, cfg_file = parsed
    if cfg_file is not None:
        path = resolve_cfg(cfg_file)
        loaded = YAML.load(path) or {}
        check_file_keys(path, {k: v for k, v in loaded.items() if k.startswith("fss_") and k not in overrides})
        overrides = {**{k: v for k, v in loaded.items() if k != "cfg"}, **overrides}
    return overrides


def check_file_keys(path: Path, fss: dict[str, Any]) -> None:
    """Validate the `fss_*` values a `cfg=` YAML brings (those the command line does not override).

    Raises:
        CLIError: Naming the file and the line of the first bad key (`my_fss.yaml:3: fss_beta=-1 ...`).
    """
    for key in fss:  # one key at a time first, so the message points at the line that is wrong
        try:
            check_fss_args({key: fss[key]})
        except (KeyError, TypeError, ValueError) as e:
            raise CLIError(f"{path}:{yaml_line(path, key)}: {e.args[0]}") from e
    try:
        check_fss_args(fss)  # then together: values that are fine alone but not with each other
    except (KeyError, TypeError, ValueError) as e:
        raise CLIError(f"{path}: {e.args[0]}") from e


def yaml_line(path: Path, key: str) -> int:
    """The 1-based line of a top-level `key:` in a YAML file (0 when it cannot be found)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((i for i, line in enumerate(lines, 1) if line.split(":", 1)[0].strip() == key and ":" in line), 0)


def checkpoint_trainer(overrides: dict[str, Any]) -> str | None:
    """Return the trainer path recorded in the checkpoint a `resume` command continues, if any.

    `yolo train resume model=last.pt` and `yolo train resume=last.pt` both resume; a checkpoint written by a stock
    trainer records none, and then Ultralytics resumes it unchanged.
    """
    return resumed_train_args(overrides).get(TRAINER_KEY)


def import_trainer(path: Any, source: str = "trainer") -> type:
    """`ultralytics_fss.train.cfg.import_trainer`, its errors as `CLIError`."""
    try:
        return load_trainer(path, source)
    except ValueError as e:
        raise CLIError(str(e)) from e


def plan(overrides: dict[str, Any]) -> tuple[type, dict[str, Any]] | None:
    """Decide how to run a parsed command: None for Ultralytics' own entrypoint, else (trainer class, overrides).

    Raises:
        CLIError: For `trainer=`/`fss_*` outside train mode, a bad trainer, `fss_*` keys without an FSS trainer, an
            invalid `fss_*` value (the message names the argument), or a model or task an FSS trainer cannot train
            (the message names the model class and what is supported).
    """
    fss_keys = sorted(k for k in overrides if k.startswith("fss_"))
    path, source = overrides.get(TRAINER_KEY), TRAINER_KEY
    if path is None and not fss_keys and overrides.get("mode", DEFAULT_CFG.mode) == "train":
        path, source = checkpoint_trainer(overrides), "trainer (recorded in the checkpoint)"
    if path is None and not fss_keys:
        return None
    mode = overrides.get("mode") or DEFAULT_CFG.mode
    if mode not in ("train", TUNE):
        given = f"{TRAINER_KEY}=" if TRAINER_KEY in overrides else f"{fss_keys[0]}="
        raise CLIError(f"{given} applies to 'yolo train' and 'yolo tune' only, not mode={mode}")
    if path is None:
        raise CLIError(f"{fss_keys[0]}={overrides[fss_keys[0]]!r} needs the FSS trainer: add trainer={FSS_TRAINER}")
    cls = import_trainer(path, source)
    from ultralytics_fss.train.trainer import FSSTrainer, check_trainable

    if fss_keys:
        if not issubclass(cls, FSSTrainer):
            raise CLIError(f"{fss_keys[0]}= needs trainer={FSS_TRAINER} (or a subclass), not trainer={path}")
        try:
            check_fss_args(overrides)
        except (KeyError, TypeError, ValueError) as e:
            raise CLIError(e.args[0]) from e  # args[0]: str(KeyError) would add quotes
    if issubclass(cls, FSSTrainer):
        try:
            check_trainable(DEFAULT_CFG, overrides)  # RT-DETR, YOLO-World, YOLOE, classify...: before any build
        except NotImplementedError as e:
            raise CLIError(str(e)) from e
    overrides = {k: v for k, v in overrides.items() if k != TRAINER_KEY}
    if mode == TUNE:
        overrides["space"] = tune_space(overrides, fss=issubclass(cls, FSSTrainer))
    return cls, overrides


def tune_space(overrides: dict[str, Any], fss: bool) -> dict[str, Any] | None:
    """The search space of a `yolo tune` command, checked: `space=FILE.yaml` (`key: [min, max]` or `[min, max, gain]`
    ranges; a list holding strings or booleans is a list of choices), in Ray Tune's form with `use_ray=True`; None
    (the trainer's default space) without `space=`.

    Raises:
        CLIError: For an unreadable file or a bad entry, naming the file and the entry.
    """
    from ultralytics_fss.train.tune import check_ray_space, check_space, ray_space

    file = overrides.get("space")
    if file is None:
        return None
    if not Path(str(file)).is_file():
        raise CLIError(f"space={file}: file not found")
    try:
        loaded = YAML.load(file)
    except Exception as e:
        raise CLIError(f"space={file}: cannot read it as YAML ({e})") from e
    if not isinstance(loaded, dict):
        raise CLIError(f"space={file}: expected a YAML file of key: [min, max] ranges or key: [choice, ...] lists")
    space = {}
    for key, value in loaded.items():
        numbers = isinstance(value, list) and all(type(v) in (int, float) for v in value) and len(value) in (2, 3)
        space[key] = tuple(value) if numbers else value
    fixed = {k: v for k, v in overrides.items() if k.startswith("fss_")}
    try:
        if overrides.get("use_ray"):
            return check_ray_space(ray_space(space), fixed) if fss else ray_space(space)
        check_space(space, fixed)
    except ValueError as e:
        raise CLIError(f"space={file}: {e}") from e
    return space


def train(cls: type, overrides: dict[str, Any]) -> None:
    """Run the train (or tune) command as Ultralytics' entrypoint would, with `trainer=cls` (`seam.yolo_train`)."""
    method = overrides.get("mode") if overrides.get("mode") == TUNE else "train"
    if method == TUNE:
        from ultralytics_fss.train.tune import tune, wants_fss

        install_tune_routing(wants_fss, tune)  # `YOLO.tune(trainer=...)` below goes to ultralytics_fss.train.tune
    LOGGER.info(
        f"{colorstr('ultralytics_fss:')} {'tuning' if method == TUNE else 'training'} with trainer={trainer_path(cls)}"
    )
    yolo_train(overrides, method=method, trainer=cls)


def entrypoint(debug: str = "") -> None:
    """Ultralytics' `yolo` entrypoint with `trainer=` and `fss_*`: hands everything else to Ultralytics unchanged.

    Args:
        debug (str): A command line including the program name, as for Ultralytics' `entrypoint`; `sys.argv` if empty.

    Raises:
        SystemExit: With status 2 after one error line for a command-line error this module detects.
    """
    args = (debug.split(" ") if debug else sys.argv)[1:]
    try:
        overrides = parse_args(args)
        decided = plan(overrides) if overrides is not None else None
    except CLIError as e:
        LOGGER.error(f"{colorstr('red', 'bold', 'ultralytics_fss:')} {e}")
        raise SystemExit(2) from None
    if decided is None:
        return stock_entrypoint()(debug)
    train(*decided)


if __name__ == "__main__":
    entrypoint()
