"""Fuzzing what users type: model and data SOURCE strings, dashboard URL parameters and
exploration-session settings (fields, ranges, samplers, seeds, budgets). Each ends in a correct
result or a WorkbenchError naming the bad value (URL parameters: ignored, the page opens with
its defaults)."""

from __future__ import annotations

import re

import panel as pn
import param
from fuzzing import outcome
from hypothesis import example, given, settings
from hypothesis import strategies as st

from widgets.app import PAGES
from widgets.url_settings import settings_from_url
from workbench.errors import WorkbenchError
from workbench.explore.spec import SAMPLERS, SessionSpec, parse_fixed, parse_vary
from workbench.methods.registry import STUDIES
from workbench.sources import load_data, load_source
from workbench.study import knobs

# ------------------------------------------------------------------ SOURCE and DATA strings

words = st.text("abcxyz_.:/?=&-0123456789 \\\x00é", max_size=24)
model_sources = st.one_of(
    words, st.text(max_size=300),  # anything, up to paths longer than a file name may be
    st.builds("zoo:{}".format, words),
    st.builds("fuzz_missing_{}:{}".format, st.text("abc_", min_size=1, max_size=6),
              st.text("abc_", min_size=1, max_size=6)),  # a factory whose module is not there
    st.builds("{}.nir".format, words),
    st.sampled_from(["workbench:nothing", "workbench.zoo:SPECS", "zoo:", ":", "a:b:c"]))
data_sources = st.one_of(
    st.none(), words,
    st.builds("{}:{}?{}".format, st.sampled_from(["nmnist", "dvsgesture", "cifar10dvs",
                                                  "ncaltech101", "other"]),
              st.sampled_from(["/nonexistent", "", "~/x"]),
              st.text("=&abcdefghilmnopstuw_0123456789.-", max_size=30)))


def pieces(*texts: str | None) -> list[str]:
    """The parts of what a user typed that an error may quote (names, paths, options)."""
    return [p for t in texts if t is not None for p in [*re.split(r"[:?&=]", t), repr(t)]
            if p.strip()]


@settings(max_examples=200)
@given(model=model_sources, data=data_sources, T=st.one_of(st.none(), st.integers(-2, 40)))
def test_model_sources_load_or_name_the_source(model, data, T):
    result = outcome("load_source(SOURCE, DATA, T)", lambda: load_source(model, data, T),
                     *pieces(model, data), "source", "T")
    assert isinstance(result, WorkbenchError), f"{model!r} loaded"


@settings(max_examples=200)
@given(data=data_sources.filter(lambda d: d is not None), T=st.one_of(st.none(),
                                                                      st.integers(-2, 40)))
def test_data_sources_load_or_name_the_source(data, T):
    result = outcome("load_data(DATA, T)", lambda: load_data(data, T), *pieces(data), "T")
    if not isinstance(result, WorkbenchError):  # only the embedded sets exist here
        assert data in ("digits", "digits_saccade_events")


# ------------------------------------------------------------------ dashboard URL parameters

PAGE_SETTINGS = {name: page.settings_class for name, page in PAGES.items()
                 if hasattr(page, "settings_class")}


@st.composite
def url_arguments(draw) -> tuple[type, dict[str, list[bytes]]]:
    settings_class = PAGE_SETTINGS[draw(st.sampled_from(sorted(PAGE_SETTINGS)))]
    names = [n for n in settings_class.param if n != "name"]
    typed = st.sampled_from(["nan", "inf", "-inf", "1e400", "2.5", "0", "-1", "True", "False",
                             "max", "half", "loihi", "1_0", " 3 ", "", "None", "__class__"])
    keys = st.one_of(st.sampled_from(names), st.sampled_from(["page", "name", "model", "source",
                                                              "__dict__", "param"]))
    values = st.lists(st.one_of(typed.map(str.encode), st.binary(max_size=8)), max_size=2)
    return settings_class, draw(st.dictionaries(keys, values, max_size=5))


@settings(max_examples=300)
@given(case=url_arguments())
def test_url_parameters_set_valid_settings_or_are_ignored(case):
    settings_class, args = case
    found = outcome("settings_from_url(page settings, ?args)",
                    lambda: settings_from_url(settings_class, args))
    assert set(found) <= set(settings_class.param) - {"name"}
    for name, value in found.items():
        settings_class.param[name]._validate(value)  # within bounds, one of the objects
        assert not isinstance(settings_class.param[name], param.String)
    settings_class(**found)  # a page opens with them


def test_a_page_parameter_that_is_not_utf8_opens_the_first_page(monkeypatch):
    import widgets.app

    monkeypatch.setattr(type(pn.state), "session_args",
                        property(lambda self: {"page": [b"\xff\xfe"]}))
    monkeypatch.setattr(widgets.app, "PAGES", {"Stub": lambda: pn.pane.Markdown("stub")})
    template = widgets.app.create_app()
    assert template.main[0].objects[0].object == "stub"


# ------------------------------------------------------------------ exploration settings

EXPLORABLE = sorted(name for name, study in STUDIES.items() if study.objectives)


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Seven draws in eight from ``valid``: every part of a spec must be valid for it to be."""
    return st.sampled_from([False] + [True] * 7).flatmap(lambda ok: valid if ok else invalid)


@st.composite
def knob_text(draw, knob, single: bool = False) -> str:
    """What a user types after ``FIELD=``: the knob's whole range (empty), choices, a LOW:HIGH
    range or values inside its bounds, or junk."""
    if knob is None or not draw(mostly(st.just(True), st.just(False))):
        return draw(st.one_of(st.sampled_from(["4:1", "nan:2", "1:inf", "1:2:3", "x", "1e309",
                                               "max,percentile", "0.1:2"]),
                              st.text("0123456789.:,-e", max_size=8)))
    if knob.choices is not None:
        chosen = draw(st.lists(st.sampled_from(knob.choices), min_size=int(single),
                               max_size=1 if single else 3))
        return ",".join(map(str, chosen))
    number = (st.integers(int(knob.low), int(knob.high)) if knob.integer
              else st.floats(knob.low, knob.high))
    values = draw(st.lists(number, min_size=1, max_size=3))
    if single:
        return str(values[0])
    return draw(st.sampled_from(["", ":".join(map(str, values[:2])), ",".join(map(str, values))]))


@st.composite
def session_specs(draw) -> dict:
    """Arguments of ``workbench explore new`` as typed: fields (mostly real ones) with their
    ranges or junk, fixed values, sampler, seeds, budget, steps and name."""
    study = draw(st.sampled_from(EXPLORABLE))
    known = knobs(STUDIES[study].setting)
    names = st.lists(mostly(st.sampled_from(sorted(known)), st.text("abcT_", min_size=1,
                                                                    max_size=5)),
                     min_size=1, max_size=3, unique=True)
    chosen = draw(names)
    varied = chosen[:max(1, len(chosen) - 1)]
    vary = [f"{n}={t}" if t else n for n in varied if (t := draw(knob_text(known.get(n)))) or 1]
    fixed = [f"{n}={draw(knob_text(known.get(n), single=True))}" for n in chosen[len(varied):]]
    return {"study": study, "vary": vary, "fixed": fixed,
            "sampler": draw(mostly(st.sampled_from(SAMPLERS), st.sampled_from(["grid ", "bayes"]))),
            "seeds": tuple(draw(mostly(st.lists(st.integers(0, 3), min_size=1, max_size=3,
                                                unique=True),
                                       st.lists(st.integers(-2, 3), max_size=3)))),
            "budget": draw(mostly(st.integers(1, 20), st.sampled_from([0, -1, 2.5, True]))),
            "steps": draw(mostly(st.integers(1, 5), st.integers(-2, 0))),
            "name": draw(mostly(st.sampled_from(["s1", "a-b.c_d", "ok"]),
                                st.sampled_from(["", "../etc", "x" * 70, "a b"])))}


def make_spec(a: dict) -> SessionSpec:
    study = STUDIES[a["study"]]
    return SessionSpec(a["name"], a["study"], parse_vary(study, a["vary"], a["steps"]),
                       parse_fixed(study, a["fixed"]), a["sampler"], a["seeds"], a["budget"])


@settings(max_examples=300)
@given(a=session_specs())
@example(a={"study": "energy", "vary": ["T=1:8"], "fixed": [], "sampler": "grid", "seeds": (0,),
            "budget": 4, "steps": 0, "name": "s"})
def test_session_settings_make_a_checked_spec_or_name_the_bad_value(a):
    spec = outcome("SessionSpec(explore new arguments)", lambda: make_spec(a),
                   *a["vary"], *[v.partition("=")[0] for v in a["vary"] + a["fixed"]],
                   *[v.partition("=")[2] for v in a["vary"] + a["fixed"]], a["sampler"],
                   a["name"], "seeds", "budget", "steps", "vary")
    if isinstance(spec, WorkbenchError):
        return
    assert SessionSpec.from_json(spec.to_json()) == spec  # what the store keeps reads back
    spec.make_sampler()
    assert spec.trials_planned >= 1
    for d in spec.vary:  # every grid point is a valid setting
        for value in d.grid_values():
            spec.setting({d.name: value})
