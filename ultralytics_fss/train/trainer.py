"""FSS on a trainer: `FSSTrainer` (one name for detect, obb, segment and pose), `enable_fss`, and the one mechanism
both use to install the FSS criterion.

Both add an `InstallCriterion` callback at `on_pretrain_routine_end`, which Ultralytics fires once per run after the
model, its EMA copy and (on resume) the rebuilt end-to-end criterion exist, for fresh and resumed runs alike. The
callback builds the criterion for the training model and for the EMA copy (which computes validation losses) and
carries over the one-to-many / one-to-one schedule of end-to-end heads (`E2ELoss.updates`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ultralytics.cfg import cfg2dict
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.nn.tasks import guess_model_task
from ultralytics.utils import DEFAULT_CFG, LOGGER, IterableSimpleNamespace, colorstr
from ultralytics.utils.torch_utils import unwrap_model

from ultralytics_fss.train.callbacks import add_stats_callbacks
from ultralytics_fss.train.cfg import FSS_DEFAULTS, TRAINER_KEY, check_fss_args, trainer_path
from ultralytics_fss.train.loss import build_fss_criterion, build_tal_criterion
from ultralytics_fss.train.seam import (
    UNSUPPORTED_HEADS,
    args_dict,
    keep_e2e_schedule,
    model_file_task,
    refusal,
    resumed_train_args,
    stock_loss_class,
    unsupported_model,
)

INSTALL_EVENT = "on_pretrain_routine_end"  # after EMA creation and resume, before the first batch


class InstallCriterion:
    """`on_pretrain_routine_end` callback: put an FSS (or a recording stock) criterion on the model and its EMA copy.

    A class rather than a closure so that Ultralytics' DDP launcher pickles it by reference with its values. A trainer
    holds at most one: `add_to` replaces any earlier one.

    Attributes:
        fss (dict | None): Checked `fss_*` values for trainers whose args lack them (`enable_fss` on a stock trainer):
            each model gets a copy of its args with these values, while `trainer.args` stays untouched so the stock
            validator, `args.yaml` and the DDP state see only Ultralytics' keys. None: the values in the model's args
            (`FSSTrainer`, which declares the keys).
        stock (bool): Install Ultralytics' own loss with its positives recorded (`record_tal_stats`) instead of FSS.
    """

    def __init__(self, fss: dict[str, Any] | None = None, stock: bool = False):
        """Check and keep the `fss_*` values (None: read them from the trainer's args at install time)."""
        self.fss = None if fss is None else check_fss_args(fss)
        self.stock = stock

    def __call__(self, trainer) -> None:
        """Install the criterion on the trainer's model and EMA copy."""
        build: Callable = build_tal_criterion if self.stock else build_fss_criterion
        model = unwrap_model(trainer.model)
        previous = getattr(model, "criterion", None)
        for target in (model, trainer.ema.ema if trainer.ema else None):
            if target is None:
                continue
            if self.fss is not None:
                target.args = IterableSimpleNamespace(**{**args_dict(target.args), **self.fss})
            criterion = build(target)
            keep_e2e_schedule(criterion, previous)  # an E2ELoss rebuilt by Ultralytics on resume: its decay goes on
            target.criterion = criterion
        if not self.stock:
            values = check_fss_args(args_dict(model.args))
            LOGGER.info(f"{colorstr('FSS:')} " + ", ".join(f"{k}={v}" for k, v in values.items()))
            # The imports of evidence/ from train/, at run time only: the evidence is evidence/'s, the keys are glue.
            if values["fss_plot_assign"] and trainer.args.plots:
                from ultralytics_fss.evidence.pictures import AssignmentPictures

                AssignmentPictures(values["fss_plot_assign"]).add_to(trainer)
            if values["fss_coco"]:
                from ultralytics_fss.evidence import coco

                if coco.on_train_end not in trainer.callbacks["on_train_end"]:
                    trainer.add_callback("on_train_end", coco.on_train_end)

    def add_to(self, target) -> None:
        """Register on a trainer or a `YOLO` model in place of any earlier `InstallCriterion`, with the statistics
        callbacks."""
        event = target.callbacks[INSTALL_EVENT]
        event[:] = [f for f in event if not isinstance(f, InstallCriterion)]
        target.add_callback(INSTALL_EVENT, self)
        add_stats_callbacks(target)

    def __repr__(self) -> str:
        if self.stock:
            return "InstallCriterion(stock)"
        changed = None if self.fss is None else {k: v for k, v in self.fss.items() if v != FSS_DEFAULTS[k]}
        return f"InstallCriterion(fss={changed})"


def resolve_task(cfg, overrides: dict[str, Any]) -> str:
    """The task a trainer built from these arguments trains: `task=`, else the task recorded in the checkpoint a
    resume continues, else the model's (`seam.model_file_task`: a YAML's head, the model in weights), else `cfg`'s."""
    if overrides.get("task"):
        return overrides["task"]
    task = resumed_train_args(overrides).get("task")
    if task:
        return task
    model = overrides.get("model")
    if isinstance(model, (str, Path)) and str(model):
        try:  # from the YAML's head or the weights' model, as `YOLO(model)` does (a name alone warns for yolo11n.yaml)
            return model_file_task(model)
        except Exception:
            pass  # a file Ultralytics cannot read: its own error comes when the model is built
    if model:
        return guess_model_task(model)
    return cfg2dict(cfg).get("task") or "detect"


def check_trainable(cfg, overrides: dict[str, Any] | None) -> str:
    """The task an FSS trainer built from these arguments trains, once the model and task are known to be trainable.

    The model class is told from `model=` (`ultralytics_fss.train.seam.unsupported_model`: the YAML's head, the
    class in local weights, an asset name), so nothing is built or written; a resumed run is not checked again.

    Returns:
        (str): The task (`resolve_task`), one of `TASK_TRAINERS`.

    Raises:
        NotImplementedError: For a model FSS cannot train (RT-DETR, YOLO-World, YOLOE, classify...), naming its class
            and what is supported; for a task FSS does not train, naming it.
    """
    overrides = dict(overrides or {})
    model = overrides.get("model") or cfg2dict(cfg).get("model")
    found = None if overrides.get("resume") else unsupported_model(model)
    if found is not None:
        raise NotImplementedError(refusal(model, *found))
    task = resolve_task(cfg, overrides)
    if task not in TASK_TRAINERS:
        raise NotImplementedError(
            f"FSS trains the dense tasks {sorted(TASK_TRAINERS)}, not task={task}; train it with Ultralytics' own "
            "trainer (without trainer=)."
        )
    return task


class FSSTrainer(DetectionTrainer):
    """Trainer whose criterion assigns labels with FSS, for every dense Ultralytics task; the model class stays
    Ultralytics' own.

    One name for all tasks: `FSSTrainer(...)` returns the trainer of the task that `task=` or the model names
    (`yolo11n-obb.yaml` -> `FSSOBBTrainer`, a subclass of this class and of Ultralytics' `OBBTrainer`; likewise
    `FSSSegmentationTrainer` and `FSSPoseTrainer`; detection is this class itself). The `fss_*` keys (see
    `ultralytics_fss.train.cfg.FSS_KEYS`) are accepted in `overrides`, validated, saved in `args.yaml` and
    checkpoints, and restored on resume. Checkpoints load without `ultralytics_fss`.

    Examples:
        >>> from ultralytics_fss import FSSTrainer
        >>> FSSTrainer(overrides=dict(model="yolo11n.yaml", data="data.yaml", epochs=1, fss_beta=4.0)).train()
        >>> FSSTrainer(overrides=dict(model="yolo11n-obb.yaml", data="dota8.yaml", epochs=1)).train()  # obb
        >>> from ultralytics import YOLO
        >>> YOLO("yolo11n-seg.yaml").train(trainer=FSSTrainer, data="coco8-seg.yaml", epochs=1)
    """

    def __new__(cls, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: dict | None = None):
        """Return the FSS trainer of the task (`FSSTrainer` itself for detection and for user subclasses), after
        `check_trainable`: a model FSS cannot train is refused before Ultralytics makes the run folder.

        Why construction returns another class: Ultralytics instantiates the trainer class it is handed
        (`YOLO(...).train(trainer=FSSTrainer)`, `yolo train trainer=ultralytics_fss.FSSTrainer`, the tuner's
        iterations, resume from a checkpoint's recorded `trainer`) and each task needs Ultralytics' trainer of that
        task as a base (`OBBTrainer` builds an `OBBModel` and its validator). Choosing the task's subclass here is
        what lets one public name serve every task; Python then runs that subclass's `__init__`.

        Raises:
            NotImplementedError: For models (RT-DETR, YOLO-World, YOLOE...) and tasks (classify, semantic, depth) FSS
                does not train, naming the model class and what is supported.
        """
        task = check_trainable(cfg, overrides)
        if cls is FSSTrainer:
            cls = TASK_TRAINERS[task]
        return super().__new__(cls)

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: dict | None = None):
        """Validate `fss_*` overrides, declare the FSS keys in the base config so Ultralytics accepts them, and add
        the `InstallCriterion` callback that reads them back from the args.

        Args:
            cfg (str | dict | SimpleNamespace): Base configuration, Ultralytics' defaults by default.
            overrides (dict, optional): Arguments, `fss_*` keys included.
            _callbacks (dict, optional): Ultralytics callbacks.
        """
        overrides = dict(overrides or {})
        path = trainer_path(FSSTrainer if type(self) in TASK_TRAINERS.values() else type(self))  # one public name
        if not overrides.get("resume"):  # recorded for `yolo train resume` (a resumed run reads it from its checkpoint)
            overrides[TRAINER_KEY] = path
        base = cfg2dict(cfg)
        check_fss_args({**base, **overrides})  # fail before any run directory is made
        super().__init__({**FSS_DEFAULTS, TRAINER_KEY: None, **base}, overrides, _callbacks)
        for key, value in check_fss_args(args_dict(self.args)).items():  # a stock checkpoint resumed here lacks them
            setattr(self.args, key, value)
        setattr(self.args, TRAINER_KEY, path)  # resumed args come from the checkpoint
        InstallCriterion().add_to(self)

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        """Build the task's model as Ultralytics does, and refuse at once models FSS cannot train that
        `check_trainable` could not tell from the arguments (a model object, a custom YAML)."""
        model = super().get_model(cfg, weights, verbose)
        try:
            stock_loss_class(model)
        except NotImplementedError as e:
            head = type(model.model[-1]).__name__  # the task's model class holds any head: name the head's model
            if head in UNSUPPORTED_HEADS:
                raise NotImplementedError(refusal(self.args.model, *UNSUPPORTED_HEADS[head])) from e
            raise
        return model

    def get_validator(self):
        """Return the task's stock validator, built from args without `fss_*` and `trainer` (Ultralytics re-checks
        validator args against its defaults, which lack them); validation losses still use FSS: the EMA model
        carries the FSS criterion."""
        args = self.args
        self.args = IterableSimpleNamespace(
            **{k: v for k, v in vars(args).items() if not k.startswith("fss_") and k != TRAINER_KEY}
        )
        try:
            return super().get_validator()
        finally:
            self.args = args


class FSSOBBTrainer(FSSTrainer, OBBTrainer):
    """`FSSTrainer` for oriented boxes (`task=obb`): Ultralytics' `OBBTrainer` with FSS's rotated criterion."""


class FSSSegmentationTrainer(FSSTrainer, SegmentationTrainer):
    """`FSSTrainer` for instance segmentation (`task=segment`)."""


class FSSPoseTrainer(FSSTrainer, PoseTrainer):
    """`FSSTrainer` for pose (`task=pose`)."""


TASK_TRAINERS: dict[str, type] = {
    "detect": FSSTrainer,
    "obb": FSSOBBTrainer,
    "segment": FSSSegmentationTrainer,
    "pose": FSSPoseTrainer,
}


def enable_fss(model, **fss: Any):
    """Turn FSS on for a `YOLO` model (or a trainer) through Ultralytics callbacks alone, whatever its trainer class.

    Adds the `InstallCriterion` callback with these values and the per-epoch `fss/*` statistics callbacks. Calling it
    again replaces the earlier FSS values. The callbacks travel with the model's callbacks into the trainer, into
    resumed runs and into DDP workers.

    Args:
        model (ultralytics.YOLO | BaseTrainer): Anything with `callbacks` and `add_callback`.
        **fss (Any): `fss_*` hyperparameters (see `ultralytics_fss.train.cfg.FSS_KEYS`); missing keys take defaults.

    Returns:
        (ultralytics.YOLO | BaseTrainer): `model`, for chaining.

    Raises:
        KeyError | TypeError | ValueError: For an unknown key or an invalid value, naming the argument.

    Examples:
        >>> from ultralytics import YOLO
        >>> from ultralytics_fss import enable_fss
        >>> model = enable_fss(YOLO("yolo11n.yaml"), fss_beta=4.0)
        >>> model.train(trainer=MyDetectionTrainer, data="data.yaml", epochs=1)  # any DetectionTrainer subclass
    """
    InstallCriterion(fss).add_to(model)
    return model


def record_tal_stats(model):
    """Record Ultralytics' own assignment (positives per GT, soft targets) in `fss/*` columns, for comparison runs.

    Installs the task's `TAL*Loss` (the stock loss with a recording assigner; training is unchanged) and the statistics
    callbacks on a stock trainer or `YOLO` model. Not for trainers that use FSS (it would replace their criterion).

    Args:
        model (ultralytics.YOLO | BaseTrainer): Anything with `callbacks` and `add_callback`.

    Returns:
        (ultralytics.YOLO | BaseTrainer): `model`, for chaining.
    """
    InstallCriterion(stock=True).add_to(model)
    return model
