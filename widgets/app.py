"""The served dashboard: a Panel template whose sidebar navigates between pages.

Every browser session builds its own pages (own settings); heavy objects (models, data,
simulations) are shared read-only through caches in the page modules.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import holoviews as hv
import panel as pn

from widgets.page import Page
from widgets.pages.basics import BasicsPage
from widgets.pages.early_exit import EarlyExitPage
from widgets.pages.explore import ExplorePage
from widgets.pages.hybrid import HybridPage
from widgets.pages.iir import IIRPage
from widgets.pages.msat import MSATPage
from widgets.pages.source import Shared, SourcePage, load_shared

PAGES: dict[str, type[Page]] = {
    "Spiking basics": BasicsPage,
    "Stopping early": EarlyExitPage,
    "Adaptive thresholds (MSAT)": MSATPage,
    "Fewer timesteps (IIR)": IIRPage,
    "ANN-initialized SNN (pose)": HybridPage,
    "Explore": ExplorePage,
}


# why each page keeps the workbench's own model when the app serves a model source
OWN_MODELS = {
    "Spiking basics": "it re-converts the zoo's digits CNN (digits_ann) for every threshold "
                      "balancing and initial potential",
    "Stopping early": "it compares its bases: the QCFS digits CNN and the event SNNs trained "
                      "with and without AOI's RCS regulariser",
    "Adaptive thresholds (MSAT)": "it re-simulates the zoo's digits CNN for every threshold "
                                  "constant (your model's MSAT search is on 'Your model')",
    "Fewer timesteps (IIR)": "it needs the IIR chain: one digits SNN trained stage by stage "
                             "from T = 5 to T = 1",
    "ANN-initialized SNN (pose)": "it needs the hybrid pose network: an ANN state initializer "
                                  "with its SNN, trained on stick-figure events",
}


def _on_own_model(name: str, page: Callable[[], pn.viewable.Viewer]) -> pn.viewable.Viewable:
    reason = OWN_MODELS.get(name, "that method needs its method-specific models")
    return pn.Column(pn.pane.Alert(f"This page shows the workbench's own model, not yours: "
                                   f"{reason}.", alert_type="info"), page(),
                     sizing_mode="stretch_width")


def _build(page: Callable[..., pn.viewable.Viewer],
           url_args: dict[str, list[bytes]] | None) -> pn.viewable.Viewable:
    """One page of this session (its knobs from ``url_args`` where given); a page that fails
    to build shows its error in its place, and the other pages keep working."""
    try:
        built = page(url_args=url_args) if isinstance(page, type) and issubclass(page, Page) \
            and url_args else page()
        return pn.panel(built)
    except Exception as error:  # noqa: BLE001 - shown to the user, the server keeps serving
        return pn.pane.Alert(f"**This page could not be built:** {error}", alert_type="danger")


def create_app(source: Shared | None = None) -> pn.template.BaseTemplate:
    """One session's app: navigation in the sidebar, the chosen page in the main area
    (``?page=<title>`` in the URL opens that page, and its settings' names set them, e.g.
    ``&balance=percentile``: see :mod:`widgets.url_settings`). With a model ``source`` (given by
    the command line or Python, never by the browser) 'Your model' comes first and every other
    page says that it shows the workbench's own model."""
    pages = PAGES
    if source is not None:
        pages = {SourcePage.title: partial(SourcePage, source),
                 **{name: partial(_on_own_model, name, page) for name, page in PAGES.items()}}
    hv.extension("bokeh", logo=False)
    pn.extension("tabulator", inline=True)  # the Explore page's trial table
    built: dict[str, pn.viewable.Viewable] = {}
    requested = (pn.state.session_args.get("page") or [b""])[0].decode(errors="replace")
    menu = pn.widgets.RadioButtonGroup(options=list(pages), orientation="vertical",
                                       button_type="light", name="page",
                                       value=requested if requested in pages else next(iter(pages)))
    main = pn.Column(sizing_mode="stretch_width")

    def show(name: str) -> None:
        if name not in built:
            built[name] = _build(pages[name], pn.state.session_args
                                 if name == requested and source is None else None)
        main.objects = [built[name]]

    menu.param.watch(lambda event: show(event.new), "value")
    show(menu.value)
    template = pn.template.BootstrapTemplate(title="SNN Latency Workbench", sidebar_width=220)
    template.sidebar.append(pn.pane.Markdown("**Pages**"))
    template.sidebar.append(menu)
    template.main.append(main)
    return template


LOOPBACK = ("127.0.0.1", "localhost")


def websocket_origins(port: int, allowed: tuple[str, ...] = ()) -> list[str]:
    """Origins whose pages may open the app's websocket: loopback, plus every ``HOST[:PORT]`` in
    ``allowed`` (a host without a port gets the serving port)."""
    extra = [origin if ":" in origin else f"{origin}:{port}" for origin in allowed]
    return [f"{host}:{port}" for host in LOOPBACK] + extra


def serve(port: int = 5006, address: str = "127.0.0.1", show: bool = False,
          allowed_origins: tuple[str, ...] = (), model: str | None = None,
          data: str | None = None) -> None:
    """Serve the app (blocking) on ``address:port``; browsers reach it from loopback and from
    the hosts in ``allowed_origins`` (e.g. the classroom machine's name or IP). With ``model``
    (a SOURCE string, and ``data`` a DATA string) the source is loaded once, before serving,
    and shared."""
    source = None if model is None else load_shared(model, data)

    def app() -> pn.template.BaseTemplate:  # a function: pn.serve serves a partial as text
        return create_app(source)

    origins = websocket_origins(port, allowed_origins)
    urls = [f"http://{origin}" for origin in [origins[0], *origins[len(LOOPBACK):]]]
    print("serving the SNN Latency Workbench on " + ", ".join(urls), flush=True)
    pn.serve(app, port=port, address=address, show=show, websocket_origin=origins,
             title="SNN Latency Workbench")
