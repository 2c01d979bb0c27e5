"""Named choices as string enums, checked by one rule.

Each option with a fixed set of values (a training recipe, a gradient estimator, a decoder input, a
VIMCO form, IABF's infomax form) is a :class:`Choice` subclass next to the code that uses it.
Members are strings (``Estimator.ST == "st"``), so stored records, cache names and CSV cells are the
same plain text as before; :meth:`Choice.parse` is the one check, with the one error message.
"""
from __future__ import annotations

from enum import StrEnum


class Choice(StrEnum):
    """Base of commsim's named choices; ``what`` names the option in errors (set on the subclass)."""

    @classmethod
    def parse(cls, value) -> "Choice":
        """The member named ``value`` (a member or its text), else ``ValueError`` listing the choices."""
        try:
            return cls(value)
        except ValueError:
            what = getattr(cls, "_what", cls.__name__.lower())
            raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(m.value for m in cls)}") from None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


def choice(name: str, what: str, values, module: str) -> type[Choice]:
    """A :class:`Choice` subclass called ``name`` with ``values``, to be bound to ``name`` in ``module``
    (its members pickle by that path: configs travel to worker processes); ``what`` names it in errors."""
    made = Choice(name, {v.upper(): v for v in values}, module=module, qualname=name)
    made._what = what
    return made
