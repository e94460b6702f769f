"""Paper claims as data, and the one evaluator that turns a study's rows into verdicts.

Claims live in ``workbench/data/claims.toml`` (beside the energy profiles; its header documents the
fields). :func:`evaluate` reads a study's result table, one block of rows per seed (a ``seed``
column; a table without one is a single seed), measures the claim on every seed and returns one
:class:`Verdict` per claim (and per group, for claims evaluated per base, dataset or rate): the
mean over seeds with its 95 % t-interval, and "reproduced" when the whole interval satisfies the
claim, "not reproduced" when none of it does, "inconclusive" when it spans the threshold, "too
few seeds" below the study's minimum, or "not comparable" when the rows a claim needs are
missing or not finite in some seed.
"""

from __future__ import annotations

import math
import operator
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import WorkbenchError

CLAIMS_FILE = Path(__file__).resolve().parent / "data" / "claims.toml"

MEASURES: dict[str, Callable[[float, float | None], float]] = {
    "value": lambda a, b: a,
    "difference": lambda a, b: a - b,
    "ratio": lambda a, b: a / b,
    "saving": lambda a, b: 1.0 - a / b,
    "speedup": lambda a, b: b / a,
}
COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "abs<=": lambda a, b: abs(a) <= b,
}
AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean": np.mean, "max": np.max, "min": np.min,
}
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "too few seeds", "not comparable")
CONFIDENCE = 0.95
# what varies between seeds, and how many seeds a verdict needs: a seed is a whole training run
# (costly, 3), or only gate / calibration draws on one trained model (cheap, 5); "exact": nothing
# random, one run is the answer
SEED_KINDS = {"exact": 1, "training": 3, "gate": 5, "calibration": 5}


@dataclass(frozen=True)
class Claim:
    """One paper claim: ``measure(aggregate(metric | select), baseline_aggregate(baseline_metric
    | baseline)) comparator threshold``."""

    id: str
    study: str
    source: str
    statement: str
    metric: str
    measure: str
    comparator: str
    threshold: float
    select: Mapping[str, Any] = field(default_factory=dict)
    baseline: Mapping[str, Any] = field(default_factory=dict)
    baseline_metric: str | None = None
    aggregate: str = "mean"
    baseline_aggregate: str = "mean"
    per: str | None = None
    scale: float = 1.0
    unit: str = ""


@dataclass(frozen=True)
class Interval:
    """Mean of per-seed values and its two-sided t-interval at ``CONFIDENCE`` (``low`` =
    ``high`` = ``mean`` for one value or identical values)."""

    mean: float
    low: float
    high: float
    n: int


def t_interval(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean ± t_{(1+confidence)/2, n-1} · s / √n of finite ``values`` (s: the sample standard
    deviation); a single value is its own interval."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise WorkbenchError(f"an interval needs finite values, got {values.tolist()}")
    if not 0 < confidence < 1:
        raise WorkbenchError(f"confidence must be in (0, 1), got {confidence!r}")
    mean = float(values.mean())
    if values.size == 1:
        return Interval(mean, mean, mean, 1)
    half = float(stats.t.ppf((1 + confidence) / 2, values.size - 1)
                 * values.std(ddof=1) / math.sqrt(values.size))
    return Interval(mean, mean - half, mean + half, int(values.size))


@dataclass(frozen=True)
class Verdict:
    """A claim checked on one group of rows (``group`` is None for an ungrouped claim) over
    ``kind`` seeds: ``values`` one measured value per seed, ``interval`` their mean and
    interval (None when not comparable)."""

    claim: Claim
    group: Any
    values: tuple[float, ...]
    interval: Interval | None
    verdict: str
    kind: str = "training"

    @property
    def measured(self) -> float | None:
        return None if self.interval is None else self.interval.mean

    def shown(self) -> str:
        """The measured mean and interval, scaled and with the claim's unit."""
        c, i = self.claim, self.interval
        if i is None:
            return "—"
        mean = f"{i.mean * c.scale:+.3g}{c.unit}"
        if i.n == 1 or i.low == i.high:
            return mean
        return f"{mean} [{i.low * c.scale:+.3g}, {i.high * c.scale:+.3g}]"

    def seeds_text(self) -> str:
        """How many seeds of which kind the verdict rests on (or that it is exact)."""
        n = len(self.values)
        if self.kind == "exact":
            return "exact (deterministic)"
        text = f"{n} {self.kind} seed{'s' * (n != 1)}"
        if n < SEED_KINDS[self.kind]:
            text += f" < minimum {SEED_KINDS[self.kind]}"
        elif n > 1 and self.interval is not None and self.interval.low == self.interval.high:
            text += ", identical"
        return text

    def text(self) -> str:
        c = self.claim
        where = f"{c.per} {self.group}: " if c.per else ""
        bound = f"{c.comparator} {c.threshold * c.scale:g}{c.unit}"
        shown = self.shown().replace(" [", ", 95 % interval [")
        return (f"{where}claim = {c.statement} ({c.source}); measured {c.measure} = {shown}, "
                f"{self.seeds_text()} (needs {bound}) -> {self.verdict}")


def load_claims(path: str | Path = CLAIMS_FILE) -> list[Claim]:
    """Every claim of the file; unknown measures, comparators, aggregates or fields are
    rejected with the claim's id and the accepted values."""
    path = Path(path)
    try:
        entries = tomllib.loads(path.read_text()).get("claim", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkbenchError(f"cannot read claims {path}: {exc}") from None
    known = set(Claim.__dataclass_fields__)
    claims = []
    for entry in entries:
        name = entry.get("id", "?")
        unknown = set(entry) - known
        if unknown:
            raise WorkbenchError(f"{path}: claim {name!r} has unknown field(s) {sorted(unknown)}")
        for key, choices in (("measure", MEASURES), ("comparator", COMPARATORS),
                             ("aggregate", AGGREGATES), ("baseline_aggregate", AGGREGATES)):
            if key in entry and entry[key] not in choices:
                raise WorkbenchError(f"{path}: claim {name!r} has {key} {entry[key]!r}; "
                                     f"accepted: {', '.join(choices)}")
        try:
            claims.append(Claim(**entry))
        except TypeError as exc:
            raise WorkbenchError(f"{path}: claim {name!r} is incomplete ({exc})") from None
    return claims


def _matches(column: pd.Series, wanted: Any) -> pd.Series:
    if isinstance(wanted, list):
        return column.isin(wanted)
    if isinstance(wanted, str) and any(ch in wanted for ch in "*?["):
        return column.astype(str).map(lambda v: fnmatchcase(v, wanted))
    return column == wanted


def _value(rows: pd.DataFrame, where: Mapping[str, Any], metric: str, how: str) -> float | None:
    chosen = rows
    for column, wanted in where.items():
        if column not in chosen:
            return None
        chosen = chosen[_matches(chosen[column], wanted)]
    name, _, key = metric.partition(".")
    if chosen.empty or name not in chosen:
        return None
    values = chosen[name].map(lambda cell: cell.get(key)) if key else chosen[name]
    values = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        return None
    return float(AGGREGATES[how](values))


def _measured(claim: Claim, rows: pd.DataFrame, everything: pd.DataFrame) -> float | None:
    """The claim's measured value on one seed's rows of one group (None: not comparable); a
    baseline that names the ``per`` column comes from ``everything`` (the seed's whole table:
    e.g. every α against α = 0)."""
    a = _value(rows, claim.select, claim.metric, claim.aggregate)
    pool = everything if claim.per is not None and claim.per in claim.baseline else rows
    b = (None if claim.measure == "value" else
         _value(pool, claim.baseline, claim.baseline_metric or claim.metric,
                claim.baseline_aggregate))
    if a is None or (b is None and claim.measure != "value"):
        return None
    try:
        measured = MEASURES[claim.measure](a, b)
    except ZeroDivisionError:  # a ratio against a zero baseline says nothing
        return None
    return measured if math.isfinite(measured) else None


def judge(claim: Claim, interval: Interval, kind: str) -> str:
    """The verdict of a measured interval: the comparator's accepted set is an interval, so the
    claim holds on all of [low, high] when it holds at both ends, and on none of it when it
    holds at neither end nor at the point nearest zero (``abs<=``)."""
    holds = COMPARATORS[claim.comparator]
    if interval.n < SEED_KINDS[kind]:
        return "too few seeds"
    ends = [holds(interval.low, claim.threshold), holds(interval.high, claim.threshold)]
    if all(ends):
        return "reproduced"
    nearest_zero = min(max(0.0, interval.low), interval.high)
    if not any(ends) and not holds(nearest_zero, claim.threshold):
        return "not reproduced"
    return "inconclusive"


def evaluate(claim: Claim, table: pd.DataFrame, kind: str = "exact") -> list[Verdict]:
    """The claim's verdict on ``table``, one per group of ``claim.per`` (in table order), over
    the seeds of its ``seed`` column (one seed without it); ``kind`` (a key of
    :data:`SEED_KINDS`) is what the seeds vary and sets the minimum count."""
    if kind not in SEED_KINDS:
        raise WorkbenchError(f"seed kind must be one of {', '.join(SEED_KINDS)}, got {kind!r}")
    groups = ([(None, table)] if claim.per is None
              else list(table.groupby(claim.per, sort=False)) if claim.per in table else [])
    if claim.per in claim.select:  # a select that names the per column picks the groups
        wanted = claim.select[claim.per]
        groups = [(g, r) for g, r in groups if _matches(pd.Series([g]), wanted).iloc[0]]
    verdicts = []
    for group, rows in groups:
        seeds = [None] if "seed" not in rows else sorted(rows["seed"].unique())
        values = [_measured(claim, rows if s is None else rows[rows["seed"] == s],
                            table if s is None else table[table["seed"] == s]) for s in seeds]
        if any(v is None for v in values):
            verdicts.append(Verdict(claim, group, (), None, "not comparable", kind))
            continue
        interval = t_interval(values)
        verdicts.append(Verdict(claim, group, tuple(values), interval,
                                judge(claim, interval, kind), kind))
    return verdicts


def verdicts(study: str, table: pd.DataFrame, claims: list[Claim] | None = None,
             kind: str = "exact") -> list[Verdict]:
    """Every claim of ``study`` evaluated on its result table (seeds of ``kind``)."""
    claims = load_claims() if claims is None else claims
    return [v for c in claims if c.study == study for v in evaluate(c, table, kind)]


def verdict_table(found: list[Verdict]) -> pd.DataFrame:
    """Verdicts as rows (claim id, group, statement, source, measured mean, its interval, seeds,
    threshold, verdict)."""
    return pd.DataFrame([{"claim": v.claim.id, "group": v.group, "statement": v.claim.statement,
                          "source": v.claim.source, "measure": v.claim.measure,
                          "measured": v.measured,
                          "low": None if v.interval is None else v.interval.low,
                          "high": None if v.interval is None else v.interval.high,
                          "seeds": len(v.values), "seed_kind": v.kind,
                          "comparator": v.claim.comparator,
                          "threshold": v.claim.threshold, "verdict": v.verdict} for v in found])
