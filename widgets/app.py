"""The served dashboard: a Panel template whose sidebar navigates between pages.

Every browser session builds its own pages (own settings); heavy objects (models, data,
simulations) are shared read-only through caches in the page modules.
"""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import panel as pn

from widgets.pages.basics import BasicsPage
from widgets.pages.early_exit import EarlyExitPage
from widgets.pages.explore import ExplorePage
from widgets.pages.hybrid import HybridPage
from widgets.pages.iir import IIRPage
from widgets.pages.msat import MSATPage
from widgets.url_settings import settings_from_url

PAGES: dict[str, Callable[[], pn.viewable.Viewer]] = {
    "Spiking basics": BasicsPage,
    "Stopping early": EarlyExitPage,
    "Adaptive thresholds (MSAT)": MSATPage,
    "Fewer timesteps (IIR)": IIRPage,
    "ANN-initialized SNN (pose)": HybridPage,
    "Explore": ExplorePage,
}


def create_app() -> pn.template.BaseTemplate:
    """One session's app: navigation in the sidebar, the chosen page in the main area
    (``?page=<title>`` in the URL opens that page, and its settings' names set them, e.g.
    ``&balance=percentile``: see :mod:`widgets.url_settings`)."""
    hv.extension("bokeh", logo=False)
    pn.extension(inline=True)
    pn.config.loading_indicator = True  # every pane shows a spinner while it recomputes
    built: dict[str, pn.viewable.Viewable] = {}
    requested = (pn.state.session_args.get("page") or [b""])[0].decode()
    menu = pn.widgets.RadioButtonGroup(options=list(PAGES), orientation="vertical",
                                       button_type="light", name="page",
                                       value=requested if requested in PAGES else next(iter(PAGES)))
    main = pn.Column(sizing_mode="stretch_width")

    def show(name: str) -> None:
        if name not in built:
            settings = getattr(PAGES[name], "settings_class", None)
            given = settings_from_url(settings, pn.state.session_args) \
                if settings and name == requested else {}
            built[name] = pn.panel(PAGES[name](**given))
        main.objects = [built[name]]

    menu.param.watch(lambda event: show(event.new), "value")
    show(menu.value)
    template = pn.template.BootstrapTemplate(title="SNN Latency Workbench", sidebar_width=220)
    template.sidebar.append(pn.pane.Markdown("**Pages**"))
    template.sidebar.append(menu)
    template.main.append(main)
    return template


def serve(port: int = 5006, address: str = "127.0.0.1", show: bool = False) -> None:
    """Serve the app (blocking) on ``http://address:port``."""
    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    print(f"serving the SNN Latency Workbench on http://{address}:{port}", flush=True)
    pn.serve(create_app, port=port, address=address, show=show, websocket_origin=origins,
             title="SNN Latency Workbench")
