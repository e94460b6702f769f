"""The page skeleton (widgets.page, widgets.worker) on a toy page: knobs become the study's
frozen Setting, the newest request wins and a stale result is never painted, a failing request
shows an error on its page only, and a closed session frees its page's worker."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from types import SimpleNamespace

import panel as pn
import param
import pytest
from panel.io.state import set_curdoc
from test_explore import TOY, ToySetting

from widgets.page import Page
from widgets.worker import Worker
from workbench.errors import WorkbenchError
from workbench.methods import registry


class ToyKnobs(param.Parameterized):
    rate = param.Number(0.5, bounds=(0.0, 1.0))
    timesteps = param.Integer(4, bounds=(1, 64))
    mode = param.Selector(default="a", objects=["a", "b"])
    sample = param.Integer(0, bounds=(0, 0))


class ToyPage(Page):
    """Its result is the Setting it computed; ``gates`` hold a request until released and
    ``broken`` makes a rate fail."""

    title = "Toy"
    settings_class = ToyKnobs
    study = "toy"
    study_knobs = {"steps": "timesteps"}
    slow_knobs = ("rate", "timesteps", "mode")

    def __init__(self, **values) -> None:
        self.gates: dict[float, threading.Event] = {}
        self.started: dict[float, threading.Event] = {}
        self.painted: list[ToySetting] = []
        self.broken: set[float] = set()
        super().__init__(**values)

    def bounds(self) -> None:
        self.settings.param.sample.bounds = (0, 9)  # e.g. ten test samples

    def compute(self, request: ToySetting, job) -> ToySetting:
        self.started.setdefault(request.rate, threading.Event()).set()
        if request.rate in self.gates:
            assert self.gates[request.rate].wait(30)
        if request.rate in self.broken:
            raise WorkbenchError(f"rate {request.rate} broke")
        return request

    def _show(self, value: ToySetting) -> None:
        self.painted.append(value)
        super()._show(value)

    def __panel__(self):
        return self.frame(pn.Param(self.settings), pn.pane.Str(self.param.result))


@pytest.fixture(autouse=True)
def toy_study(monkeypatch):
    monkeypatch.setitem(registry.STUDIES, "toy", TOY)


def test_knobs_become_the_studys_frozen_setting():
    page = ToyPage(rate=0.25, timesteps=8, sample=9)  # sample: within the data's bounds
    assert page.setting() == ToySetting(rate=0.25, steps=8, mode="a") == page.result
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.setting().rate = 0.5
    page.settings.mode = "b"
    page.wait()
    assert page.result == ToySetting(0.25, 8, "b") and page.painted == [page.result]
    with pytest.raises(WorkbenchError, match=r"sample = 10 is out of range .* accepted: 0..9"):
        ToyPage(sample=10)
    with pytest.raises(WorkbenchError, match="unknown setting 'steps'; the knobs: rate, "):
        ToyPage(steps=3)


def test_url_arguments_set_knobs_within_the_datas_bounds():
    page = ToyPage(url_args={"sample": [b"7"], "mode": [b"b"], "rate": [b"2.0"]})
    assert (page.settings.sample, page.settings.mode, page.settings.rate) == (7, "b", 0.5)
    assert ToyPage(url_args={"sample": [b"12"]}).settings.sample == 0  # a stale link


def test_the_newest_request_wins_and_a_stale_result_is_never_painted():
    page = ToyPage()
    page.gates[0.1] = threading.Event()
    page.settings.rate = 0.1  # slow: held at its gate
    assert page.started.setdefault(0.1, threading.Event()).wait(30)
    page.settings.rate = 0.2  # newer, queued behind it on the page's one worker
    page.settings.rate = 0.3  # newer still: 0.2 never starts
    assert page.busy and page.status.object == "*Recomputing…*"
    page.gates[0.1].set()  # the stale request finishes last but one
    page.wait()
    assert [s.rate for s in page.painted] == [0.3]
    assert page.result.rate == 0.3 and 0.2 not in page.started
    assert not page.busy and not page.progress.visible and page.status.object == ""


def test_a_failing_request_shows_its_error_on_its_page_only():
    broken, other = ToyPage(), ToyPage()
    broken.broken.add(0.7)
    broken.settings.rate = other.settings.rate = 0.7
    broken.wait()
    other.wait()
    assert broken.alert.visible and "rate 0.7 broke" in broken.alert.object
    assert broken.result.rate == 0.5 and not broken.busy  # the last good result stays
    assert not other.alert.visible and other.result.rate == 0.7
    broken.settings.rate = 0.8  # the page recovers with the next request
    broken.wait()
    assert not broken.alert.visible and broken.result.rate == 0.8


def test_two_sessions_own_their_knobs_workers_and_results():
    one, two = ToyPage(), ToyPage()
    one.gates[0.1] = threading.Event()
    one.settings.rate = 0.1
    two.settings.rate = 0.9  # not queued behind the other session's slow request
    two.wait()
    assert two.result.rate == 0.9 and one.busy
    one.gates[0.1].set()
    one.wait()
    assert (one.result.rate, two.result.rate) == (0.1, 0.9)
    assert one.settings is not two.settings and one.worker is not two.worker
    assert one.settings.param.sample is not ToyKnobs.param.sample  # bounds per page


def test_worker_cancels_a_running_job_and_delivers_nothing_after_close():
    delivered, seen = [], threading.Event()
    worker = Worker(lambda apply: apply())

    def work(job):
        seen.set()
        while not job.cancelled():
            threading.Event().wait(0.01)
        return "stopped"

    worker.submit(work, delivered.append, delivered.append)
    assert seen.wait(30)
    worker.cancel()
    worker.wait()
    assert delivered == ["stopped"]
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(work, delivered.append, delivered.append)


def test_a_first_answer_is_shown_only_while_its_request_is_the_newest():
    shown, release = [], {1: threading.Event(), 2: threading.Event()}
    worker = Worker(lambda apply: apply())

    def work(name):
        def run(job):
            job.partial(f"{name}: first")
            assert release[name].wait(30)
            job.partial(f"{name}: second")  # superseded by then for request 1: dropped
            return f"{name}: whole"
        return run

    worker.submit(work(1), shown.append, shown.append, partial=lambda v: shown.append(f"({v})"))
    worker.submit(work(2), shown.append, shown.append, partial=lambda v: shown.append(f"({v})"))
    release[1].set()
    release[2].set()
    worker.wait()
    assert shown == ["(1: first)", "(2: first)", "(2: second)", "2: whole"] or \
        shown == ["(2: first)", "(2: second)", "2: whole"]  # 1 may be cancelled before it starts


def test_a_closed_session_frees_its_pages_worker():
    class Context:  # what the Bokeh server gives a session's document
        request = SimpleNamespace(arguments={})

    doc, context = pn.io.document.Document(), Context()
    doc._session_context = weakref.ref(context)
    with set_curdoc(doc):
        page = ToyPage()
    [closed] = doc.callbacks.session_destroyed_callbacks
    worker = page.worker
    closed(context)
    assert page.result is None and worker._closed
    with pytest.raises(RuntimeError, match="closed"):
        page.refresh()


class BrokenPage(ToyPage):
    title = "Broken"

    def bounds(self) -> None:
        raise WorkbenchError("its models are missing")


def test_a_page_that_cannot_be_built_says_so_and_the_app_keeps_serving(monkeypatch):
    import widgets.app

    monkeypatch.setattr(widgets.app, "PAGES", {"Broken": BrokenPage, "Toy": ToyPage})
    monkeypatch.setattr(type(pn.state), "session_args", property(
        lambda self: {"page": [b"Toy"], "rate": [b"0.75"]}))
    template = widgets.app.create_app()
    [menu] = [o for o in template.sidebar if isinstance(o, pn.widgets.RadioButtonGroup)]
    [toy] = template.main[0].objects
    assert "rate=0.75" in str(toy.select(pn.pane.Str)[0].object)  # the URL set the page's knob
    menu.value = "Broken"
    [alert] = template.main[0].objects
    assert isinstance(alert, pn.pane.Alert) and "its models are missing" in alert.object
    menu.value = "Toy"
    assert template.main[0].objects == [toy]  # the same page, its knobs kept


def test_a_live_view_redraws_in_place_and_never_draws_a_non_finite_number():
    from widgets import live

    page = ToyPage()
    figure = live.bars("sample", "rate")

    def frame(rate: float, sample: int) -> live.Frame:
        return live.Frame(f"rate {rate}, sample {sample}",
                          {"bars": {"x": ["a", "b"],
                                    "top": [rate, float("inf") if sample == 7 else rate * sample]}},
                          factors=["a", "b"], ranges={"y": (0.0, 10.0)})

    page.live(figure, frame, page.settings.param.rate, page.settings.param.sample)
    source = figure.sources["bars"]
    assert figure.figure.title.text == "rate 0.5, sample 0"
    assert list(source.data["top"]) == [0.5, 0.0]
    assert list(figure.figure.x_range.factors) == ["a", "b"]
    page.settings.sample = 4  # a replay knob: drawn at once, no request to the worker
    assert figure.figure.title.text == "rate 0.5, sample 4"
    assert list(source.data["top"]) == [0.5, 2.0]
    data = source.data
    figure.draw(frame(0.5, 4))  # the same frame assigns nothing (a browser gets no patch)
    assert source.data is data
    page.settings.sample = 7  # its frame holds an inf: the view refuses, the page says why
    assert figure.figure.title.text == "rate 0.5, sample 4"
    assert list(source.data["top"]) == [0.5, 2.0]
    assert page.alert.visible and "NaN or inf" in page.alert.object


def test_the_deferred_views_read_the_knobs_copy_which_follows_them():
    page = ToyPage()
    assert page.later(page.settings.param.sample) is page.shown.param.sample
    assert page.later(page.param.result) is page.param.result  # not a knob: as it is
    page.settings.sample = 9  # the copy has no bounds of its own: the knob's were checked
    assert page.shown.sample == 9


def test_progress_accepts_any_count_the_work_reports_first():
    """A job whose first report is already past the bar's old maximum (e.g. 16 of 16 from a
    cache) moves the bar, and a later, shorter job's counts fit too."""
    page = ToyPage()
    for done, total in ((16, 16), (3, 40), (2, 4), (0, 0)):
        page.run(lambda job, d=done, t=total: job.progress(d, t, "counting") or t, lambda v: None)
        page.wait()
        assert page.progress.max == max(total, 1) and page.progress.value == min(done, total)
    assert not page.alert.visible
