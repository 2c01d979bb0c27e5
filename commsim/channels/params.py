"""Channel parameters as a user gives them: ``--eps 0.1``, ``--ebno-db 2``, ``--param NAME=VALUE``.

One place for the rule shared by ``run``, ``train``, ``sweep`` and ``ber``: every parameter is given
once. :func:`parse_assignments` reads ``NAME=VALUE`` items; :func:`merge_params` joins them with the
named options and refuses a parameter given twice (``--eps 0.1 --param eps=0.3`` would otherwise
train at one value and report the other). Ranges and names are checked by the channel block itself
(:meth:`commsim.channels.base.Channel.check_params`).
"""
from __future__ import annotations

import math


def parse_assignments(items, flag: str = "--param") -> dict[str, float]:
    """``["p_gb=0.02", ...]`` -> ``{"p_gb": 0.02}``; ``ValueError`` (one line naming ``flag``) for an
    item without ``=``, a value that is not a finite number, or a name given twice."""
    params: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{flag}: expected NAME=VALUE, got {item!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{flag} {name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{flag} {name} must be a finite number, got {value!r}")
        if name in params:
            raise ValueError(f"{flag} {name} is given twice; give it once")
        params[name] = number
    return params


def merge_params(named: dict[str, tuple[str, float | None]], assigned: dict[str, float],
                 flag: str = "--param") -> dict[str, float]:
    """The named options (``{"eps": ("--eps", 0.1)}``, ``None`` = not given) and the assignments as one
    dict; a parameter given both ways is refused with a ``ValueError`` naming both."""
    params = {name: value for name, (_, value) in named.items() if value is not None}
    for name, value in assigned.items():
        if name in params:
            option = named[name][0]
            raise ValueError(f"{name} is given twice ({option} {params[name]:g} and {flag} {name}={value:g}); "
                             "give it once")
        params[name] = value
    return params


def swept_parameter(ranges: dict[str, tuple[str, str | None]], vary: str | None) -> tuple[str, str]:
    """``(parameter, range text)`` of the one swept parameter: one of the named range options
    (``{"--eps": ("eps", "0.1:0.3:0.1"), ...}``, ``None`` = not given) or ``--vary NAME=RANGE``;
    ``ValueError`` unless exactly one is given."""
    given = [(name, text) for _, (name, text) in ranges.items() if text is not None]
    if vary is not None:
        name, sep, text = vary.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--vary: expected NAME=RANGE, got {vary!r}")
        given.append((name.strip(), text))
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(ranges)} or --vary NAME=RANGE")
    return given[0]
