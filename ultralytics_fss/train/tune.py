"""Tuning with FSS the Ultralytics way: `model.tune(trainer=FSSTrainer, ...)`, with Ultralytics' `Tuner` or Ray Tune.

Ultralytics' `Model.tune` checks its arguments against its own config (no `trainer=`, no `fss_*`). Its `Tuner` trains
every iteration in a `yolo train` subprocess; its Ray path (`use_ray=True`) trains every trial with
`model.train(**config)`. So `ultralytics_fss`:

- routes the `Model.tune` calls that ask for FSS (`trainer=`, `fss_*` arguments or `space` keys, or a model with
  `enable_fss`) to `tune` below; every other call runs Ultralytics' method unchanged (`seam.install_tune_routing`,
  installed when a name of the trainer is first taken from the package, never by importing a module);
- Ultralytics' `Tuner`: `FSSTuner`, the stock `Tuner` whose iterations run `python -m ultralytics_fss.cli train
  trainer=... fss_*=...` (the same subprocess, through this package's command line), with integer and categorical
  `fss_*` keys in `space`;
- Ray Tune: Ultralytics' own `run_ray_tune`, with the trainer class and the fixed `fss_*` values added to the Ray
  search space as constants, so that each trial's `model.train(**config)` trains with FSS.

A bad `space` stops with one line (`check_space`, `check_ray_space`) before the first iteration.

Examples:
    >>> from ultralytics import YOLO
    >>> from ultralytics_fss import FSSTrainer
    >>> YOLO("yolo11n.yaml").tune(trainer=FSSTrainer, data="coco8.yaml", epochs=10, iterations=30)  # FSS_SPACE
    >>> YOLO("yolo11n.yaml").tune(trainer=FSSTrainer, data="coco8.yaml", space={"fss_beta": (2.0, 8.0),
    ...                           "fss_q": (5, 15), "fss_target": ["iou", "tal"], "lr0": (1e-4, 1e-2)})
    >>> from ray import tune as ray_tune
    >>> YOLO("yolo11n.yaml").tune(trainer=FSSTrainer, use_ray=True, space={"fss_beta": ray_tune.uniform(2, 8)})
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from ultralytics.cfg import CFG_INT_KEYS
from ultralytics.utils import DEFAULT_CFG, LOGGER, YAML, colorstr

from ultralytics_fss.train.cfg import FSS_DEFAULTS, FSS_KEYS, TRAINER_KEY, check_fss_args, import_trainer, trainer_path
from ultralytics_fss.train.seam import HookedTuner, model_tune_args, stock_tune, tuner_command

# The default search space with `trainer=FSSTrainer` and no `space`: the paper's Table 4 ranges for alpha (0.5-1) and
# beta (4-10), u and q around the defaults (2 and 10). Ultralytics' Tuner form: key: (min, max).
FSS_SPACE: dict[str, tuple] = {"fss_alpha": (0.5, 1.0), "fss_beta": (4.0, 10.0), "fss_u": (1.0, 4.0), "fss_q": (5, 15)}
FSS_CLI = [sys.executable, "-m", "ultralytics_fss.cli"]  # what the Tuner's iterations run instead of `yolo`
RAY_POSITIONAL = ("space", "grace_period", "gpu_per_trial")  # `run_ray_tune`'s positional parameters after `model`
CHOICES = "choices"  # the categorical values of a `tune_results.ndjson` record (`FSSTuner.record`)


def ray_space(space: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Tuner-form space (`FSS_SPACE` by default) in Ray Tune's form: `(min, max)` becomes `tune.uniform` (an
    integer key: `tune.randint(min, max + 1)`), a list `tune.choice`; Ray domains and constants stay."""
    from ray import tune

    out = {}
    for key, value in (FSS_SPACE if space is None else space).items():
        if isinstance(value, tuple):
            lo, hi = value[:2]
            out[key] = tune.randint(lo, hi + 1) if _kind(key) is int else tune.uniform(lo, hi)
        elif isinstance(value, list):
            out[key] = tune.choice(value)
        else:
            out[key] = value
    return out


def _kind(key: str) -> type | None:
    """The type of an `fss_*` key (None for Ultralytics' own keys)."""
    return FSS_KEYS[key][1] if key in FSS_KEYS else None


def _check_values(key: str, given: Any, values: list, fixed: dict[str, Any]) -> list:
    """Check that `key` is an FSS key and that every value it may take in a search space is valid, with the fixed
    values around it.

    Returns:
        (list): The values as the trainer reads them (`check_fss_args`' types: "true" becomes True).

    Raises:
        ValueError: One line naming `space[key]`, what was given and what is valid.
    """
    if key not in FSS_KEYS:
        raise ValueError(f"space[{key!r}]: unknown FSS argument; valid FSS arguments are {sorted(FSS_KEYS)}")
    try:
        return [check_fss_args({**fixed, key: value})[key] for value in values]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"space[{key!r}]={given!r}: {e.args[0]}") from None


def check_space(space: dict[str, Any], fixed: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """Check the `fss_*` entries of a space for Ultralytics' Tuner and split off the categorical ones.

    Args:
        space (dict): `key: (min, max[, gain])` ranges (Ultralytics' form; an integer key such as `fss_q` needs integer
            bounds) or `key: [choice, ...]` lists (categorical; the only form for string and boolean keys).
        fixed (dict, optional): The `fss_*` values given outside the space (checked together with each bound).

    Returns:
        ranges (dict): The numeric entries, for the stock Tuner's mutation.
        choices (dict): The categorical `fss_*` entries, `key: [values]` (`FSSTuner.mutate` draws them).

    Raises:
        ValueError: One line naming the entry: an unknown `fss_` key, a bound or choice outside the key's valid
            range, a float range for an integer key, a range for a categorical key, an empty list.
    """
    fixed = dict(fixed or {})
    ranges, choices = {}, {}
    for key, given in space.items():
        if not key.startswith("fss_"):
            ranges[key] = given  # Ultralytics' own keys: as the stock Tuner takes them
            continue
        _check_values(key, given, [], fixed)  # an unknown key first
        kind = _kind(key)
        if isinstance(given, list) and given:
            choices[key] = list(dict.fromkeys(_check_values(key, given, given, fixed)))
            continue
        if not (isinstance(given, tuple) and len(given) in (2, 3)) or kind not in (int, float):
            form = "a (min, max[, gain]) tuple or a list of choices" if kind in (int, float) else "a list of choices"
            raise ValueError(f"space[{key!r}]={given!r}: expected {form}")
        lo, hi = given[:2]
        if kind is int and not all(isinstance(b, int) and not isinstance(b, bool) for b in (lo, hi)):
            raise ValueError(f"space[{key!r}]={given!r}: {key} is an integer; give integer bounds, e.g. (5, 15)")
        if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in (lo, hi)):
            raise ValueError(f"space[{key!r}]={given!r}: the bounds must be finite numbers")
        if lo > hi:
            raise ValueError(f"space[{key!r}]={given!r}: min > max")
        if len(given) == 3 and not 0 <= given[2] <= 1:
            raise ValueError(f"space[{key!r}]={given!r}: the gain (third value) must be in [0, 1]")
        _check_values(key, given, [lo, hi], fixed)
        ranges[key] = tuple(given)
    lows = {k: v[0] for k, v in ranges.items() if k.startswith("fss_")}
    try:  # the corner of lower bounds together (fss_alpha + fss_beta > 0)
        check_fss_args({**fixed, **lows})
    except ValueError as e:
        raise ValueError(f"space {lows}: {e.args[0]}") from None
    return ranges, choices


def check_ray_space(space: dict[str, Any], fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check the `fss_*` entries of a Ray Tune space (`tune.uniform`, `tune.randint`, `tune.choice`, ..., or
    constants); return the space unchanged.

    Raises:
        ValueError: One line naming the entry: an unknown `fss_` key, a range or choice outside the key's valid
            range, a float domain for an integer key, a numeric domain for a string or boolean key, a plain tuple.
    """
    from ray.tune.search.sample import Categorical, Domain, Float, Integer

    fixed = dict(fixed or {})
    for key, given in space.items():
        if not key.startswith("fss_"):
            continue
        _check_values(key, given, [], fixed)  # an unknown key first
        kind = _kind(key)
        if isinstance(given, Categorical):
            values = list(given.categories)
        elif isinstance(given, (Float, Integer)):
            if kind not in (int, float) or (kind is int and isinstance(given, Float)):
                hint = "tune.randint(lo, hi + 1) or tune.choice([...])" if kind is int else "tune.choice([...])"
                raise ValueError(f"space[{key!r}]: {key} takes {kind.__name__} values; use {hint}")
            values = [given.lower, given.upper - 1 if isinstance(given, Integer) else given.upper]
        elif isinstance(given, Domain):
            continue  # tune.sample_from and other functions: checked when the trial's trainer starts
        elif isinstance(given, (tuple, dict)):
            raise ValueError(
                f"space[{key!r}]={given!r}: with use_ray=True give a Ray Tune domain, e.g. "
                "tune.uniform(2, 8), tune.randint(5, 16) or tune.choice([...])"
            )
        else:
            values = [given]
        _check_values(key, given, values, fixed)
    return space


class FSSTuner(HookedTuner):
    """Ultralytics' `Tuner`, training every iteration with an FSS trainer and the values drawn for the `fss_*` keys.

    The stock mutation evolves the numeric keys (an integer `fss_*` key stays an integer); categorical `fss_*` keys
    (`space` lists) keep the best iteration's value or draw a new one, each with probability 1/2, and are recorded
    under `choices` in `tune_results.ndjson` (Ultralytics' plots read `hyperparameters` as numbers). Each iteration is
    the stock `yolo train` subprocess, run through `python -m ultralytics_fss.cli` so that it takes `trainer=` and
    `fss_*`. `tune_results.ndjson` and `best_hyperparameters.yaml` carry the `fss_*` values; the YAML can be given
    back to `FSSTrainer` (or `yolo train trainer=... cfg=best_hyperparameters.yaml`) as it is.

    Attributes:
        choices (dict[str, list]): The categorical `fss_*` keys and their values.
    """

    def __init__(self, args: dict, _callbacks: dict | None = None, *, model=None, trainer: type | None = None):
        """Check the space and the `fss_*` values, then set up the stock Tuner on Ultralytics' own arguments.

        Args:
            args (dict): `Model.tune` arguments, with `space` and any fixed `fss_*` values.
            _callbacks (dict, optional): Callbacks (Ultralytics' Tuner only adds its integrations to them).
            model (torch.nn.Module, optional): The base model every iteration starts from.
            trainer (type): The trainer class (an importable `FSSTrainer` or subclass); FSSTrainer by default.

        Raises:
            ValueError: For a bad space or `fss_*` value, or a trainer that cannot be imported by its dotted path.
        """
        from ultralytics_fss.train.trainer import FSSTrainer

        trainer = trainer or FSSTrainer
        path = trainer_path(trainer)
        if path.startswith("__main__."):
            raise ValueError(
                f"trainer={trainer.__qualname__} is defined in __main__; Ultralytics' Tuner trains each "
                "iteration in a new process, which imports the trainer by its dotted path: move it into "
                "a module"
            )
        args = dict(args)
        fixed = {k: args.pop(k) for k in list(args) if k.startswith("fss_")}
        space = args.pop("space", None)  # None: Ultralytics' default space (`tune` gives FSS trainers FSS_SPACE)
        ranges, self.choices = check_space(space, fixed) if space else (None, {})
        if space and not ranges:
            raise ValueError(
                f"space: no numeric range to evolve (Ultralytics' Tuner mutates ranges), only the lists "
                f"{sorted(self.choices)}; add a range such as 'fss_beta': (4.0, 10.0)"
            )
        if self.choices and args.get("mongodb_uri"):
            raise ValueError(
                f"space: the lists {sorted(self.choices)} need the local tune_results.ndjson; tune them "
                "without mongodb_uri, or fix them with fss_key=value"
            )
        super().__init__({**args, "space": ranges}, _callbacks, model=model)
        for key, value in check_fss_args(fixed).items():  # the stock Tuner's first iteration starts from these
            setattr(self.args, key, value)
        setattr(self.args, TRAINER_KEY, path)
        LOGGER.info(
            f"{self.prefix}iterations train with trainer={path} via {colorstr('python -m ultralytics_fss.cli')}"
            f"; space {self.space}" + (f", choices {self.choices}" if self.choices else "")
        )

    def constrain(self, hyp: dict[str, float]) -> dict[str, float]:
        """After Ultralytics' bounds and rounding: integer `fss_*` keys (e.g. `fss_q`) as integers within bounds."""
        for key, bounds in self.space.items():
            if _kind(key) is int:
                hyp[key] = int(min(max(round(hyp[key]), math.ceil(bounds[0])), math.floor(bounds[1])))
        return hyp

    def mutate(self, hyp: dict[str, Any]) -> dict[str, Any]:
        """After Ultralytics' mutation of the ranges, the categorical keys: the first iteration takes the current value
        (a random choice when it is not in the list), later ones keep the best iteration's value or draw one, with
        probability 1/2."""
        results = self.local_results()
        best = self._best(results) if results else {}
        rng = np.random.default_rng()
        for key, values in self.choices.items():
            current = best.get(key) if results else getattr(self.args, key)
            keep = current in values and (not results or rng.random() < 0.5)
            hyp[key] = current if keep else values[int(rng.integers(len(values)))]
        return hyp

    def _best(self, results: list[dict]) -> dict[str, Any]:
        """The hyperparameters and choices of the best result, chosen as Ultralytics' Tuner chooses it."""
        best = self.best_result(results)
        return {**best.get("hyperparameters", {}), **best.get(CHOICES, {})}

    def record(self, result: dict) -> dict:
        """A result with its categorical values under `choices`: Ultralytics' plots and mutation read every
        `hyperparameters` entry as a number."""
        hyp = dict(result["hyperparameters"])
        chosen = {k: hyp.pop(k) for k in self.choices if k in hyp}
        return {**result, "hyperparameters": hyp, **({CHOICES: chosen} if chosen else {})}

    def __call__(self, iterations: int = 300, cleanup: bool = True):
        """Run Ultralytics' evolution with `python -m ultralytics_fss.cli` as the iterations' command, then complete
        `best_hyperparameters.yaml` (integer `fss_*` keys as integers, the categorical keys added)."""
        try:
            with tuner_command(FSS_CLI):
                return super().__call__(iterations=iterations, cleanup=cleanup)
        finally:
            self.complete_best()

    def complete_best(self) -> None:
        """Rewrite `best_hyperparameters.yaml` with every tuned key of the best result, typed as its trainer reads
        it, keeping Ultralytics' header; nothing when the stock Tuner wrote none."""
        file = self.tune_dir / "best_hyperparameters.yaml"
        results = self.local_results()
        if not (file.is_file() and results):
            return
        best = self._best(results)
        header = "".join(line for line in file.read_text().splitlines(keepends=True) if line.startswith("#"))
        data = {}
        for key in (*self.space, *self.choices):
            if key in best:
                value = best[key]
                if _kind(key) is int or key in CFG_INT_KEYS:
                    value = int(value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = float(value)
                data[key] = value
        YAML.save(file, data=data, header=header)


def fss_values(model) -> dict[str, Any] | None:
    """The `fss_*` values `enable_fss` put on a `YOLO` model (None: not enabled, or `record_tal_stats`)."""
    from ultralytics_fss.train.trainer import INSTALL_EVENT, InstallCriterion

    for f in getattr(model, "callbacks", {}).get(INSTALL_EVENT, []):
        if isinstance(f, InstallCriterion) and not f.stock:
            return dict(f.fss or {})
    return None


def wants_fss(model, kwargs: dict[str, Any]) -> bool:
    """Whether a `Model.tune` call asks for FSS: `trainer=`, `fss_*` arguments or `space` keys, or `enable_fss`."""
    space = kwargs.get("space") or {}
    return (
        TRAINER_KEY in kwargs or any(k.startswith("fss_") for k in (*kwargs, *space)) or fss_values(model) is not None
    )


def tune(model, use_ray: bool = False, iterations: int = 300, /, *args: Any, **kwargs: Any):
    """`Model.tune` with a trainer: Ultralytics' Tuner (`FSSTuner`) or, with `use_ray=True`, Ultralytics' Ray Tune path.

    Args:
        model (ultralytics.YOLO): The model to tune.
        use_ray (bool): Ray Tune (`ultralytics.utils.tuner.run_ray_tune`) instead of Ultralytics' Tuner.
        iterations (int): Tuner iterations, or Ray trials.
        *args (Any): `run_ray_tune`'s positional `space`, `grace_period`, `gpu_per_trial` (Ray only, as upstream).
        **kwargs (Any): `trainer=` (a class or a dotted path; `FSSTrainer` when `enable_fss` was used), `space`
            (`FSS_SPACE` / `ray_space()` when missing), fixed `fss_*` values and Ultralytics' tune and train arguments.

    Returns:
        (ray.tune.ResultGrid | None): As `Model.tune`.

    Raises:
        ValueError: For a bad space or `fss_*` value, `fss_*` keys without an FSS trainer, or a model FSS cannot train.
    """
    from ultralytics.engine.trainer import BaseTrainer

    from ultralytics_fss.train.trainer import FSSTrainer, check_trainable

    enabled = fss_values(model)
    trainer = kwargs.pop(TRAINER_KEY, None)
    if isinstance(trainer, str):
        trainer = import_trainer(trainer)
    elif trainer is not None and not (isinstance(trainer, type) and issubclass(trainer, BaseTrainer)):
        raise ValueError(f"trainer={trainer!r} is not a trainer class (a subclass of BaseTrainer) or a dotted path")
    fixed = {**(enabled or {}), **{k: kwargs.pop(k) for k in list(kwargs) if k.startswith("fss_")}}
    if trainer is None and enabled is not None:
        trainer = FSSTrainer
        changed = {k: v for k, v in check_fss_args(fixed).items() if v != FSS_DEFAULTS[k]}
        LOGGER.info(f"{colorstr('ultralytics_fss:')} enable_fss: tuning with trainer={trainer_path(FSSTrainer)} and "
                    f"{changed or 'the default fss_* values'} (callbacks do not reach the tuner's training processes)")
    if use_ray:
        kwargs.update(zip(RAY_POSITIONAL, args))
        args = ()
    space = kwargs.pop("space", None)
    fss_space = [k for k in space or {} if k.startswith("fss_")]
    is_fss = isinstance(trainer, type) and issubclass(trainer, FSSTrainer)
    if (fixed or fss_space) and not is_fss:
        given = ", ".join([*fixed, *fss_space][:3])
        raise ValueError(f"{given} need trainer=ultralytics_fss.FSSTrainer (or a subclass), not trainer={trainer}")
    if is_fss:
        try:
            check_trainable(DEFAULT_CFG, {**model.overrides, **kwargs})
        except NotImplementedError as e:
            raise ValueError(str(e)) from None
        if not space:
            space = ray_space() if use_ray else dict(FSS_SPACE)
            LOGGER.warning(f"Search space not provided, using the default FSS search space {FSS_SPACE}")
    if use_ray:
        if not space:  # a trainer of your own: Ultralytics' default Ray space is local to its function
            raise ValueError(
                f"use_ray=True with trainer={trainer_path(trainer)} needs space=; FSS trainers default to ray_space()"
            )
        space = check_ray_space(space, fixed) if is_fss else space
        constants = {TRAINER_KEY: trainer, **{k: v for k, v in fixed.items() if k not in space}}
        return stock_tune(model, True, iterations, space={**space, **constants}, **kwargs)
    tune_args = model_tune_args(model, args, {**kwargs, **fixed}, space)  # what Model.tune hands its Tuner
    return FSSTuner(tune_args, model=model.model, _callbacks=model.callbacks, trainer=trainer)(iterations=iterations)
