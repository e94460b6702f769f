"""Page settings from URL parameters (``?page=Spiking%20basics&balance=percentile``): how the
Explore page opens one trial's setting on its method's page.

Only parameters of the page's own settings class are read, each converted by its declared type
and checked against its bounds or choices; anything else is ignored, nothing is evaluated, and
no value is ever used as a path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import param


def _convert(p: param.Parameter, text: str) -> Any:
    if isinstance(p, param.Boolean):
        return {"True": True, "False": False}[text]
    if isinstance(p, param.Selector):
        return next(o for o in p.objects if str(o) == text)
    if isinstance(p, param.Number):
        value = float(text)
        if not math.isfinite(value):  # NaN passes every bounds check
            raise ValueError(text)
        if isinstance(p, param.Integer):
            if not value.is_integer():  # ?timesteps=2.7 is a bad link, not T = 2
                raise ValueError(text)
            return int(value)
        return value
    raise TypeError(type(p).__name__)


def settings_from_url(settings: param.Parameterized | type[param.Parameterized],
                      args: Mapping[str, list[bytes]]) -> dict[str, Any]:
    """The values of ``settings``' parameters found in ``args`` (``pn.state.session_args``)
    that convert to the parameter's type and pass its own checks (an instance's own bounds:
    a page sets them from its data)."""
    found = {}
    for name, values in args.items():
        if name == "name" or name not in settings.param or not values:
            continue
        try:
            value = _convert(settings.param[name], values[0].decode())
            settings.param[name]._validate(value)
        except (KeyError, StopIteration, ValueError, TypeError, UnicodeDecodeError):
            continue  # a stale or hand-edited link opens the page with its defaults
        found[name] = value
    return found
