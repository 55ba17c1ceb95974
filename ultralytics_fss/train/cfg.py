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
    # normaliser) the TAL-scaled loss measured best (benchmarks/accuracy.py, docs/accuracy.md). The paper's Eq. (9)
    # is fss_norm=npos fss_box=w fss_target=iou.
    "fss_norm": ("target", str, lambda v: v in {"target", "npos"}, "'target' (sum of w * t) or 'npos' (positives)"),
    "fss_box": ("w_target", str, lambda v: v in {"w", "w_target"}, "'w' (Eq. 9) or 'w_target' (w times the target t)"),
    "fss_target": ("tal", str, lambda v: v in {"iou", "tal"}, "'iou' (Eq. 9) or 'tal' (s / max s * max IoU per GT)"),
    "fss_cls": ("bce", str, lambda v: v in {"bce", "qfl"},
                "'bce' (Eq. 9) or 'qfl' (GFL's Quality Focal Loss, beta 2: the `gfl` comparison variant)"),
    # measured (docs/train.md, "Oriented boxes, segmentation and pose"): OKS helped YOLO26 pose, the mask overlap did not help
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
# What each key does, for people: the docs' key table is generated from FSS_KEYS and this (docs/hooks.py), and
# tests/test_docs.py checks that both name the same keys.
FSS_HELP: dict[str, str] = {
    "fss_assigner": (
        "the assignment: `fss`, or the paper's baselines `maxiou`, `atss`, `simota`, `paa` (weight 1, and "
        "FSS's loss keys below: a comparison changes the assignment only), `dw` (its own positive and "
        "negative weights on the same loss keys), or `tal` (Ultralytics' own loss, a run equals a stock run);"
        ' see ["Comparisons"](compare.md)'
    ),
    "fss_alpha": 'Eq. 3 exponent of the classification score `p_cls * p_obj`',
    "fss_beta": 'Eq. 3 exponent of the IoU',
    "fss_u": 'Eq. 8 smoothing: weights are `(s / mean s)^(1 / (u (alpha + beta)))`',
    "fss_q": 'candidates whose IoUs are summed into the dynamic k (Eqs. 4, 5, 7)',
    "fss_target": (
        "soft classification target t_i of a positive: `tal` = s_i / max s * max IoU over its GT's positives "
        "(TAL's scale; measured best, see Accuracy), `iou` = its IoU (Eq. 9)"
    ),
    "fss_box": (
        "weight of a positive's box and DFL terms: `w_target` = w_i * t_i (as Ultralytics weighs by quality),"
        ' `w` = w_i (Eq. 9)'
    ),
    "fss_norm": (
        "loss normaliser D: `target` = sum of w_i * t_i (the scale Ultralytics' gains are tuned for), `npos` "
        '= number of positives (Eq. 9)'
    ),
    "fss_cls": (
        "classification loss: `bce` (Eq. 9), or `qfl` = GFL's Quality Focal Loss, BCE times |t - sigma|^2 "
        '(the `gfl` comparison variant)'
    ),
    "fss_overlap": (
        'the overlap in Eq. 3 for YOLO26 segment and pose models: `box` = box IoU (the paper), `task` = '
        "Ultralytics' own (mask-aware overlap, keypoint OKS), `auto` = OKS for YOLO26 pose, box IoU "
        'everywhere else (measured; see ["Oriented boxes, segmentation and '
        'pose"](train.md#oriented-boxes-segmentation-and-pose))'
    ),
    "fss_task_weights": (
        'Eq. 8 weights also on the mask (segment) and keypoint OKS (pose) terms; the paper weights cls and '
        'box only'
    ),
    "fss_radius": (
        'rule 1 widened: also anchors within this many strides of the GT centre (YOLOX SimOTA uses 2.5); 0 = '
        "Ultralytics' in-box rule"
    ),
    "fss_rescue": (
        'opt-in: a GT that lost all its positives to neighbours in conflicts (rule 7) takes its best anchor '
        'no positive holds'
    ),
    "fss_min_k": (
        "smallest dynamic k (rule 5); the paper's `max(1, ...)` is 1. Tiny objects, whose predicted IoUs stay"
        ' low, get k = 1 (`benchmarks/assignment_by_size.py`); a larger floor gives them more positives'
    ),
    "fss_prior": 'Gaussian prior in the dynamic k (Eq. 7); False ranks by IoU alone (Eq. 4), for ablations',
    "fss_weights": 'Eq. 8 weights in the loss; False weights every positive 1, for ablations',
    "fss_plot_assign": (
        'every n epochs (and after the last), with `plots=True`, save `assign_epoch{n}.png` in the run '
        'folder: FSS beside TAL on the first training image (see ["Assignment pictures"](pictures.md)); 0 = '
        'off'
    ),
    "fss_coco": (
        'after training, score `best.pt` with pycocotools and add the twelve COCO numbers to the last row of '
        '`results.csv` (see ["COCO metrics"](coco.md))'
    ),
    "fss_o2o": (
        "one-to-one branch of end-to-end heads (YOLO26, YOLOv10): `tal` = Ultralytics' own assigner (measured"
        ' better), `fss` = FSS with k = 1'
    ),
}
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
