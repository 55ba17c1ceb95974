"""The seam's pieces that follow ultralytics/cfg/__init__.py: the `yolo` command's argument loop and train call, and
the entry point the startup hook replaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ultralytics.cfg import (
    MODES,
    TASK2DATA,
    TASK2MODEL,
    TASKS,
    _handle_deprecation,
    merge_equals_args,
    parse_key_value_pair,
)
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOGGER

# The function Ultralytics' console scripts call (`[project.scripts]` of its pyproject: `yolo` and `ultralytics` are
# `ultralytics.cfg:entrypoint`), which the startup hook (hook/_ultralytics_fss_hook.py, `TARGET`) replaces.
ENTRYPOINT = ("ultralytics.cfg", "entrypoint")


def stock_entrypoint() -> Callable[[str], None]:
    """Ultralytics' own `entrypoint`, unwrapping the startup hook's wrapper if it is installed."""
    from ultralytics import cfg

    return getattr(cfg.entrypoint, "__wrapped__", cfg.entrypoint)


BARE_FLAGS = {"half", "int8", "end2end", "nms"}  # bare boolean flags whose defaults are missing or None (line 1097)


def parse_yolo_args(args: list[str]) -> tuple[dict[str, Any], str | None] | None:
    """Parse `yolo` arguments as `entrypoint`'s loop does (ultralytics/cfg/__init__.py, lines 1067-1105).

    Args:
        args (list[str]): The command line without the program name.

    Returns:
        (tuple | None): (overrides with `task` and `mode` when given, the `cfg=` value or None); None for anything
            left to Ultralytics' own message: special commands (`help`, `settings`, ...), unknown words, a key without
            `=`, malformed pairs.
    """
    overrides, cfg_file = {}, None
    try:
        merged = merge_equals_args(args)
    except SyntaxError:
        return None
    for a in merged:
        a = a[2:] if a.startswith("--") else a
        a = a[:-1] if a.endswith(",") else a
        if "=" in a:
            try:
                k, v = parse_key_value_pair(a)
            except (NameError, SyntaxError, ValueError, AssertionError):
                return None
            if k == "cfg" and v is not None:
                cfg_file = v
            else:
                overrides[k] = v
        elif a in TASKS:
            overrides["task"] = a
        elif a in MODES:
            overrides["mode"] = a
        elif (a in DEFAULT_CFG_DICT and isinstance(DEFAULT_CFG_DICT[a], bool)) or a in BARE_FLAGS:
            overrides[a] = True
        else:
            return None
    return overrides, cfg_file


def yolo_train(overrides: dict[str, Any], method: str = "train", **extra: Any) -> Any:
    """Run a parsed train command as `entrypoint` ends it: `YOLO(model, task=task).train(**overrides, **extra)`
    (`method="tune"`: `.tune(...)`, which Ultralytics' `entrypoint` does not offer, with the same defaults).

    Mirrors `entrypoint`'s task, model and data defaults for train (ultralytics/cfg/__init__.py, lines 1118-1188): a
    task's default model, `yolo26n.pt` when none, the model's task over a conflicting `task=`, the task's default data
    unless resuming. One addition: `resume=last.pt` without `model=` loads that checkpoint, so the model (and its
    task) is the resumed run's.

    Args:
        overrides (dict): Parsed arguments (`parse_yolo_args`), with `task` and `mode` when given.
        method (str): The `YOLO` method to call: "train" or "tune".
        **extra (Any): Further arguments (`trainer=`, `space=`).

    Returns:
        (Any): What the method returns.
    """
    from ultralytics import YOLO

    kwargs = _handle_deprecation({"mode": "train", **overrides})  # as entrypoint's key check (1107 -> 670): half=True
    # becomes quantize=16
    task = kwargs.pop("task", None)
    if task and "model" not in kwargs:
        kwargs["model"] = TASK2MODEL[task]
    resume = kwargs.get("resume")
    name = kwargs.pop("model", None) or (str(resume) if isinstance(resume, (str, Path)) else DEFAULT_CFG.model)
    if name is None:
        name = "yolo26n.pt"
        LOGGER.warning(f"'model' argument is missing. Using default 'model={name}'.")
    kwargs["model"] = name
    model = YOLO(name, task=task)
    if task and task != model.task:
        LOGGER.warning(
            f"conflicting 'task={task}' passed with 'task={model.task}' model. "
            f"Ignoring 'task={task}' and updating to 'task={model.task}' to match model."
        )
    if kwargs.get("data") is None and not kwargs.get("resume"):
        kwargs["data"] = DEFAULT_CFG.data or TASK2DATA.get(model.task or DEFAULT_CFG.task, DEFAULT_CFG.data)
        LOGGER.warning(f"'data' argument is missing. Using default 'data={kwargs['data']}'.")
    if method != "train":
        kwargs.pop("mode")  # `Model.tune` sets mode=train itself
    return getattr(model, method)(**kwargs, **extra)


