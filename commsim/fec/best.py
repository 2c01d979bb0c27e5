"""``best``: every decodable family's codes as one family, so that a separated scheme ``SOURCE+best``
chooses the family as well as the rate, by the same rule as for one family (the least expected
distortion on validation images, :class:`commsim.separated.RateSelection`).

The members are the registered families with a decoder (:data:`MEMBERS`, those registered), each
with its default options; :mod:`commsim.separated` adds each member's CRC variants. A member whose
codes cannot be ``n`` bits long (``max_length``) is left out at that ``n``.
"""
from __future__ import annotations

from commsim.fec.base import CHANNEL_CODES, ChannelCode, channel_code_family, register_channel_code

MEMBERS = ("polar", "nrldpc", "ldpc", "conv", "rep")
"""The families ``best`` draws from, strongest at short lengths first (those registered)."""


def member_families(n: int | None = None) -> list[str]:
    """The registered :data:`MEMBERS` (that can make codes of ``n`` bits, when given)."""
    names = [m for m in MEMBERS if m in CHANNEL_CODES.names()]
    if n is None:
        return names
    fits = lambda m: n <= (getattr(CHANNEL_CODES.get(m), "max_length", None) or n)
    return [m for m in names if fits(m)]


@register_channel_code("best")
class BestFamily:
    """Every decodable family's codes (polar, NR LDPC, LDPC, conv, rep): the separated scheme picks the best."""

    def codes_for(self, n: int) -> list[ChannelCode]:
        codes = [c for m in member_families(n) for c in channel_code_family(m).codes_for(n)]
        return sorted(codes, key=lambda c: -c.rate)
