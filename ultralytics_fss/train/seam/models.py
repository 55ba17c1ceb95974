"""The seam's pieces that follow ultralytics/nn/tasks.py and models/yolo/model.py: which loss a model trains with,
which models FSS cannot train, what a checkpoint and a model file say about the model (its task, its arguments).

Each piece names its upstream lines (Ultralytics 8.4.190); tests/test_seam.py and tests/test_trainer.py check them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics.nn.modules.head import Detect, Pose26, Segment26, v10Detect
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, guess_model_task
from ultralytics.utils.loss import PoseLoss26, SegmentLoss26, v8DetectionLoss, v8OBBLoss, v8PoseLoss, v8SegmentationLoss


def stock_loss_class(model) -> type:
    """Return the loss class Ultralytics' `model.init_criterion` uses (for end-to-end heads: inside its `E2ELoss`).

    Mirrors the `init_criterion` methods of DetectionModel, OBBModel, SegmentationModel and PoseModel
    (ultralytics/nn/tasks.py, lines 651-653, 683-685, 715-718, 830-833).

    Raises:
        NotImplementedError: For every other model (RT-DETR, YOLO-World/YOLOE, classify, semantic segmentation,
            depth), naming its task.
    """
    head = model.model[-1]
    if type(model) is DetectionModel and type(head) in {Detect, v10Detect}:
        return v8DetectionLoss
    if type(model) is OBBModel:
        return v8OBBLoss
    if type(model) is SegmentationModel:
        return SegmentLoss26 if isinstance(head, Segment26) else v8SegmentationLoss
    if type(model) is PoseModel:
        return PoseLoss26 if isinstance(head, Pose26) else v8PoseLoss
    task = guess_model_task(model) or "detect"  # RT-DETR's head is not in Ultralytics' table; its task is detect
    raise NotImplementedError(
        f"FSS trains YOLO detect, obb, segment and pose models, not {type(model).__name__} (task={task}). "
        "Train it with Ultralytics' own trainer."
    )


# Which models FSS cannot train, told from `model=` before Ultralytics builds anything or makes a run folder: from a
# YAML's head (its last layer, as `guess_model_task` reads it), the class pickled in local weights, or an asset name to
# be downloaded, as `YOLO.__init__` routes them (ultralytics/models/yolo/model.py). What cannot be told here (a custom
# YAML, a model object) is refused by `stock_loss_class` on the built model. Guarded by tests/test_trainer.py's check
# over every head of Ultralytics' shipped model YAMLs.
# Heads of the models FSS cannot train (the last layer of a model YAML): (Ultralytics model class, family).
UNSUPPORTED_HEADS: dict[str, tuple[str, str]] = {
    "RTDETRDecoder": ("RTDETRDetectionModel", "RT-DETR"),
    "WorldDetect": ("WorldModel", "YOLO-World"),
    "YOLOEDetect": ("YOLOEModel", "YOLOE"),
    "YOLOESegment": ("YOLOESegModel", "YOLOE"),
    "YOLOESegment26": ("YOLOESegModel", "YOLOE"),
    "Classify": ("ClassificationModel", "classify"),
    "SemanticSegment": ("SemanticSegmentationModel", "semantic segmentation"),
    "Depth": ("DepthModel", "depth"),
}
UNSUPPORTED_CLASSES: dict[str, str] = dict(UNSUPPORTED_HEADS.values())  # model class: family
# Ultralytics asset names (downloaded when missing) by family, as `YOLO.__init__` routes YAMLs by name.
ASSET_NAMES = (("rtdetr", "RT-DETR", "RTDETRDetectionModel"), ("-world", "YOLO-World", "WorldModel"),
               ("yoloe", "YOLOE", "YOLOEModel"))  # fmt: skip
SUPPORTED = (
    "FSSTrainer trains YOLO detect, obb, segment and pose models (DetectionModel, OBBModel, SegmentationModel, "
    "PoseModel; YOLO26 and YOLOv10 included)"
)


def unsupported_model(model: Any) -> tuple[str, str] | None:
    """The Ultralytics model class and family of a `model=` value FSS cannot train, found without building it.

    Args:
        model (Any): The `model=` argument: a model YAML, weights, or anything else (not checked here).

    Returns:
        (tuple[str, str] | None): `(class name, family)`, e.g. `("RTDETRDetectionModel", "RT-DETR")`; None when the
            model is trainable or cannot be told yet (missing or malformed file: Ultralytics reports it).

    Examples:
        >>> unsupported_model("rtdetr-l.yaml"), unsupported_model("yolo11n-cls.yaml"), unsupported_model("yolo11n.yaml")
        (('RTDETRDetectionModel', 'RT-DETR'), ('ClassificationModel', 'classify'), None)
    """
    if not isinstance(model, (str, Path)) or not str(model):
        return None
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        from ultralytics.nn.tasks import yaml_model_load

        try:
            head = yaml_model_load(path)["head"][-1][2]
        except Exception:  # missing or malformed: Ultralytics' own error follows, with its own words
            return None
        return UNSUPPORTED_HEADS.get(head)
    if suffix != ".pt":
        return None
    if not path.is_file():  # an asset Ultralytics would download: told by its name
        return next(((cls, family) for word, family, cls in ASSET_NAMES if word in path.stem), None)
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(path)
    except Exception:  # unreadable: Ultralytics' own error follows
        return None
    name = type((ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt).__name__
    return (name, UNSUPPORTED_CLASSES[name]) if name in UNSUPPORTED_CLASSES else None


def refusal(model: Any, cls: str, family: str) -> str:
    """The one-line message for a model FSS cannot train: what it is, what is supported, what to do instead."""
    return (
        f"model={model}: {family} model ({cls}); FSS cannot train it. {SUPPORTED}. Train it with Ultralytics' "
        "own trainer (without trainer=)."
    )


LOSS_TASKS = {v8DetectionLoss: "detect", v8OBBLoss: "obb", v8SegmentationLoss: "segment", SegmentLoss26: "segment",
              v8PoseLoss: "pose", PoseLoss26: "pose"}  # fmt: skip


def model_task(model) -> str:
    """The dense task of `model` (`detect`, `obb`, `segment` or `pose`), from the loss `init_criterion` builds for it.

    Raises:
        NotImplementedError: For models FSS does not train (see `stock_loss_class`).
    """
    return LOSS_TASKS[stock_loss_class(model)]


def args_dict(args) -> dict[str, Any]:
    """`model.args` or `trainer.args` as a new dict: Ultralytics keeps a namespace while training and a dict in
    models loaded from checkpoints."""
    return dict(args) if isinstance(args, dict) else dict(vars(args))


def saved_model_args(weights: str | Path) -> dict[str, Any]:
    """The arguments a checkpoint's model was trained with, `fss_*` and `trainer` included, read from the file.

    A finished run's `best.pt`/`last.pt` keeps them only in the pickled model's own `args`: `strip_optimizer` trims
    `train_args` to Ultralytics' keys (utils/torch_utils.py, lines 939-952), and `load_checkpoint` then replaces
    `model.args` of every loaded model by those trimmed `train_args` (nn/tasks.py, lines 2036 and 2050). An
    unfinished run's checkpoint still has them in `train_args` too.

    Returns:
        (dict[str, Any]): `train_args` under the model's (EMA's) `args`; {} for a file without either.
    """
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    return {**(ckpt.get("train_args") or {}), **args_dict(getattr(model, "args", None) or {})}


def model_file_task(model: str | Path) -> str:
    """The task of a `model=` value as `YOLO(model)` gives it (engine/model.py `_new` and `_load`), never from a guess
    on the file name of a local file: a model YAML's head (`guess_model_task` of the YAML dict), the model pickled in
    local weights, and only for an asset name Ultralytics downloads, the name (`yolo11n-obb.pt` is obb).

    Raises:
        FileNotFoundError: If a model YAML is neither a file nor one Ultralytics ships (`yaml_model_load`).
    """
    from ultralytics.nn.tasks import torch_safe_load, yaml_model_load

    path = Path(model)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return guess_model_task(yaml_model_load(path))
    if path.is_file():
        ckpt, _ = torch_safe_load(str(path))
        return guess_model_task((ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt)
    return guess_model_task(path)


