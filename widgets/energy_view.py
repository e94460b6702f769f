"""The shared energy view of every page: bars per device (SNN vs ANN, log scale), the SNN's
split by layer and op kind on one device, and the assumptions written beneath."""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import panel as pn

from widgets import plots
from workbench.energy import EnergyReport


def energy_panel(report: Callable[..., EnergyReport], deps: list, device) -> pn.Column:
    """Views of ``report(*deps)``, re-drawn when a dependency (params or widgets) or the
    ``device`` param/widget changes."""
    def bars(*args):
        summary = report(*args).summary()
        ratio = summary.query("model == 'snn'").set_index("device")["snn_to_ann"]
        return plots.energy_bars(summary, title=(
            f"Energy per inference, T={summary['T'].max():g}: SNN/ANN from "
            f"{ratio.min():.2g}× to {ratio.max():.3g}×"))

    def by_layer(device_name, *args):
        return plots.energy_by_layer(report(*args).layers, device_name)

    def assumptions(*args):
        r = report(*args)
        sources = "; ".join(f"**{p.label}**: {p.source} ({p.grade})"
                            for p in r.profiles.devices.values())
        return f"*{r.assumptions}*\n\nSources: {sources}"

    return pn.Column(
        pn.pane.HoloViews(hv.DynamicMap(pn.bind(bars, *deps)), sizing_mode="stretch_width"),
        pn.pane.HoloViews(hv.DynamicMap(pn.bind(by_layer, device, *deps)),
                          sizing_mode="stretch_width"),
        pn.pane.Markdown(pn.bind(assumptions, *deps), sizing_mode="stretch_width"),
        sizing_mode="stretch_width")
