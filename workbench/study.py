"""The Study contract: every method is a study with one shape.

A study has a frozen, hashable ``Setting`` dataclass whose fields are the knobs a user can vary
(each declared with :func:`knob`: range or choices, unit, doc), ``run(setting) -> Result`` (a
dataclass), ``rows(result) -> DataFrame`` and ``prepare`` (what must be built ahead: models,
searches). ``workbench prepare``, ``workbench report NAME``, the dashboard and exploration
sessions loop over :data:`workbench.methods.registry.STUDIES`; a new method is one module and one
registry line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError

# training budgets of reproductions: epochs of every training stage (None: the study's own);
# "tiny" proves the pipeline in seconds, its numbers mean nothing
BUDGETS: dict[str, int | None] = {"full": None, "tiny": 1}
SEED_LIMIT = 1_000_000


def check_budget(budget: str) -> str:
    """``budget`` if it is a key of :data:`BUDGETS`."""
    if budget not in BUDGETS:
        raise WorkbenchError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    return budget


@dataclass(frozen=True)
class Knob:
    """What a Setting field accepts: numbers in [low, high] (whole numbers when ``integer``,
    searched on a log scale when ``log``) or one of ``choices``."""

    name: str
    default: Any
    doc: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    integer: bool = False
    log: bool = False

    @property
    def accepted(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        kind = "a whole number" if self.integer else "a number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} in [{self.low:g}, {self.high:g}]{unit}"

    def check(self, value: Any, owner: str = "setting") -> Any:
        """``value`` if this knob accepts it, else a WorkbenchError naming it and the range."""
        where = f"{owner}.{self.name}"
        if self.choices is not None:
            if value not in self.choices:
                raise WorkbenchError(f"{where} must be {self.accepted}, got {value!r}")
            return value
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            ok = math.isfinite(value) and self.low <= value <= self.high
        if ok and self.integer:
            ok = float(value).is_integer()
        if not ok:
            raise WorkbenchError(f"{where} must be {self.accepted}, got {value!r}")
        return int(value) if self.integer else float(value)


def knob(default: Any, doc: str, *, unit: str = "", low: float | None = None,
         high: float | None = None, choices: Sequence | None = None, integer: bool = False,
         log: bool = False) -> Any:
    """A Setting field with its range (``low``/``high``) or ``choices``, unit and doc."""
    if (choices is None) == (low is None or high is None):
        raise TypeError("a knob has either choices or both low and high")
    meta = {"knob": dict(doc=doc, unit=unit, low=low, high=high, integer=integer, log=log,
                         choices=None if choices is None else tuple(choices))}
    return field(default=default, metadata=meta)


def knobs(setting: type | Any) -> dict[str, Knob]:
    """The knobs of a Setting class (or instance), in field order."""
    if not is_dataclass(setting):
        raise WorkbenchError(f"{setting!r} is not a Setting dataclass")
    found = {}
    for f in fields(setting):
        if "knob" in f.metadata:
            default = None if f.default is MISSING else f.default
            found[f.name] = Knob(f.name, default, **f.metadata["knob"])
    return found


def check_setting(setting: Any) -> None:
    """Validate every knob of a Setting instance (call from ``__post_init__``); whole numbers
    and floats are normalised in place."""
    owner = type(setting).__name__
    for name, k in knobs(setting).items():
        object.__setattr__(setting, name, k.check(getattr(setting, name), owner))


def setting(cls: type) -> type:
    """Class decorator: ``cls`` as a frozen dataclass whose knobs are validated on construction
    (:func:`check_setting`)."""
    cls.__post_init__ = check_setting
    return dataclass(frozen=True)(cls)


def make_setting(setting_type: type, values: dict[str, Any]) -> Any:
    """A Setting from a dict of knob values, rejecting unknown names with the accepted ones."""
    known = knobs(setting_type)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise WorkbenchError(f"unknown field(s) {', '.join(map(repr, unknown))} of "
                             f"{setting_type.__name__}; accepted: {', '.join(known)}")
    return setting_type(**values)


@dataclass(frozen=True)
class Objective:
    """One quantity an exploration session trades off (a key of ``Study.measure``'s dict)."""

    name: str
    direction: str  # "maximize" or "minimize"
    doc: str

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective {self.name}: direction must be maximize or minimize, "
                             f"got {self.direction!r}")


def curve_objectives(table: pd.DataFrame, at_T: int) -> dict[str, float]:
    """Accuracy and spikes per sample at ``at_T`` and the latency (the first T whose accuracy is
    within 1 pt of the curve's best) of a table with ``T``, ``accuracy`` and
    ``spikes_per_sample`` columns (one row per T)."""
    curve = table.set_index("T").sort_index()
    reached = curve.index[curve["accuracy"] >= curve["accuracy"].max() - 0.01]
    return {"accuracy": float(curve.at[at_T, "accuracy"]), "latency": float(reached[0]),
            "spikes": float(curve.at[at_T, "spikes_per_sample"])}


def curve_study_objectives(at_T: int) -> tuple[Objective, ...]:
    """The objectives :func:`curve_objectives` measures."""
    return (Objective("accuracy", "maximize", f"test accuracy at T={at_T}"),
            Objective("latency", "minimize", "timesteps until accuracy is within 1 pt of its best"),
            Objective("spikes", "minimize", f"spikes per sample at T={at_T}"))


@dataclass(frozen=True)
class Study:
    """One method as a study (see the module docstring).

    Attributes:
        name: the registry key and report name (``workbench report NAME``).
        title: one line for listings.
        setting: the frozen Setting class.
        run: ``run(setting) -> Result``.
        rows: ``rows(result) -> DataFrame``; every row carries the setting's knobs it varies.
        prepare: builds what ``run`` needs ahead (models, searches); returns lines to print.
        report_settings: the settings ``workbench report NAME`` runs.
        notes: extra report lines from the table (e.g. searched constants); claims come from
            the claims file.
        row_key: the columns that name a row of ``rows`` (e.g. ``T``, or ``policy``): an
            exploration session flattens every numeric cell to ``column[key=value,...]``.
        objectives: what an exploration session trades off (its Pareto front), measured from
            ``rows`` by ``measure``; a study without them cannot be explored.
        measure: ``measure(rows) -> {objective name: value}``.
        seed_kind: what its ``seed`` knob varies (a key of
            :data:`workbench.claims.SEED_KINDS`): ``"training"`` seeds, ``"gate"`` or
            ``"calibration"`` draws, or ``"exact"`` for a deterministic study without one.
    """

    name: str
    title: str
    setting: type
    run: Callable[[Any], Any]
    rows: Callable[[Any], pd.DataFrame]
    prepare: Callable[[bool], list[str]]
    report_settings: Callable[[], Sequence[Any]]
    notes: Callable[[pd.DataFrame], list[str]] = lambda table: []
    row_key: tuple[str, ...] = ()
    objectives: tuple[Objective, ...] = ()
    measure: Callable[[pd.DataFrame], dict[str, float]] | None = None
    seed_kind: str = "exact"

    def table(self, settings: Sequence[Any] | None = None) -> pd.DataFrame:
        """Rows of every setting (the report's settings by default), one DataFrame."""
        chosen = self.report_settings() if settings is None else settings
        return pd.concat([self.rows(self.run(s)) for s in chosen], ignore_index=True)
