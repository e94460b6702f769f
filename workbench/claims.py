"""Paper claims as data, and the one evaluator that turns a study's rows into verdicts.

Claims live in ``workbench/data/claims.toml`` (beside the energy profiles; its header documents the
fields). :func:`evaluate` reads a study's result table and returns one :class:`Verdict` per
claim (and per group, for claims evaluated per base, dataset or rate): "reproduced", "not
reproduced", or "not comparable" when the rows a claim needs are missing or not finite.
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
VERDICTS = ("reproduced", "not reproduced", "not comparable")


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
class Verdict:
    """A claim checked on one group of rows (``group`` is None for an ungrouped claim)."""

    claim: Claim
    group: Any
    measured: float | None
    verdict: str

    def text(self) -> str:
        c = self.claim
        where = f"{c.per} {self.group}: " if c.per else ""
        shown = "—" if self.measured is None else f"{self.measured * c.scale:+.3g}{c.unit}"
        bound = f"{c.comparator} {c.threshold * c.scale:g}{c.unit}"
        return (f"{where}claim = {c.statement} ({c.source}); measured {c.measure} = {shown} "
                f"(needs {bound}) -> {self.verdict}")


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


def evaluate(claim: Claim, table: pd.DataFrame) -> list[Verdict]:
    """The claim's verdict on ``table``, one per group of ``claim.per`` (in table order)."""
    groups = ([(None, table)] if claim.per is None
              else list(table.groupby(claim.per, sort=False)) if claim.per in table else [])
    verdicts = []
    for group, rows in groups:
        a = _value(rows, claim.select, claim.metric, claim.aggregate)
        b = (None if claim.measure == "value" else
             _value(rows, claim.baseline, claim.baseline_metric or claim.metric,
                    claim.baseline_aggregate))
        measured = None
        if a is not None and (b is not None or claim.measure == "value"):
            try:
                measured = MEASURES[claim.measure](a, b)
            except ZeroDivisionError:  # a ratio against a zero baseline says nothing
                measured = None
        if measured is None or not math.isfinite(measured):
            verdicts.append(Verdict(claim, group, None, "not comparable"))
            continue
        holds = COMPARATORS[claim.comparator](measured, claim.threshold)
        verdicts.append(Verdict(claim, group, measured, VERDICTS[0] if holds else VERDICTS[1]))
    return verdicts


def verdicts(study: str, table: pd.DataFrame, claims: list[Claim] | None = None
             ) -> list[Verdict]:
    """Every claim of ``study`` evaluated on its result table."""
    claims = load_claims() if claims is None else claims
    return [v for c in claims if c.study == study for v in evaluate(c, table)]


def verdict_table(found: list[Verdict]) -> pd.DataFrame:
    """Verdicts as rows (claim id, group, statement, source, measured, threshold, verdict)."""
    return pd.DataFrame([{"claim": v.claim.id, "group": v.group, "statement": v.claim.statement,
                          "source": v.claim.source, "measure": v.claim.measure,
                          "measured": v.measured, "comparator": v.claim.comparator,
                          "threshold": v.claim.threshold, "verdict": v.verdict} for v in found])
