"""Channel parameters as a user gives them: ``--eps 0.1``, ``--ebno-db 2``, ``--param NAME=VALUE``.

One place for the rule shared by ``run``, ``train``, ``sweep`` and ``ber``: every parameter is given
once. :func:`parse_assignments` reads ``NAME=VALUE`` items; :func:`merge_params` joins them with the
named options and refuses a parameter given twice (``--eps 0.1 --param eps=0.3`` would otherwise
train at one value and report the other). Ranges and names are checked by the channel block itself
(:meth:`commsim.channels.base.Channel.check_params`).
"""
from __future__ import annotations

import math

import torch


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


def collect_params(channel, name: str, named: dict[str, tuple[str, float | None]], items, defaults: dict | None = None) -> dict:
    """The parameters of ``channel`` (a block, called ``name``) from the named options (``{"eps":
    ("--eps", 0.1)}``, ``None`` = not given), the ``--param NAME=VALUE`` items and ``defaults`` for
    parameters the block has and the user left out; checked by the block (names, ranges, required
    ones). ``ValueError`` names the option to fix."""
    for param, (flag, value) in named.items():
        if value is not None and param not in channel.params:
            raise ValueError(f"{flag}: channel {name!r} has no {param}; its parameters are {', '.join(channel.params)}")
    params = merge_params(named, parse_assignments(items))
    for param, value in (defaults or {}).items():
        if param in channel.params and param not in params:
            params[param] = value
    required = [n for n, p in channel.params.items() if p.default is None and n not in params]
    if required:
        flag = next((f for p, (f, _) in named.items() if p == required[0]), f"--param {required[0]}=VALUE")
        raise ValueError(f"channel {name!r} needs {required[0]}; pass {flag}")
    try:
        channel.check_params(params, torch.zeros(1, 1))
    except ValueError as exc:  # "eps must be in [0, 1], got 2" -> "--eps: eps must be ..."
        culprit = next((p for p in params if str(exc).startswith(p)), None)
        if culprit is None:
            raise
        flag = named[culprit][0] if culprit in named and named[culprit][1] is not None else f"--param {culprit}"
        raise ValueError(f"{flag}: {exc}") from None
    return params
