"""What an exploration session searches: which Setting fields vary over which ranges, the
sampler, the seeds and the budget. Ranges default to the field's own knob metadata and are
checked against it; the spec is saved as JSON in the Optuna study's user attributes.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from workbench.errors import WorkbenchError
from workbench.study import Knob, Objective, Study, knobs, make_setting

SAMPLERS = ("grid", "random", "nsga2")
# a reproduction optimises nothing, but Optuna keeps one value per complete trial: its duration
REPORT_OBJECTIVE = Objective("wall_s", "minimize", "seconds one seed's report took")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its stop-when-exhausted check: the driver stops at the grid
    size itself, and that check raises KeyError('grid_id') when an enqueued trial (another
    seed, a retry) finishes with one grid point left (Optuna 5.0)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass

    def point(self, grid_id: int) -> dict[str, Any]:
        """The params of grid point ``grid_id`` (as a trial's ``grid_id`` system attr names it;
        the grid's order follows the sampler's seed, the same in every process)."""
        return dict(zip(self._param_names, self._all_grids[grid_id], strict=True))


@dataclass(frozen=True)
class Dimension:
    """One varied field: numbers in [low, high] (``steps`` grid points) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    integer: bool = False
    log: bool = False
    steps: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise WorkbenchError(f"steps (grid points of {self.name}) must be a whole number "
                                 f">= 1, got {self.steps!r}")

    def distribution(self, grid: bool) -> BaseDistribution:
        """Optuna's distribution of this field (a grid searches the grid values only)."""
        if grid or self.choices is not None:
            return CategoricalDistribution(self.grid_values())
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def grid_values(self) -> tuple:
        """The choices, or ``steps`` points spread over [low, high] (geometrically when
        ``log``; whole numbers de-duplicated)."""
        if self.choices is not None:
            return self.choices
        spread = np.geomspace if self.log else np.linspace
        points = spread(self.low, self.high, self.steps)
        if self.integer:
            return tuple(dict.fromkeys(int(round(p)) for p in points))
        return tuple(float(f"{p:.6g}") for p in points)


def dimension(knob: Knob, owner: str, text: str | None = None, steps: int = 3) -> Dimension:
    """The dimension of ``knob`` over its whole range, or over ``text``: ``LOW:HIGH`` (numbers)
    or ``A,B,...`` (choices or explicit numbers), every value checked against the knob."""
    if text is None or text == "":
        if knob.choices is not None:
            return Dimension(knob.name, choices=knob.choices)
        return Dimension(knob.name, knob.low, knob.high, integer=knob.integer, log=knob.log,
                         steps=steps)
    if ":" in text and knob.choices is None:
        parts = text.split(":")
        if len(parts) != 2:
            raise WorkbenchError(f"range of {owner}.{knob.name} must be LOW:HIGH, got {text!r}")
        low, high = (knob.check(_number(p, knob, owner), owner) for p in parts)
        if not low < high:
            raise WorkbenchError(f"range of {owner}.{knob.name} must have LOW < HIGH, got {text!r}")
        return Dimension(knob.name, low, high, integer=knob.integer, log=knob.log, steps=steps)
    values = tuple(knob.check(_value(p, knob, owner), owner) for p in text.split(","))
    return Dimension(knob.name, choices=tuple(dict.fromkeys(values)))


def _number(text: str, knob: Knob, owner: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise WorkbenchError(f"{owner}.{knob.name} must be {knob.accepted}, got {text!r}") from None


def _value(text: str, knob: Knob, owner: str) -> Any:
    """A value typed on a command line, as the knob's type."""
    if knob.choices is None:
        return _number(text, knob, owner)
    for choice in knob.choices:
        if str(choice) == text.strip():
            return choice
    raise WorkbenchError(f"{owner}.{knob.name} must be {knob.accepted}, got {text!r}")


@dataclass(frozen=True)
class SessionSpec:
    """A named search over one study's Setting fields.

    Attributes:
        name: the session's name (its Optuna study name), letters, digits, ``_.-``.
        study: the study's registry name.
        vary: the varied fields.
        fixed: values of other fields (the Setting's defaults for the rest), as (name, value).
        sampler: ``grid``, ``random`` or ``nsga2`` (the accuracy–latency–energy Pareto front).
        seeds: every sampled setting runs once per seed.
        budget: settings sampled (a grid runs at most its size); trials = budget × seeds.
        sampler_seed: the sampler's own random seed.
        report: a reproduction: every trial runs the study's whole report (its report
            settings with the trial's seed and the ``fixed`` values) instead of one sampled
            setting; ``vary`` is then empty.
    """

    name: str
    study: str
    vary: tuple[Dimension, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    sampler: str = "random"
    seeds: tuple[int, ...] = (0,)
    budget: int = 8
    sampler_seed: int = 0
    report: bool = False

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise WorkbenchError(f"session name must be 1-64 letters, digits or _.- (starting "
                                 f"with a letter or digit), got {self.name!r}")
        if self.sampler not in SAMPLERS:
            raise WorkbenchError(f"sampler must be one of {', '.join(SAMPLERS)}, "
                                 f"got {self.sampler!r}")
        if not self.vary and not self.report:
            raise WorkbenchError("a session varies at least one field (--vary NAME[=RANGE])")
        if self.vary and self.report:
            raise WorkbenchError("a reproduction varies only its seeds, got "
                                 f"{[d.name for d in self.vary]}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise WorkbenchError(f"seeds must be distinct whole numbers, got {self.seeds!r}")
        if not isinstance(self.budget, int) or self.budget < 1:
            raise WorkbenchError(f"budget must be a whole number of settings >= 1, "
                                 f"got {self.budget!r}")
        study = self.the_study()
        known = knobs(study.setting)
        names = [d.name for d in self.vary] + [n for n, _ in self.fixed]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise WorkbenchError(f"unknown field(s) {', '.join(map(repr, unknown))} of "
                                 f"{study.setting.__name__}; accepted: {', '.join(known)}")
        if len(set(names)) != len(names):
            raise WorkbenchError(f"a field is both varied and fixed or named twice: {names}")
        owner = study.setting.__name__
        for d in self.vary:  # a spec read back from a store is checked again
            values = d.choices if d.choices is not None else (d.low, d.high)
            for v in values:
                known[d.name].check(v, owner)
        make_setting(study.setting, dict(self.fixed))

    def the_study(self) -> Study:
        return reportable(self.study) if self.report else explorable(self.study)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """What Optuna records per trial: the study's objectives, or a reproduction's wall time."""
        return (REPORT_OBJECTIVE,) if self.report else self.the_study().objectives

    @property
    def grid_size(self) -> int:
        return int(np.prod([len(d.grid_values()) for d in self.vary]))

    @property
    def settings_planned(self) -> int:
        """Settings the session samples (a grid stops when it is exhausted)."""
        return min(self.budget, self.grid_size) if self.sampler == "grid" else self.budget

    @property
    def trials_planned(self) -> int:
        return self.settings_planned * len(self.seeds)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.name: d.distribution(self.sampler == "grid") for d in self.vary}

    def setting(self, params: dict[str, Any]) -> Any:
        """The full Setting of a trial's sampled ``params`` (knob-checked)."""
        return make_setting(self.the_study().setting, {**dict(self.fixed), **params})

    def make_sampler(self, offset: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler; ``offset`` (trials already in the store) shifts a random sampler's seed so
        that a resumed session does not draw its first settings again."""
        seed = self.sampler_seed + offset
        if self.sampler == "grid":
            return GridSampler(
                {d.name: list(d.grid_values()) for d in self.vary}, seed=self.sampler_seed)
        if self.sampler == "nsga2":
            # a population of a fifth of the budget lets even small sessions breed generations
            population = min(50, max(4, self.budget // 5))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SessionSpec:
        d = json.loads(text)
        vary = tuple(Dimension(**{**v, "choices": None if v["choices"] is None
                                  else tuple(v["choices"])}) for v in d.pop("vary"))
        return cls(vary=vary, fixed=tuple(tuple(f) for f in d.pop("fixed")),
                   seeds=tuple(d.pop("seeds")), **d)


def reportable(name: str) -> Study:
    """The registered study ``name``."""
    from workbench.methods.registry import STUDIES

    if name not in STUDIES:
        raise WorkbenchError(f"unknown study {name!r}; available: {', '.join(STUDIES)}")
    return STUDIES[name]


def explorable(name: str) -> Study:
    """The registered study ``name`` if sessions can explore it (it has objectives)."""
    from workbench.methods.registry import STUDIES

    if not reportable(name).objectives:
        ok = [n for n, s in STUDIES.items() if s.objectives]
        raise WorkbenchError(f"study {name!r} has no objectives to explore yet; explorable: "
                             f"{', '.join(ok)}")
    return STUDIES[name]


def parse_vary(study: Study, items: list[str], steps: int = 3) -> tuple[Dimension, ...]:
    """``NAME`` or ``NAME=RANGE`` items (see :func:`dimension`) as dimensions."""
    known = knobs(study.setting)
    owner = study.setting.__name__
    found = []
    for item in items:
        name, _, text = item.partition("=")
        if name not in known:
            raise WorkbenchError(f"unknown field {name!r} of {owner}; accepted: "
                                 f"{', '.join(known)}")
        found.append(dimension(known[name], owner, text, steps))
    return tuple(found)


def parse_fixed(study: Study, items: list[str]) -> tuple[tuple[str, Any], ...]:
    """``NAME=VALUE`` items as (name, value) pairs checked against the knobs."""
    known = knobs(study.setting)
    owner = study.setting.__name__
    found = []
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise WorkbenchError(f"--set takes NAME=VALUE, got {item!r}")
        if name not in known:
            raise WorkbenchError(f"unknown field {name!r} of {owner}; accepted: "
                                 f"{', '.join(known)}")
        found.append((name, known[name].check(_value(text, known[name], owner), owner)))
    return tuple(found)
