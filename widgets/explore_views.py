"""HoloViews views of an exploration session's DataFrame (``workbench.explore.frame``): the
Pareto front of two objectives with a third as colour, and a scatter matrix of the varied
settings against the objectives. Pure functions of the table; no computation of their own."""

from __future__ import annotations

import holoviews as hv
import pandas as pd

from workbench.explore import pareto_mask


def front(table: pd.DataFrame, x: str, y: str, color: str | None = None,
          objectives: dict[str, str] | None = None, label: str = "",
          title: str | None = None) -> hv.Overlay:
    """Every trial as a point of ``y`` vs ``x`` (coloured by ``color``), the Pareto-optimal
    ones (over ``objectives``, the table's own by default) joined by a line."""
    objectives = objectives or table.attrs.get("objectives", {})
    name = label or table.attrs.get("session", "")
    vdims = [y, *([color] if color else []), "trial", "seed"]
    points = hv.Points(table, [x, y], vdims[1:], label=name).opts(
        size=8, tools=["hover", "tap"], color=color or hv.Cycle(), cmap="viridis",
        colorbar=bool(color), alpha=0.8)
    best = table[pareto_mask(table, {k: v for k, v in objectives.items() if k in (x, y)})] \
        if len(table) else table
    line = hv.Curve(best.sort_values(x), x, y, label=f"{name} front").opts(
        line_width=2, color="black" if not label else hv.Cycle())
    shown = title or (f"Pareto front of {name}: {len(best)} of {len(table)} trials "
                      f"({y} vs {x})")
    return (points * line).opts(title=shown, responsive=True, min_height=350,
                                legend_position="right", show_legend=True)


def scatter_matrix(table: pd.DataFrame, columns: list[str]) -> hv.GridMatrix:
    """Every pair of ``columns`` (settings and objectives) as a scatter, histograms on the
    diagonal."""
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(table[c])]
    data = hv.Dataset(table[numeric].rename(columns=lambda c: c.removeprefix("setting.")))
    return hv.operation.gridmatrix(data, diagonal_type=hv.Histogram, chart_type=hv.Points).opts(
        hv.opts.Points(size=4, alpha=0.7, tools=["hover"]), hv.opts.GridMatrix(
            title=f"Settings vs objectives ({len(table)} trials)", width=700, height=700))
