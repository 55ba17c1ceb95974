"""The Ultralytics seam: every piece of `ultralytics_fss` shaped by Ultralytics' internals, in one package, one module
per upstream file it follows.

Each piece is copied or mirrored from Ultralytics 8.4.190 and names its upstream file and lines; `tests/test_seam.py`
checks each one's behaviour against the upstream code on real inputs (the same tensors, the same parsed arguments,
the same checkpoints) for every model family. When Ultralytics changes, this package and that test are what to
revisit. Nothing outside it names a private attribute of Ultralytics or re-derives what Ultralytics computes.

| module    | piece                              | mirrors, in Ultralytics 8.4.190                                    |
|-----------|------------------------------------|--------------------------------------------------------------------|
| `loss`    | `detect_inputs`                    | utils/loss.py `v8DetectionLoss.get_assigned_targets_and_loss`,     |
|           |                                    | lines 433-450                                                      |
|           | `obb_inputs`                       | utils/loss.py `v8OBBLoss.loss`, lines 1073-1106                    |
|           | `OBB_MIN_SIDE`, `obb_kept`         | utils/loss.py `v8OBBLoss.loss`'s tiny-box filter, 1089-1090        |
|           | `obb_angle_term`                   | utils/loss.py `v8OBBLoss.loss`'s angle term, keeper, 1141-1146     |
|           | `segment26_assigner_inputs`        | utils/loss.py `SegmentLoss26.get_assigned_targets_and_loss`,       |
|           |                                    | lines 691-708                                                      |
|           | `segment26_overlap_assigner`       | utils/tal.py `SegTaskAlignedAssigner.pair_overlaps`' top-k, 462-463 |
|           | `task_pair_overlaps`               | utils/tal.py `TaskAlignedAssigner.forward`'s `bs`, `n_max_boxes`    |
|           | `weighted_segmentation_loss`       | utils/loss.py `calculate_segmentation_loss`, 647-677               |
|           | `WeightedKeypointLoss`             | utils/loss.py `KeypointLoss.forward`, lines 344-352                |
|           | `criterion`, `branches`,           | utils/loss.py `E2ELoss` (`one2many`, `one2one`), 1319-1333         |
|           | `main_branch`                      |                                                                    |
|           | `keep_e2e_schedule`, `o2m_weight`  | utils/loss.py `E2ELoss.update`'s schedule, 1326-1330, 1343-1351    |
|           | `training_preds`                   | utils/loss.py `E2ELoss.__call__`'s `one2many` key, 1337-1338       |
|           | `loss_args`                        | utils/loss.py: the losses read `model.args` by attribute (524)     |
| `models`  | `stock_loss_class`, `model_task`   | nn/tasks.py `init_criterion` of detect, obb, segment, pose         |
|           | `unsupported_model`, `refusal`     | models/yolo/model.py `YOLO.__init__`'s routing by head, class      |
|           | `args_dict`                        | `model.args`: a namespace while training, a dict once loaded       |
|           | `saved_model_args`                 | nn/tasks.py `load_checkpoint`, torch_utils.py `strip_optimizer`    |
|           | `model_file_task`                  | engine/model.py `Model._new`/`_load`: a YAML's head, the weights   |
| `data`    | `one_image_batch`                  | data/dataset.py `YOLODataset` val pipeline, 327-358, 401-461       |
| `cfg`     | `parse_yolo_args`, `BARE_FLAGS`    | cfg/__init__.py `entrypoint`'s argument loop, lines 1067-1105      |
|           | `yolo_train`                       | cfg/__init__.py `entrypoint`'s defaults and call, 1107-1188        |
|           | `ENTRYPOINT`, `stock_entrypoint`   | the console scripts' function, which the startup hook replaces     |
| `trainer` | `ValidatorWithExtras`              | engine/trainer.py: validation replaces `trainer.metrics`, 647-685  |
|           | `resumed_train_args`               | engine/trainer.py `check_resume`: the checkpoint a resume reads    |
|           | `tuner_command`                    | engine/trainer.py `MultiTrainer.train`'s subprocess, line 1352     |
| `tuner`   | `stock_tune`, `model_tune_args`    | engine/model.py `Model.tune`, lines 915-967                        |
|           | `install_tune_routing`             | engine/model.py `Model.tune`: routing the calls asking for FSS     |
|           | `HookedTuner`                      | engine/tuner.py: `_constrain`, `_mutate`, `_save_local_result`,    |
|           |                                    | `_load_local_results`, `_best_result_index` behind public hooks    |

**Every replacement of an Ultralytics attribute** (three; everything else subclasses or calls):

1. `ultralytics.cfg.entrypoint`, by the startup hook (`hook/_ultralytics_fss_hook.py`), in the `yolo` / `ultralytics`
   console scripts only, so that they accept `trainer=` and `fss_*` (`cfg.ENTRYPOINT`).
2. `ultralytics.engine.model.Model.tune`, by `tuner.install_tune_routing`, when a name of the trainer is first taken
   from the package (`from ultralytics_fss import FSSTrainer`, `enable_fss`, ...) and by `yolo tune`; never by importing
   a module. Calls that do not ask for FSS run the stock method.
3. `ultralytics.engine.trainer._YOLO_CLI_COMMAND`, by `trainer.tuner_command`, for the duration of one `FSSTuner`
   run (restored after it, even on errors), so that each iteration's subprocess takes `trainer=` and `fss_*`.

`ULTRALYTICS_FSS_HOOK=0` switches off the first two.
"""

from ultralytics_fss.train.seam.cfg import (
    BARE_FLAGS,
    ENTRYPOINT,
    parse_yolo_args,
    stock_entrypoint,
    yolo_train,
)
from ultralytics_fss.train.seam.data import SEGMENT_RESAMPLES, one_image_batch
from ultralytics_fss.train.seam.loss import (
    OBB_MIN_SIDE,
    LossInputs,
    WeightedKeypointLoss,
    branches,
    criterion,
    detect_inputs,
    keep_e2e_schedule,
    loss_args,
    main_branch,
    o2m_weight,
    obb_angle_term,
    obb_inputs,
    obb_kept,
    scoped,
    segment26_assigner_inputs,
    segment26_overlap_assigner,
    task_pair_overlaps,
    training_preds,
    weighted_segmentation_loss,
)
from ultralytics_fss.train.seam.models import (
    ASSET_NAMES,
    LOSS_TASKS,
    SUPPORTED,
    UNSUPPORTED_CLASSES,
    UNSUPPORTED_HEADS,
    args_dict,
    model_file_task,
    model_task,
    refusal,
    saved_model_args,
    stock_loss_class,
    unsupported_model,
)
from ultralytics_fss.train.seam.trainer import ValidatorWithExtras, resumed_train_args, tuner_command
from ultralytics_fss.train.seam.tuner import HookedTuner, install_tune_routing, model_tune_args, stock_tune

__all__ = [
    "ASSET_NAMES",
    "BARE_FLAGS",
    "ENTRYPOINT",
    "LOSS_TASKS",
    "OBB_MIN_SIDE",
    "SEGMENT_RESAMPLES",
    "SUPPORTED",
    "UNSUPPORTED_CLASSES",
    "UNSUPPORTED_HEADS",
    "HookedTuner",
    "LossInputs",
    "ValidatorWithExtras",
    "WeightedKeypointLoss",
    "args_dict",
    "branches",
    "criterion",
    "detect_inputs",
    "install_tune_routing",
    "keep_e2e_schedule",
    "loss_args",
    "main_branch",
    "model_file_task",
    "model_task",
    "model_tune_args",
    "o2m_weight",
    "obb_angle_term",
    "obb_inputs",
    "obb_kept",
    "one_image_batch",
    "parse_yolo_args",
    "refusal",
    "resumed_train_args",
    "saved_model_args",
    "scoped",
    "segment26_assigner_inputs",
    "segment26_overlap_assigner",
    "stock_entrypoint",
    "stock_loss_class",
    "stock_tune",
    "task_pair_overlaps",
    "training_preds",
    "tuner_command",
    "unsupported_model",
    "weighted_segmentation_loss",
    "yolo_train",
]
