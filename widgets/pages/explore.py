"""'Explore': parameter-exploration sessions on the dashboard.

Start a session from a study's knobs (the fields to vary, their ranges within the knob bounds,
sampler, seeds, budget); it runs in a background thread on a Dask LocalCluster while this page
polls the session store and redraws: progress, the Pareto front (two objectives, any metric as
colour: energy per device where the study reports it), a scatter matrix of settings vs
objectives, a sortable table with download, a second session overlaid. Clicking a row links to
that setting on its method's page (URL parameters). A session runs on the page's worker. The
store is the default one under the cache folder: a page never reads a path from the browser.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

import holoviews as hv
import pandas as pd
import panel as pn
import param

from widgets import explore_views
from widgets.page import Page
from workbench import explore
from workbench.errors import WorkbenchError
from workbench.methods.registry import STUDIES
from workbench.study import knobs

POLL_MS = 2000
# study -> (dashboard page title, study field -> page parameter where the names differ)
METHOD_PAGES = {"basics": ("Spiking basics", {}), "energy": ("Spiking basics", {"T": "timesteps"}),
                "msat": ("Adaptive thresholds (MSAT)", {}), "early-exit": ("Stopping early", {})}
EXPLORABLE = [name for name, s in STUDIES.items() if s.objectives]


def method_link(study: str, setting: dict) -> str | None:
    """The URL query opening ``setting`` on its method's page, or None without a page."""
    if study not in METHOD_PAGES:
        return None
    title, rename = METHOD_PAGES[study]
    values = {rename.get(k, k): v for k, v in setting.items() if k != "name"}
    return "?" + urlencode({"page": title, **values})


def trial_setting(table: pd.DataFrame, row: int) -> dict:
    return {c.removeprefix("setting."): v for c, v in table.iloc[row].items()
            if c.startswith("setting.")}


class ExploreSettings(param.Parameterized):
    """What the page shows (one instance per browser session); :class:`ExplorePage` fills the
    choices from the store and the session's table."""

    session = param.Selector(default=None, objects=[], doc="session shown")
    compare = param.Selector(default=None, objects=[], doc="a second session overlaid")
    x = param.Selector(default=None, objects=[], doc="front: horizontal axis")
    y = param.Selector(default=None, objects=[], doc="front: vertical axis")
    color = param.Selector(default=None, objects=[], doc="colour: any metric (energy per device)")


class ExplorePage(Page):
    """The 'Explore' page (one instance per browser session)."""

    title = "Explore"
    settings_class = ExploreSettings

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self._tables: dict[str, pd.DataFrame] = {}
        self.message = pn.pane.Alert("", alert_type="light", visible=False)
        self.trials = pn.indicators.Progress(value=0, max=1, width=300, visible=False)
        self.counts = pn.pane.Markdown("")
        self.table = pn.widgets.Tabulator(pd.DataFrame(), pagination="local", page_size=15,
                                          sizing_mode="stretch_width", disabled=True,
                                          show_index=False)
        self.table.on_click(self._clicked)
        self.link = pn.pane.Markdown("Click a trial in the table to open it on its page.")
        self.download = pn.widgets.FileDownload(callback=self._csv, filename="session.csv",
                                                label="Download CSV", button_type="light")
        self._poll = pn.state.add_periodic_callback(self.refresh, period=POLL_MS, start=False) \
            if pn.state.curdoc else None  # served: poll the store while a session runs
        self._form()
        self._refresh_names()
        self.settings.param.watch(self.refresh, "session")
        self.refresh()

    # -- starting a session ---------------------------------------------------------------
    def _form(self) -> None:
        self.chosen_study = pn.widgets.Select(label="study", options=EXPLORABLE,
                                       value="basics" if "basics" in EXPLORABLE else EXPLORABLE[0])
        self.fields = pn.widgets.MultiChoice(label="fields to vary")
        self.ranges = pn.Column()
        self.sampler = pn.widgets.Select(label="sampler", options=["grid", "random", "nsga2"],
                                         value="grid")
        self.budget = pn.widgets.IntInput(label="budget (settings)", value=4, start=1, end=10_000)
        self.seeds = pn.widgets.TextInput(label="seeds", value="0")
        self.workers = pn.widgets.IntInput(label="Dask workers", value=1, start=1, end=64)
        self.session_name = pn.widgets.TextInput(label="session name", placeholder="e.g. msat-front")
        self.start = pn.widgets.Button(label="Start session", button_type="primary")
        self.chosen_study.param.watch(self._study_changed, "value")
        self.fields.param.watch(self._fields_changed, "value")
        self.start.on_click(self._start)
        self._study_changed()

    def _study_changed(self, *_) -> None:
        found = knobs(STUDIES[self.chosen_study.value].setting)
        self.fields.options = list(found)
        self.fields.value = list(found)[:1]

    def _fields_changed(self, *_) -> None:
        found = knobs(STUDIES[self.chosen_study.value].setting)
        widgets = []
        for name in self.fields.value:
            k = found[name]
            if k.choices is not None:
                widgets.append(pn.widgets.MultiChoice(label=f"{name}: {k.doc}", value=list(k.choices),
                                                      options=list(k.choices)))
            elif k.integer:
                widgets.append(pn.widgets.EditableRangeSlider(
                    label=f"{name} ({k.unit or 'whole number'})", start=k.low, end=k.high,
                    value=(k.low, k.high), step=1, format="0"))
            else:
                widgets.append(pn.widgets.EditableRangeSlider(
                    label=f"{name} {k.unit}".strip(), start=k.low, end=k.high,
                    value=(k.low, k.high), step=(k.high - k.low) / 100))
        self.ranges.objects = widgets

    def spec(self) -> explore.SessionSpec:
        """The session the form describes (knob-checked)."""
        study = STUDIES[self.chosen_study.value]
        items = []
        for name, widget in zip(self.fields.value, self.ranges.objects, strict=True):
            if isinstance(widget, pn.widgets.MultiChoice):
                if not widget.value:
                    raise WorkbenchError(f"pick at least one value of {name}")
                items.append(f"{name}=" + ",".join(map(str, widget.value)))
            else:
                items.append(f"{name}={widget.value[0]}:{widget.value[1]}")
        try:
            seeds = tuple(int(s) for s in self.seeds.value.split(","))
        except ValueError:
            raise WorkbenchError(f"seeds are whole numbers separated by commas, got "
                                 f"{self.seeds.value!r}") from None
        return explore.SessionSpec(self.session_name.value.strip(), self.chosen_study.value,
                                   explore.parse_vary(study, items), (), self.sampler.value,
                                   seeds, int(self.budget.value))

    def _start(self, *_) -> None:
        try:
            spec = self.spec()
            explore.create(spec, explore.open_storage())
        except WorkbenchError as exc:
            self._say(str(exc), "danger")
            return
        workers = int(self.workers.value)
        self.run(lambda job: explore.run(spec.name, workers=workers, progress=False),
                 lambda _: self._finished(spec.name),
                 progress_text=f"Running session {spec.name}…")
        self._refresh_names()
        self.settings.session = spec.name
        self._say(f"Session {spec.name} started: {spec.trials_planned} trials.", "info")
        if self._poll is not None:
            self._poll.start()

    def _finished(self, name: str) -> None:
        self._say(f"Session {name} finished.", "info")
        self.refresh()

    def _say(self, text: str, kind: str) -> None:
        self.message.object, self.message.alert_type, self.message.visible = text, kind, True

    # -- reading sessions back ------------------------------------------------------------
    def _refresh_names(self) -> None:
        try:
            names = explore.session_names(explore.open_storage())
        except WorkbenchError as exc:
            self._say(str(exc), "danger")
            names = []
        s = self.settings
        s.param.session.objects = names
        s.param.compare.objects = [None, *names]
        if s.session not in names:
            s.session = names[-1] if names else None

    def _table(self, name: str | None) -> pd.DataFrame:
        if name is None:
            return pd.DataFrame()
        self._tables[name] = explore.frame(name)
        return self._tables[name]

    def refresh(self, *_) -> None:
        """Re-read the shown session (new trials, progress) and redraw."""
        s = self.settings
        if s.session is None:
            return
        table = self._table(s.session)
        spec, study = explore.load(s.session, explore.open_storage())
        counts = explore.progress(spec, study)
        # a retried trial counts once failed and once complete: clip to what the bar can show
        self.trials.max = max(counts.planned, 1)
        self.trials.value = min(counts.complete + counts.failed, self.trials.max)
        self.trials.visible = True
        self.counts.object = (f"**{spec.name}** ({spec.study}, {spec.sampler}): "
                              f"{counts.complete} complete, {counts.failed} failed, "
                              f"{counts.running} running of {counts.planned}")
        objectives = list(table.attrs.get("objectives", {}))
        # colours every trial has (e.g. not a policy row that only some bases report)
        metrics = [c for c in table.columns if c not in ("trial", "seed", "state", "wall_s")
                   and pd.api.types.is_numeric_dtype(table[c]) and not c.startswith("setting.")
                   and table[c].notna().all()]
        s.param.x.objects = s.param.y.objects = objectives
        s.param.color.objects = [None, *metrics]
        s.param.update(x=s.x if s.x in objectives else objectives[-1] if objectives else None,
                       y=s.y if s.y in objectives else objectives[0] if objectives else None,
                       color=s.color if s.color in metrics else (
                           objectives[-1] if len(objectives) > 2 else None))
        shown = ["trial", "seed", *table.attrs.get("varied", []), *objectives, "wall_s"] \
            if len(table) else []
        self.table.value = table[shown] if len(table) else table
        if counts.done and self._poll is not None and not self.busy:
            self._poll.stop()
        s.param.trigger("x")

    def _csv(self) -> io.StringIO:
        self.download.filename = f"{self.settings.session or 'session'}.csv"
        table = self._tables.get(self.settings.session, pd.DataFrame())
        return io.StringIO(table.to_csv(index=False))

    def _clicked(self, event) -> None:
        table = self._tables.get(self.settings.session)
        if table is None or event.row is None or event.row >= len(table):
            return
        trial = table.iloc[event.row]
        link = method_link(table.attrs["study"], trial_setting(table, event.row))
        self.link.object = (f"Trial {int(trial['trial'])} (seed {trial['seed']}): "
                            + (f"[open this setting on its page]({link})" if link
                               else "its study has no dashboard page"))

    # -- views ----------------------------------------------------------------------------
    def front_view(self, x=None, y=None, color=None, compare=None):
        """Every trial against the two objectives shown, the second session overlaid (the
        arguments are the knobs it redraws on)."""
        s = self.settings
        table = self._tables.get(s.session)
        if table is None or table.empty or s.x is None:
            return hv.Div("<p>No finished trials yet.</p>")
        view = explore_views.front(table, s.x, s.y, s.color)
        if s.compare and s.compare != s.session:
            other = self._table(s.compare)
            if {s.x, s.y} <= set(other.columns):
                view = view * explore_views.front(other, s.x, s.y, label=s.compare)
                view = view.opts(title=f"{s.session} vs {s.compare}: {s.y} vs {s.x}")
        return view

    def matrix_view(self, x=None):
        table = self._tables.get(self.settings.session)
        if table is None or len(table) < 2:
            return hv.Div("<p>The scatter matrix needs two trials.</p>")
        return explore_views.scatter_matrix(
            table, [*table.attrs["varied"], *table.attrs["objectives"]])

    def __panel__(self) -> pn.viewable.Viewable:
        form = pn.Column("### New session", self.chosen_study, self.fields, self.ranges, self.sampler,
                         self.budget, self.seeds, self.workers, self.session_name, self.start, width=320)
        p = self.settings.param
        choose = pn.Param(self.settings, show_name=False, width=320)
        intro = pn.pane.Markdown(
            "A **session** searches one study's settings: each field's range comes from its "
            "knob; Optuna samples (grid, random, or NSGA-II for the accuracy–latency–energy "
            "Pareto front) and stores every trial, Dask runs them. The same sessions are on the "
            "command line: `workbench explore list`.", sizing_mode="stretch_width")
        return pn.Row(
            pn.Column(form, "### Show", choose, self.progress, self.status),
            pn.Column(self.alert, intro, self.message, pn.Row(self.trials, self.counts),
                      pn.pane.HoloViews(pn.bind(self.front_view, p.x, p.y, p.color, p.compare),
                                        sizing_mode="stretch_width"),
                      "### Trials", self.table, pn.Row(self.download, self.link),
                      "### Settings vs objectives",
                      pn.pane.HoloViews(pn.bind(self.matrix_view, p.x)),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _session_closed(self, context) -> None:
        if self._poll is not None:
            self._poll.stop()
        super()._session_closed(context)
