"""The seam's pieces that follow ultralytics/engine/model.py and engine/tuner.py: `Model.tune` (the stock method, what
it hands the Tuner, and the routing that sends the calls asking for FSS to `ultralytics_fss.train.tune`) and the
Tuner's private steps, behind public hooks.

Each piece names its upstream lines (Ultralytics 8.4.190); tests/test_seam.py and tests/test_tune.py check them.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import numpy as np
from ultralytics.engine.tuner import Tuner


def stock_tune(model, use_ray: bool = False, iterations: int = 300, *args: Any, **kwargs: Any):
    """Ultralytics' own `Model.tune` (engine/model.py, lines 915-967), whether or not the routing is installed."""
    from ultralytics.engine.model import Model

    return getattr(Model.tune, "__wrapped__", Model.tune)(model, use_ray, iterations, *args, **kwargs)


def install_tune_routing(wants: Callable[[Any, dict], bool], handler: Callable) -> bool:
    """Replace `Model.tune` by a router: a call that `wants(model, kwargs)` accepts (`ultralytics_fss.train.tune.
    wants_fss`: `trainer=`, `fss_*` arguments or space keys, an `enable_fss` model) goes to `handler` (same signature as
    `Model.tune`: `ultralytics_fss.train.tune.tune`), every other call to Ultralytics' method, unchanged. The one
    replacement of `Model.tune`, made by this one function: Ultralytics checks every argument of `Model.tune` against
    its own config, so `model.tune(trainer=FSSTrainer)` cannot work otherwise.

    Called where a routed call can follow, never by importing a module of ours: when a name of the trainer is first
    taken from the package (`from ultralytics_fss import FSSTrainer`, `enable_fss`, ...; `ultralytics_fss.__getattr__`)
    and by `yolo tune` (`ultralytics_fss.cli`). Idempotent; does nothing with `ULTRALYTICS_FSS_HOOK=0`, the switch of
    the startup hook, the package's other replacement.

    Returns:
        (bool): Whether `Model.tune` is routed now.
    """
    from ultralytics.engine.model import Model

    if getattr(Model.tune, "__wrapped__", None) is not None:
        return True
    if os.environ.get("ULTRALYTICS_FSS_HOOK", "1") == "0":
        return False
    stock = Model.tune

    @functools.wraps(stock)
    def tune(self, use_ray=False, iterations=300, *args, **kwargs):
        if wants(self, kwargs):
            return handler(self, use_ray, iterations, *args, **kwargs)
        return stock(self, use_ray, iterations, *args, **kwargs)

    Model.tune = tune  # functools.wraps sets tune.__wrapped__ = stock
    return True


def model_tune_args(model, args: tuple, kwargs: dict[str, Any], space: dict[str, Any] | None) -> dict[str, Any]:
    """What `Model.tune` hands Ultralytics' `Tuner` (engine/model.py, lines 953-965): `optimizer` AdamW unless the
    space tunes it, `{**model.overrides, **kwargs, "mode": "train"}`, no positional arguments.

    Args:
        model (ultralytics.YOLO): The model tuned.
        args (tuple): Positional arguments of the call (refused: they are Ray's).
        kwargs (dict): Keyword arguments, `space` excluded.
        space (dict | None): The search space (added as `space`).

    Raises:
        TypeError: For positional arguments, with Ultralytics' message.
    """
    if args:
        raise TypeError(f"Positional arguments {args} require use_ray=True, pass Tuner options as keywords.")
    kwargs = dict(kwargs)
    if "optimizer" not in (space or {}):
        kwargs.setdefault("optimizer", "AdamW")
    return {**model.overrides, **kwargs, "space": space, "mode": "train"}


class HookedTuner(Tuner):
    """Ultralytics' `Tuner` with the private steps a subclass changes behind public hooks: the one class that names
    them (engine/tuner.py of Ultralytics 8.4.190).

    | hook                        | runs inside                                                                 |
    |-----------------------------|-----------------------------------------------------------------------------|
    | `constrain(hyp)`            | `_constrain` (line 460), after the stock bounds and rounding                |
    | `mutate(hyp)`               | `_mutate` (line 354), after the stock mutation                              |
    | `record(result)`            | `_save_local_result` (line 325): the result as it is written                |
    | `local_results()`           | `_load_local_results` (line 305): the results so far                        |
    | `best_result(results)`      | `_best_result_index` (line 349): the best result, as the Tuner chooses it   |
    """

    def constrain(self, hyp: dict[str, Any]) -> dict[str, Any]:
        """Hook: the hyperparameters of an iteration after Ultralytics' bounds and rounding."""
        return hyp

    def mutate(self, hyp: dict[str, Any]) -> dict[str, Any]:
        """Hook: the hyperparameters of an iteration after Ultralytics' mutation."""
        return hyp

    def record(self, result: dict) -> dict:
        """Hook: a result as it is appended to `tune_results.ndjson`."""
        return result

    def local_results(self) -> list[dict]:
        """The results of `tune_results.ndjson` so far."""
        return self._load_local_results()

    def best_result(self, results: list[dict]) -> dict:
        """The best of `results`, chosen as Ultralytics' Tuner chooses it."""
        fitness = np.array([r.get("fitness") or 0.0 for r in results], dtype=float)
        return results[self._best_result_index(results, fitness)]

    def _constrain(self, hyp: dict[str, float]) -> dict[str, float]:
        return self.constrain(super()._constrain(hyp))

    def _mutate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.mutate(super()._mutate(*args, **kwargs))

    def _save_local_result(self, result: dict) -> None:
        super()._save_local_result(self.record(result))
