"""FSS (Focusing on Suboptimal Samples) label assignment for Ultralytics YOLO.

`FSSAssigner` (the paper's math, `ultralytics_fss.assign`), `FSSDetectionLoss` (Eq. 9), `FSSTrainer` and `enable_fss`
(Ultralytics glue, `ultralytics_fss.train`). The large-image pipeline (DOTA and any Ultralytics dataset) is
`ultralytics_fss.large_images` and the `yolo` command-line glue `ultralytics_fss.cli`; `ARCHITECTURE.md` maps the rest.

The public names load on first use (PEP 562), so `import ultralytics_fss.large_images...` in a tiling worker process
does not import torch and Ultralytics' models; `from ultralytics_fss import FSSTrainer` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ultralytics_fss.assign import FSSAssigner, FSSAssignResult
    from ultralytics_fss.train import (
        FSS_DEFAULTS,
        FSS_SPACE,
        FSSDetectionLoss,
        FSSTrainer,
        FSSTuner,
        build_fss_criterion,
        check_fss_args,
        enable_fss,
        ray_space,
        record_tal_stats,
    )

_HOMES = {
    "FSSAssigner": "ultralytics_fss.assign",
    "FSSAssignResult": "ultralytics_fss.assign",
    "FSSDetectionLoss": "ultralytics_fss.train",
    "FSSTrainer": "ultralytics_fss.train",
    "FSSTuner": "ultralytics_fss.train",
    "FSS_DEFAULTS": "ultralytics_fss.train",
    "FSS_SPACE": "ultralytics_fss.train",
    "build_fss_criterion": "ultralytics_fss.train",
    "check_fss_args": "ultralytics_fss.train",
    "enable_fss": "ultralytics_fss.train",
    "ray_space": "ultralytics_fss.train",
    "record_tal_stats": "ultralytics_fss.train",
}
__all__ = [*_HOMES, "__version__"]


def __getattr__(name: str):
    """Import a public name from its home module when it is first asked for. Taking a name of the trainer
    (`FSSTrainer`, `enable_fss`, ...) is where `model.tune(trainer=FSSTrainer)` can follow, so it installs the routing
    of `Model.tune` (`ultralytics_fss.train.seam.install_tune_routing`, documented with the startup hook); importing a
    module of the package never does."""
    if name in _HOMES:
        value = globals()[name] = getattr(importlib.import_module(_HOMES[name]), name)
        if _HOMES[name] == "ultralytics_fss.train":
            from ultralytics_fss.train.seam import install_tune_routing
            from ultralytics_fss.train.tune import tune, wants_fss

            install_tune_routing(wants_fss, tune)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the lazy names too."""
    return sorted({*globals(), *__all__})
