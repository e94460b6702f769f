"""The shared energy view of every page: bars per device (SNN vs ANN, log scale), the SNN's
split by layer and op kind on one device, and the assumptions written beneath.

Both plots are live views (:mod:`widgets.live`): a knob or a new result assigns their data in
place, so the energy follows the page's other views without a HoloViews re-plot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn
import param

from widgets import live
from workbench.energy import EnergyReport

OPS = ("mac", "synop", "neuron", "memory")  # the op kinds of EnergyReport.layers


def _same_arguments(a: Any, b: Any) -> bool:
    """The same argument: one object, or equal plain values (numbers, text, their tuples)."""
    if a is b:
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_arguments(x, y) for x, y in zip(a, b, strict=True))
    plain = (int, float, str, bool, type(None))
    return isinstance(a, plain) and isinstance(b, plain) and type(a) is type(b) and a == b


def _last_one(report: Callable[..., EnergyReport]) -> Callable[..., EnergyReport]:
    """``report`` remembering its last call: the views of one change ask for the same report."""
    last: list[tuple[tuple, EnergyReport]] = []  # one (arguments, report), replaced whole

    def remembered(*args: Any) -> EnergyReport:
        kept = last[-1] if last else None  # read once: another thread may replace it
        if kept is not None and _same_arguments(kept[0], args):
            return kept[1]
        made = report(*args)
        last[:] = [(args, made)]
        return made

    return remembered


def energy_panel(page, report: Callable[..., EnergyReport], deps: list[param.Parameter],
                 device: param.Parameter) -> pn.Column:
    """Views of ``report(*deps)`` on ``page`` (a :class:`widgets.page.Page`), redrawn when a
    dependency or the ``device`` knob changes (pass the page's ``later`` copies of knobs). The
    three views of one change share one report."""
    report = _last_one(report)

    def bars(*args) -> live.Frame:
        summary = report(*args).summary()
        ratio = summary.snn_to_ann[summary.model == "snn"]
        return live.energy_bars_frame(summary, (
            f"Energy per inference, T={summary['T'].max():g}: SNN/ANN from "
            f"{ratio.min():.2g}× to {ratio.max():.3g}×"))

    def by_layer(device_name: str, *args) -> live.Frame:
        layers = report(*args).layers
        rows = layers[(layers.device == device_name) & (layers.model == "snn")]
        table = rows.groupby(["layer", "op"], sort=False).joules.sum().unstack("op").reset_index()
        return live.stacked_frame(f"SNN energy by layer on {device_name}", table, "layer", OPS)

    def assumptions(*args) -> str:
        r = report(*args)
        sources = "; ".join(f"**{p.label}**: {p.source} ({p.grade})"
                            for p in r.profiles.devices.values())
        return f"*{r.assumptions}*\n\nSources: {sources}"

    return pn.Column(
        page.live(live.energy_bars(), bars, *deps),
        page.live(live.stacked_bars(OPS, "layer", "J per inference"), by_layer, device, *deps),
        pn.pane.Markdown(pn.bind(assumptions, *deps), sizing_mode="stretch_width"),
        sizing_mode="stretch_width")
