"""The Study contract: knobs with ranges, validation, the registry."""

from dataclasses import FrozenInstanceError

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.methods.registry import STUDIES
from workbench.study import Study, knob, knobs, make_setting, setting


@setting
class Toy:
    rate: float = knob(0.5, "a rate", unit="Hz", low=0.0, high=1.0)
    steps: int = knob(4, "timesteps", low=1, high=64, integer=True)
    mode: str = knob("a", "a mode", choices=("a", "b"))
    note: str = ""  # not a knob


def test_knobs_carry_their_ranges_units_and_docs():
    found = knobs(Toy)
    assert list(found) == ["rate", "steps", "mode"]
    assert found["rate"].accepted == "a number in [0, 1] Hz"
    assert found["steps"].accepted == "a whole number in [1, 64]"
    assert found["mode"].accepted == "one of 'a', 'b'"
    assert Toy(steps=8.0).steps == 8 and isinstance(Toy(steps=8.0).steps, int)


@pytest.mark.parametrize("values, message", [
    ({"rate": 1.5}, r"Toy.rate must be a number in \[0, 1\] Hz, got 1.5"),
    ({"rate": float("nan")}, "Toy.rate must be a number"),
    ({"rate": "0.3"}, "got '0.3'"),
    ({"rate": True}, "got True"),
    ({"steps": 2.5}, r"Toy.steps must be a whole number in \[1, 64\], got 2.5"),
    ({"mode": "c"}, "Toy.mode must be one of 'a', 'b', got 'c'"),
    ({"speed": 1}, "unknown field\\(s\\) 'speed' of Toy; accepted: rate, steps, mode"),
])
def test_bad_values_name_the_field_and_the_accepted_range(values, message):
    with pytest.raises(WorkbenchError, match=message):
        make_setting(Toy, values)


def test_settings_are_frozen_and_hashable():
    a, b = Toy(), Toy()
    assert a == b and hash(a) == hash(b) and len({a, Toy(rate=0.1)}) == 2
    with pytest.raises(FrozenInstanceError):
        a.rate = 0.2


def test_a_study_is_one_object_with_one_shape():
    toy = Study("toy", "a toy", Toy, run=lambda s: s,
                rows=lambda r: pd.DataFrame([{"rate": r.rate, "twice": 2 * r.rate}]),
                prepare=lambda progress: [], report_settings=lambda: [Toy(0.1), Toy(0.2)])
    assert toy.table()["twice"].tolist() == [0.2, 0.4]


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_registered_study_validates_its_setting(name):
    study = STUDIES[name]
    default = study.setting()
    assert hash(default) == hash(study.setting())
    for field_name, k in knobs(study.setting).items():
        bad = "not-a-choice" if k.choices is not None else k.high + 1
        with pytest.raises(WorkbenchError, match=f"{field_name} must be"):
            make_setting(study.setting, {field_name: bad})
