"""The `fss_*` hyperparameters: defaults, and the one place they are validated; the `trainer` key (a dotted path,
recorded and imported here).

They travel like every other Ultralytics argument (overrides, args.yaml, checkpoints' `train_args`) and are read
back from `model.args` by the loss.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# name: (default, type, check, description of the valid range)
FSS_KEYS: dict[str, tuple[Any, type, Any, str]] = {
    "fss_assigner": ("fss", str, lambda v: v in {"fss", "tal", "maxiou", "atss", "simota", "paa", "dw"},
                     "'fss', 'tal' (Ultralytics' own), 'maxiou', 'atss', 'simota', 'paa' or 'dw' (the paper's "
                     "baselines)"),
    "fss_alpha": (0.5, float, lambda v: v >= 0, "a number >= 0 (Eq. 3 exponent of p_cls * p_obj)"),
    "fss_beta": (6.0, float, lambda v: v >= 0, "a number >= 0 (Eq. 3 exponent of IoU)"),
    "fss_u": (2.0, float, lambda v: v > 0, "a number > 0 (Eq. 8 smoothing factor)"),
    "fss_q": (10, int, lambda v: v >= 1, "an integer >= 1 (candidates summed into the dynamic k)"),
    # Eq. (9) leaves the loss scale to the detector; under Ultralytics' default recipe (gains tuned for TAL's
    # normaliser) the TAL-scaled loss measured best (benchmarks/accuracy.py, README "Accuracy"). The paper's Eq. (9)
    # is fss_norm=npos fss_box=w fss_target=iou.
    "fss_norm": ("target", str, lambda v: v in {"target", "npos"}, "'target' (sum of w * t) or 'npos' (positives)"),
    "fss_box": ("w_target", str, lambda v: v in {"w", "w_target"}, "'w' (Eq. 9) or 'w_target' (w times the target t)"),
    "fss_target": ("tal", str, lambda v: v in {"iou", "tal"}, "'iou' (Eq. 9) or 'tal' (s / max s * max IoU per GT)"),
    "fss_cls": ("bce", str, lambda v: v in {"bce", "qfl"},
                "'bce' (Eq. 9) or 'qfl' (GFL's Quality Focal Loss, beta 2: the `gfl` comparison variant)"),
    # measured (README "Oriented boxes, segmentation and pose"): OKS helped YOLO26 pose, the mask overlap did not help
    "fss_overlap": ("auto", str, lambda v: v in {"auto", "box", "task"},
                    "'auto' (OKS for YOLO26 pose, box IoU elsewhere), 'box' (Eq. 3 with box IoU) or 'task' (YOLO26 "
                    "segment/pose: Ultralytics' mask-aware overlap or OKS)"),
    "fss_task_weights": (False, bool, lambda v: True,
                         "True or False (Eq. 8 weights also on the mask and keypoint losses of segment and pose)"),
    "fss_radius": (0.0, float, lambda v: v >= 0, "a number >= 0 (centre-region candidates, strides; 0: in-box only)"),
    "fss_prior": (True, bool, lambda v: True, "True or False (Gaussian prior in the dynamic k, Eq. 7)"),
    "fss_weights": (True, bool, lambda v: True, "True or False (Eq. 8 weights in the loss)"),
    "fss_rescue": (False, bool, lambda v: True, "True or False (a GT that lost all positives in conflicts gets one)"),
    "fss_min_k": (1, int, lambda v: v >= 1, "an integer >= 1 (smallest dynamic k; the paper's is 1)"),
    "fss_plot_assign": (0, int, lambda v: v >= 0, "an integer >= 0 (save assign_epoch{n}.png every n epochs; 0: off)"),
    "fss_coco": (False, bool, lambda v: True, "True or False (COCO metrics of best.pt in results.csv, pycocotools)"),
    "fss_o2o": ("tal", str, lambda v: v in {"fss", "tal"}, "'fss' (FSS with k = 1) or 'tal' (Ultralytics' own)"),
}
FSS_DEFAULTS: dict[str, Any] = {k: v[0] for k, v in FSS_KEYS.items()}
TRAINER_KEY = "trainer"  # dotted path of the trainer class, saved in args.yaml and checkpoints for `yolo train resume`
# Trainer paths recorded by checkpoints of earlier releases, and where those classes live now.
MOVED_TRAINERS = {"ultralytics_fss.trainer.FSSTrainer": "ultralytics_fss.FSSTrainer"}


def trainer_path(cls: type) -> str:
    """Return the dotted import path recorded for a trainer class: its public name when its top-level package
    exports it (`ultralytics_fss.FSSTrainer`, stable across internal moves), else `module.Class`."""
    package = sys.modules.get(cls.__module__.split(".")[0])
    if getattr(package, cls.__qualname__, None) is cls:
        return f"{package.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def import_trainer(path: Any, source: str = "trainer") -> type:
    """Import a trainer class from a dotted path `package.module.Class` and check it is a `BaseTrainer` subclass.

    Args:
        path (Any): The `trainer=` value; a path recorded by an earlier release (`MOVED_TRAINERS`) is followed.
        source (str): Where the path came from, for the error message.

    Raises:
        ValueError: For a malformed path, a module or attribute that cannot be imported, or a non-trainer (one line
            naming `source=path`).
    """
    from ultralytics.engine.trainer import BaseTrainer

    if not isinstance(path, str) or "." not in path.strip(".") or " " in path:
        raise ValueError(f"{source}={path!r} must be a dotted path package.module.Class, e.g. "
                         "trainer=ultralytics_fss.FSSTrainer")
    module_name, name = MOVED_TRAINERS.get(path, path).rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{source}={path}: cannot import module '{module_name}' ({e})") from e
    cls = getattr(module, name, None)
    if cls is None:
        raise ValueError(f"{source}={path}: module '{module_name}' has no attribute '{name}'")
    if not (isinstance(cls, type) and issubclass(cls, BaseTrainer)):
        kind = cls.__name__ if isinstance(cls, type) else type(cls).__name__
        raise ValueError(
            f"{source}={path} is not a trainer: expected a subclass of {BaseTrainer.__module__}.BaseTrainer, got {kind}"
        )
    return cls


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Return `value` as `kind`, accepting the spellings Ultralytics' CLI and YAML produce, else raise TypeError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, str):
        return value
    raise TypeError(f"{key}={value!r} has invalid type {type(value).__name__}; expected {FSS_KEYS[key][3]}.")


def check_fss_args(args: dict[str, Any]) -> dict[str, Any]:
    """Validate the `fss_*` entries of `args` and return them completed with defaults.

    Args:
        args (dict): Any mapping of arguments; keys not starting with `fss_` are ignored.

    Returns:
        (dict): Every FSS key with a checked, typed value.

    Raises:
        KeyError: For an unknown `fss_*` key (lists the valid ones).
        TypeError: For a value of the wrong type.
        ValueError: For a value out of range, or alpha + beta == 0.
    """
    unknown = sorted(k for k in args if k.startswith("fss_") and k not in FSS_KEYS)
    if unknown:
        raise KeyError(f"Unknown FSS argument(s) {unknown}; valid FSS arguments are {sorted(FSS_KEYS)}.")
    out = {}
    for key, (default, kind, ok, valid) in FSS_KEYS.items():
        value = args.get(key, default)
        value = default if value is None else _coerce(key, value, kind)
        if not ok(value):
            raise ValueError(f"{key}={value!r} is out of range; expected {valid}.")
        out[key] = value
    if out["fss_alpha"] + out["fss_beta"] <= 0:
        raise ValueError("fss_alpha + fss_beta must be > 0 (Eq. 8 divides by u * (alpha + beta)).")
    if out["fss_assigner"] == "dw" and out["fss_cls"] == "qfl":
        raise ValueError("fss_cls=qfl with fss_assigner=dw: DW weights the classification term itself (its positive "
                         "and negative weights); use fss_cls=bce.")
    return out
