"""Fuzzing ``simulate``, the entry every page, notebook and study runs through: any shape,
dtype, value (NaN, ±inf, huge) and T gives a finite trajectory or a WorkbenchError naming T or
the inputs, never a torch traceback or a run that does not end."""

from __future__ import annotations

import numpy as np
import torch
from fuzzing import outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from workbench.errors import WorkbenchError
from workbench.network import MAX_TIMESTEPS, NonFiniteError, SpikingNetwork, simulate
from workbench.neurons import SpikingCell

SHAPE = (2, 3, 3)
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8,
          torch.uint8, torch.bool, torch.complex64)


def network() -> SpikingNetwork:
    torch.manual_seed(0)
    return SpikingNetwork([("conv", nn.Conv2d(2, 4, 3, padding=1)), ("spike1", SpikingCell(0.5)),
                           ("flatten", nn.Flatten()), ("fc", nn.Linear(36, 3))], SHAPE).eval()


NET = network()
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.floats(-4, 4), st.integers(-300, 300))
layouts = st.one_of(  # the two the network accepts, and anything else
    st.tuples(st.integers(0, 3)).map(lambda b: (*b, *SHAPE)),  # static [B, ...]
    st.tuples(st.integers(0, 6), st.integers(0, 3)).map(lambda tb: (*tb, *SHAPE)),  # events
    st.lists(st.integers(0, 4), max_size=5).map(tuple))
steps = st.one_of(st.none(), st.integers(1, 12), st.integers(-3, 0), st.sampled_from(
    [0.0, 2.0, 2.5, float("nan"), float("inf"), -float("inf"), True, "4", np.int64(3),
     np.float32(2.0), MAX_TIMESTEPS + 1, 10**12]))


@st.composite
def inputs(draw) -> torch.Tensor:
    shape = draw(layouts)
    elements = draw(st.sampled_from([st.floats(-4, 4), values]))  # half: finite values
    array = draw(hnp.arrays(np.float64, shape, elements=elements))
    dtype = draw(st.sampled_from(DTYPES))
    if dtype.is_floating_point or dtype.is_complex:
        return torch.from_numpy(array).to(dtype)
    return torch.from_numpy(np.asarray(np.nan_to_num(array).clip(-100, 100), np.int64)).to(dtype)


@settings(max_examples=400)
@given(x=inputs(), T=steps)
def test_simulate_gives_a_finite_trajectory_or_names_the_bad_input(x, T):
    result = outcome("simulate(inputs, T)", lambda: simulate(NET, x, T), "T", "inputs")
    if isinstance(result, WorkbenchError):
        return
    static = tuple(x.shape[1:]) == SHAPE
    B = x.shape[0] if static else x.shape[1]
    assert result.readout.shape == (int(T if T is not None else x.shape[0]), B, 3)
    # a correct result: the same run as on the inputs cast to the network's float32 by hand
    again = simulate(NET, x.to(torch.float32), T)
    assert torch.equal(result.readout, again.readout)


@settings(max_examples=60)
@given(scale=st.floats(1e30, 1e38), T=st.integers(1, 8))
def test_huge_finite_inputs_overflow_to_a_named_non_finite_error(scale, T):
    x = torch.full((2, *SHAPE), scale)
    result = outcome("simulate(huge inputs)", lambda: simulate(NET, x, T))
    # whatever overflows is reported as such, never returned
    assert not isinstance(result, WorkbenchError) or isinstance(result, NonFiniteError)
