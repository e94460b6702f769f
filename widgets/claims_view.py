"""The paper claims of a page's studies, as the stored reproductions judge them.

One collapsed card per page: for every study it names (:meth:`widgets.page.Page.claim_studies`),
each claim's verdict over the seeds of ``workbench/data/results/NAME.json`` (the mean and 95 %
t-interval of :mod:`workbench.claims`), the command that made the results and its commit; a
study without stored results gets the command that makes them. A results file is read once
per version (its modification time is part of the cache key), so a page reloaded after
``workbench reproduce`` shows the new verdicts; the card is static, no knob redraws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import panel as pn
from pandas.io.formats.style import Styler

from workbench.claims import load_claims, verdicts
from workbench.errors import WorkbenchError
from workbench.reproduce import command, load_results, results_path

# the scaled numbers of a verdict row, as the README and reports print them
NUMBERS = ("mean", "95 % low", "95 % high")


@dataclass(frozen=True)
class StoredClaims:
    """The claims of one study on its stored results: ``origin`` says where the numbers come
    from (or how to make them), ``table`` has one row per verdict (empty without results), the
    :data:`NUMBERS` scaled by the claim's ``scale`` and shown in its ``unit``."""

    study: str
    origin: str
    table: pd.DataFrame

    def styled(self) -> Styler:
        """The table as the card draws it (signed, 3 significant digits, "—" where a claim is
        not comparable), for notebooks."""
        return self.table.style.format({n: _number for n in NUMBERS if n in self.table},
                                       na_rep="—").hide(axis="index")


@lru_cache(maxsize=32)
def stored_claims(study: str, path: str, version: int | None) -> StoredClaims | None:
    """Study ``study``'s claims judged on its results file ``path`` (modified at ``version``
    ns, None when it does not exist: both only key the cache); None when the claims file has no
    claim for the study."""
    if not any(c.study == study for c in load_claims()):
        return None
    if version is None:
        return StoredClaims(study, f"**{study}**: no stored results yet; `{command(study)}` "
                                   "makes them (then reload this page).", pd.DataFrame())
    try:
        results = load_results(study)
        found = verdicts(study, results.table, kind=results.seed_kind)
    except WorkbenchError as error:
        return StoredClaims(study, f"**{study}**: {error}", pd.DataFrame())
    meta = results.meta
    seeds = ("exact: deterministic, one run" if results.seed_kind == "exact" else
             f"{len(meta['seeds'])} {results.seed_kind} seeds: mean and 95 % t-interval")
    origin = (f"**{study}**: stored results of `{meta['command']}` (commit "
              f"{results.commit}, {meta['created'][:10]}; {seeds})")
    rows = []
    for v in found:
        c, i = v.claim, v.interval
        numbers = (None,) * 3 if i is None else (i.mean * c.scale, i.low * c.scale,
                                                 i.high * c.scale)
        rows.append({  # the verdict early: a narrow page clips the table's right end
            "claim": c.statement + (f" ({c.per} {v.group})" if c.per else ""),
            "verdict": v.verdict, **dict(zip(NUMBERS, numbers, strict=True)), "unit": c.unit,
            "needs": f"{c.measure} {c.comparator} {c.threshold * c.scale:g}{c.unit}",
            "seeds": v.seeds_text()})
    return StoredClaims(study, origin, pd.DataFrame(rows))


def stored_verdicts(study: str) -> StoredClaims | None:
    """:func:`stored_claims` of the study's results file as it is now, in the results folder in
    use (``$WORKBENCH_RESULTS``, else the shipped one): what the pages show, for notebooks."""
    path = results_path(study)
    try:
        version = path.stat().st_mtime_ns
    except FileNotFoundError:
        version = None
    return stored_claims(study, str(path), version)


def _number(value: float) -> str:
    return f"{value:+.3g}"


def claims_card(studies: Sequence[str]) -> pn.Card | None:
    """A collapsed card with the stored verdicts of ``studies`` (its title counts them by
    verdict), or None when none of them has a claim."""
    found = [s for s in map(stored_verdicts, studies) if s is not None]
    if not found:
        return None
    body: list = []
    for claims in found:
        body.append(pn.pane.Markdown(claims.origin, sizing_mode="stretch_width"))
        if not claims.table.empty:
            body.append(pn.pane.DataFrame(
                claims.table, index=False, na_rep="—", sizing_mode="stretch_width",
                formatters={name: _number for name in NUMBERS}))
    counts = pd.concat([c.table for c in found if not c.table.empty] or [pd.DataFrame(
        {"verdict": []})])["verdict"].value_counts(sort=False)
    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) or "no stored results"
    return pn.Card(*body, title=f"Paper claims over the stored seeds: {tally}", collapsed=True,
                   sizing_mode="stretch_width")
