"""The skeleton of every dashboard page (after Panel's DataStore / View / App pattern).

A page declares its knobs (a ``param.Parameterized`` class), the study they set, the knobs whose
change needs slow work, ``compute`` (that slow work) and its views. This base class turns the
knobs into the study's frozen ``Setting``, runs ``compute`` on the page's one worker thread
(:mod:`widgets.worker`: the newest request wins, a stale result is never painted), shows a
progress bar while it runs and an error in this page only when it raises, and frees the page's
worker when its browser session closes. Shared read-only data stays in the page modules' caches;
everything a session changes lives on its page.

Order of a knob move, served: the page's live views (:mod:`widgets.live`) redraw at once and
their patch leaves; one event-loop tick later the knobs' copy ``shown`` follows, and every
HoloViews view and the slow work react to it, under one freeze of the document (Bokeh then
re-walks the page's model graph once, not once per view).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar

import holoviews as hv
import panel as pn
import param
from panel.io.document import hold
from panel.io.state import set_curdoc

from widgets.claims_view import claims_card
from widgets.live import Frame, LiveFigure
from widgets.url_settings import settings_from_url
from widgets.worker import Job, Worker
from workbench.errors import WorkbenchError
from workbench.methods.registry import STUDIES
from workbench.study import knobs, make_setting


class Page(pn.viewable.Viewer):
    """A dashboard page: subclasses set ``title``, ``settings_class``, ``study`` (a name in
    :data:`workbench.methods.registry.STUDIES`, or None), ``study_knobs`` (study field → knob
    where the names differ), ``slow_knobs``, ``related_studies`` (other studies of the page's
    method whose claims it shows), and define ``compute`` and ``__panel__``."""

    title: ClassVar[str]
    settings_class: ClassVar[type[param.Parameterized]]  # also what URL parameters may set
    study: ClassVar[str | None] = None
    study_knobs: ClassVar[Mapping[str, str]] = {}
    slow_knobs: ClassVar[tuple[str, ...]] = ()
    related_studies: ClassVar[tuple[str, ...]] = ()

    result = param.Parameter(default=None, precedence=-1, doc=(
        "what ``compute`` returned for the newest finished request (the views read it)"))
    busy = param.Boolean(default=False, precedence=-1, doc="a request is pending")

    def __init__(self, url_args: Mapping[str, list[bytes]] | None = None, **values: Any) -> None:
        """``values`` set knobs of ``settings_class`` (a bad value raises a WorkbenchError);
        ``url_args`` (``pn.state.session_args``) too, where they convert and fit the bounds
        (:mod:`widgets.url_settings`: a stale link opens the page with its defaults)."""
        super().__init__()
        self.settings = self.settings_class()
        self._doc = pn.state.curdoc  # the session's document (None in-process)
        self.worker = Worker(self._on_loop, name=self.title)
        # the status line keeps its place (an element shown or hidden makes the browser lay the
        # whole page out again: ~0.3 s here); the bar appears only for work that reports progress
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False,
                                               sizing_mode="stretch_width")
        self.status = pn.pane.Markdown("", height=40, sizing_mode="stretch_width")
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                   sizing_mode="stretch_width")
        self.bounds()
        values = settings_from_url(self.settings, url_args or {}) | values
        for name in self.settings.param:  # in declaration order: a base before its bounds
            if name in values:
                self.set_knob(name, values[name])
        for name in set(values) - set(self.settings.param):
            self.set_knob(name, values[name])  # raises: an unknown knob
        if self._served:
            pn.state.on_session_destroyed(self._session_closed)
        self.shown = _mirror(self.settings)
        self._pending: dict[str, Any] = {}
        # after the page's own watchers (e.g. bounds that follow a base), which run at 0
        self.settings.param.watch(self._follow, [n for n in self.shown.param if n != "name"],
                                  precedence=1)
        if self.slow_knobs:
            self.result = self.compute(self.request(), None)  # the first view waits for it
            self.shown.param.watch(self.refresh, list(self.slow_knobs))

    @property
    def _served(self) -> bool:
        return self._doc is not None and self._doc.session_context is not None

    def _follow(self, *events: param.parameterized.Event) -> None:
        """Let ``shown`` follow the knobs: at once in-process, a tick later when served (after
        the live views' patch has left)."""
        first = not self._pending
        self._pending.update({e.name: e.new for e in events})
        if not self._served:
            self._settle()
        elif first:
            with set_curdoc(self._doc):
                pn.state.execute(self._settle, schedule=True)

    def _settle(self) -> None:
        pending, self._pending = self._pending, {}
        self._batched(lambda: self.shown.param.update(**pending))

    def _batched(self, apply: Callable[[], None], freeze: bool = True) -> None:
        """``apply()``; served, its patches leave together when it returns, and with
        ``freeze`` Bokeh walks the page's model graph once for all the views it redraws."""
        if not self._served:
            apply()
            return
        with hold(self._doc, freeze=freeze):
            apply()

    # -- knobs -> the study's Setting --------------------------------------------------------
    def bounds(self) -> None:
        """Set the knobs' bounds from the data (sample count, layers, T range): override."""

    def set_knob(self, name: str, value: Any) -> None:
        """Set one knob; an unknown name or an out-of-range value raises a WorkbenchError."""
        names = [k for k in self.settings.param if k != "name"]
        if name not in names:
            raise WorkbenchError(f"unknown setting {name!r}; the knobs: {', '.join(names)}")
        try:
            setattr(self.settings, name, value)
        except ValueError:
            knob = self.settings.param[name]
            accepted = (f"{knob.bounds[0]}..{knob.bounds[1]}" if getattr(knob, "bounds", None)
                        else ", ".join(map(str, getattr(knob, "objects", []))))
            raise WorkbenchError(f"{name} = {value!r} is out of range on the {self.title!r} "
                                 f"page; accepted: {accepted}") from None

    def setting(self) -> Any:
        """The study's frozen Setting of the knobs shown (fields without a knob keep their
        defaults)."""
        if self.study is None:
            raise WorkbenchError(f"the {self.title!r} page has no study")
        fields = knobs(STUDIES[self.study].setting)
        values = {field: getattr(self.settings, self.study_knobs.get(field, field))
                  for field in fields if self.study_knobs.get(field, field) in self.settings.param}
        return make_setting(STUDIES[self.study].setting, values)

    @classmethod
    def claim_studies(cls) -> tuple[str, ...]:
        """The studies whose stored claim verdicts the page shows: its own, then its related
        studies that are registered (a related study from another branch shows up once it is)."""
        names = ((cls.study,) if cls.study else ()) + cls.related_studies
        return tuple(name for name in names if name in STUDIES)

    # -- slow work -----------------------------------------------------------------------------
    def request(self) -> Hashable:
        """What ``compute`` needs: the study's Setting (override to add knobs outside it)."""
        return self.setting()

    def compute(self, request: Hashable, job: Job | None) -> Any:
        """The slow work of ``request`` (runs on the worker thread; ``job`` is None for the
        first, synchronous one); its value becomes ``result``."""
        raise NotImplementedError

    def refresh(self, *_: Any) -> None:
        """Recompute for the knobs shown now."""
        request = self.request()
        self.run(lambda job: self.compute(request, job), self._show)

    def _show(self, value: Any) -> None:
        self.result = value

    def run(self, work: Callable[[Job], Any], show: Callable[[Any], None],
            progress_text: str = "Recomputing…") -> int:
        """Run ``work`` as the page's newest request; ``show`` its value (on the session's
        event loop) unless a newer request came, and any first answer it hands over with
        ``job.partial`` meanwhile (the status line stays). The request's generation."""
        self.alert.visible = False
        self.busy = True
        self.status.object = f"*{progress_text}*"

        def shown(value: Any) -> None:
            show(value)
            self._idle()

        def failed(error: BaseException) -> None:
            self._idle()
            self.alert.param.update(object=f"**This page could not update:** {error}",
                                    visible=True)

        return self.worker.submit(work, shown, failed, self._progressed, partial=show)

    def _progressed(self, done: int, total: int, text: str) -> None:
        # max first, on its own: Progress bounds its value by max in a watcher, which a joint
        # param.update defers until after the value is checked (16 of 16 after 0 of 1 raised)
        self.progress.max = max(total, 1)
        self.progress.param.update(value=min(done, total), visible=True)
        if text:
            self.status.object = f"*{text}*"

    def _idle(self) -> None:
        self.busy = False
        self.progress.visible = False
        self.status.object = ""

    def wait(self, timeout: float = 120.0) -> None:
        """Until the newest request is shown (in-process use; a served page never waits)."""
        self.worker.wait(timeout)

    def _on_loop(self, apply: Callable[[], None]) -> None:
        """Run ``apply`` where the session's models may change: its event loop when served,
        else at once (in-process, in the worker thread)."""
        if not self._served:
            apply()
            return
        with set_curdoc(self._doc):
            pn.state.execute(lambda: self._batched(apply), schedule=True)

    def _session_closed(self, _context: Any) -> None:
        """Free this session's objects: the worker (cancelled) and the last result."""
        self.worker.close()
        with param.discard_events(self):  # nothing is drawn any more
            self.result = None
        self._doc = None

    # -- views ---------------------------------------------------------------------------------
    def later(self, dep: Any) -> Any:
        """``dep``, or, for a knob, its copy in ``shown`` (which follows a tick later)."""
        if isinstance(dep, param.Parameter) and dep.owner is self.settings:
            return self.shown.param[dep.name]
        return dep

    def view(self, method: Callable[..., hv.core.Dimensioned], *deps: Any) -> pn.pane.HoloViews:
        """A plot of ``method(*deps)`` redrawn when a dependency (param, widget) changes, a
        tick after the live views (knobs are read from ``shown``). While the worker runs, the
        status line says so and the plot keeps its last picture."""
        return pn.pane.HoloViews(hv.DynamicMap(pn.bind(method, *map(self.later, deps))),
                                 sizing_mode="stretch_width")

    def live(self, figure: LiveFigure, frame: Callable[..., Frame], *deps: Any) -> LiveFigure:
        """``figure`` redrawn with ``frame(*values of deps)`` as soon as a dependency (a knob,
        ``self.param.result``) changes: the replay views whose budget is a frame or two."""
        def redraw(*_: Any) -> None:
            try:
                drawn = frame(*(getattr(d.owner, d.name) for d in deps))
                # no model is created: its patch leaves now, before the deferred views
                self._batched(lambda: figure.draw(drawn), freeze=False)
            except WorkbenchError as error:
                self.alert.param.update(object=f"**This view could not update:** {error}",
                                        visible=True)

        owners: dict[param.Parameterized, list[str]] = {}
        for dep in deps:
            owners.setdefault(dep.owner, []).append(dep.name)
        for owner, names in owners.items():  # knobs set together redraw once
            owner.param.watch(redraw, names)
        redraw()
        return figure

    def frame(self, widgets: pn.viewable.Viewable, *views: Any,
              extra: tuple = ()) -> pn.viewable.Viewable:
        """The page's layout: knobs and the progress on the left; right, the alert, the stored
        verdicts of the page's claims (collapsed, when it has any) and the views."""
        claims = claims_card(self.claim_studies())
        return pn.Row(
            pn.Column("### Settings", widgets, *extra, self.progress, self.status),
            pn.Column(self.alert, *([claims] if claims else []), *views,
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width")


def _mirror(settings: param.Parameterized) -> param.Parameterized:
    """A copy of ``settings``' values without their bounds (they were checked on the knobs;
    the bounds of a knob may follow the data, e.g. the sample count)."""
    names = [n for n in settings.param if n != "name"]
    cls = type(f"Shown{type(settings).__name__}", (param.Parameterized,), {
        n: param.Parameter(default=getattr(settings, n)) for n in names})
    return cls()
