"""Which models FSS trains, told from the `model=` argument before Ultralytics builds anything or makes a run folder.

`FSSTrainer` trains Ultralytics' dense YOLO models: `DetectionModel`, `OBBModel`, `SegmentationModel`, `PoseModel`
with their YOLO heads (end-to-end YOLO26 and YOLOv10 included). Other models reach the trainer as a model YAML or
weights: their class is found from the YAML's head (its last layer, as Ultralytics' `guess_model_task` reads it), from
the class pickled in local weights, or from an Ultralytics asset name to be downloaded (`rtdetr-l.pt`), as `YOLO`
itself routes them (`ultralytics/models/yolo/model.py`, `YOLO.__init__`). What cannot be told here (a custom YAML, a
model object) is still refused by `FSSTrainer.get_model` on the built model (`seam.stock_loss_class`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    return (f"model={model}: {family} model ({cls}); FSS cannot train it. {SUPPORTED}. Train it with Ultralytics' "
            "own trainer (without trainer=).")  # fmt: skip
