"""Channel codes named by a spec: ``FAMILY(N,K[,OPTION=VALUE...])``, as ``commsim ber --code`` takes them.

``build_code("polar(128,64,crc_bits=6)")`` is the registered family ``polar`` built with its options
(``PolarFamily(crc_bits=6)``) and asked for the code of exactly ``N`` channel bits carrying ``K``
information bits (``family.build(n, k)``); ``osd=T`` wraps any such code in ordered-statistics decoding
of order ``T``.
"""
from __future__ import annotations

import re

from commsim.fec.base import CHANNEL_CODES, ChannelCode
from commsim.fec.osd import OSDCode

_SPEC = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*\((.*)\)\s*$")


def _option_value(text: str):
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_code_spec(text: str) -> tuple[str, int, int, dict]:
    """``"FAMILY(n,k[,option=value...])"`` -> ``(family, n, k, options)``, e.g.
    ``"polar(128,64,list_size=8)"``; the options are the family's constructor arguments."""
    usage = f"malformed code {text!r}; write FAMILY(N,K) or FAMILY(N,K,OPTION=VALUE,...), e.g. ldpc(128,64)"
    match = _SPEC.match(str(text))
    if not match:
        raise ValueError(usage)
    parts = [p.strip() for p in match.group(2).split(",") if p.strip()]
    positional = [p for p in parts if "=" not in p]
    if len(positional) != 2 or any("=" not in p for p in parts[2:]):
        raise ValueError(usage)
    try:
        n, k = (int(p) for p in positional)
    except ValueError:
        raise ValueError(f"{usage} (N and K are whole numbers)") from None
    if not 0 < k <= n:
        raise ValueError(f"code {text!r}: need 0 < K <= N, got N={n}, K={k}")
    options = {}
    for item in parts[2:]:
        key, _, value = item.partition("=")
        options[key.strip()] = _option_value(value)
    return match.group(1), n, k, options


def build_code(text: str) -> ChannelCode:
    """The code a spec names (:func:`parse_code_spec`), built by its family's ``build(n, k)``; the
    option ``osd=T`` (any family) decodes it by ordered-statistics decoding of order ``T`` instead
    (:class:`~commsim.fec.osd.OSDCode`, the near-ML reference of a short code), e.g.
    ``"polar(128,64,crc_bits=6,osd=3)"``."""
    name, n, k, options = parse_code_spec(text)
    osd = options.pop("osd", None)
    family_class = CHANNEL_CODES.get(name)
    if not hasattr(family_class, "build"):
        raise ValueError(f"channel-code family {name!r} has no decodable code of a given (n, k) (ideal codes are "
                         "references without a decoder, best is a choice among families); choose a family with a decoder")
    try:
        family = family_class(**options)
    except TypeError as exc:
        raise ValueError(f"code {text!r}: {name} takes no such option ({exc})") from None
    code = family.build(n, k)
    if osd is None:
        return code
    if not isinstance(osd, int) or osd < 0:
        raise ValueError(f"code {text!r}: osd must be an order 0, 1, 2, ..., got {osd!r}")
    return OSDCode(code, order=osd)
