"""The shared energy view of every page: bars per device (SNN vs ANN, log scale), the SNN's
split by layer and op kind on one device, and the assumptions written beneath.

Both plots are live views (:mod:`widgets.live`): a knob or a new result assigns their data in
place, so the energy follows the page's other views without a HoloViews re-plot.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn
import param

from widgets import live
from workbench.energy import EnergyReport

OPS = ("mac", "synop", "neuron", "memory")  # the op kinds of EnergyReport.layers


def energy_panel(page, report: Callable[..., EnergyReport], deps: list[param.Parameter],
                 device: param.Parameter) -> pn.Column:
    """Views of ``report(*deps)`` on ``page`` (a :class:`widgets.page.Page`), redrawn when a
    dependency or the ``device`` knob changes (pass the page's ``later`` copies of knobs)."""
    def bars(*args) -> live.Frame:
        summary = report(*args).summary()
        ratio = summary.query("model == 'snn'")["snn_to_ann"]
        return live.energy_bars_frame(summary, (
            f"Energy per inference, T={summary['T'].max():g}: SNN/ANN from "
            f"{ratio.min():.2g}× to {ratio.max():.3g}×"))

    def by_layer(device_name: str, *args) -> live.Frame:
        layers = report(*args).layers
        rows = layers[(layers.device == device_name) & (layers.model == "snn")]
        table = rows.pivot_table(index="layer", columns="op", values="joules", aggfunc="sum",
                                 sort=False).reset_index()
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
