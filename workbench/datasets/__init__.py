"""Embedded datasets (no network) and readers for real event datasets.

``load(name)`` returns an embedded dataset by name: ``digits`` (static splits),
``digits_saccade_events`` and ``stick_figure_events``. Real datasets: :func:`load_real`.
"""

from __future__ import annotations

from workbench.datasets.digits import load_digits_split
from workbench.datasets.real import load_real
from workbench.datasets.saccade import digits_saccade_events
from workbench.datasets.stick_figure import stick_figure_events
from workbench.errors import WorkbenchError

EMBEDDED = {
    "digits": load_digits_split,
    "digits_saccade_events": digits_saccade_events,
    "stick_figure_events": stick_figure_events,
}


def load(name: str, **kwargs):
    """An embedded dataset by name."""
    if name not in EMBEDDED:
        raise WorkbenchError(f"unknown dataset {name!r}; embedded: {', '.join(EMBEDDED)}; "
                             "real event datasets load with load_real(name, folder)")
    return EMBEDDED[name](**kwargs)


__all__ = ["load", "load_real", "EMBEDDED"]
