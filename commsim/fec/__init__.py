"""Channel codes of the separated baselines: LDPC, 5G NR LDPC, convolutional, 5G polar, repetition and ideal
codes, and ordered-statistics decoding of any linear code (:class:`OSDCode`).

Every code follows :class:`ChannelCode` (``encode(info [F, k]) -> [F, n]``, ``decode(llr [F, n]) ->
(info_hat [F, k], ok [F])``, LLRs ``log P1/P0``). Families are registered in :data:`CHANNEL_CODES`::

    from commsim.fec import channel_code_family
    codes = channel_code_family("ldpc").codes_for(1000)   # several rates, each code.n <= 1000

A new channel code is one new module in this folder whose family class carries
``@register_channel_code("NAME")`` (``codes_for(n)`` for the separated schemes, ``build(n, k)`` for
``commsim ber``): every module here is imported below, so it registers itself, and ``SOURCE+NAME`` is
a codec at once (:func:`commsim.separated.compose_scheme`). ``commsim catalog --write`` adds its name
to the command line's fast ``--help`` listing.
"""
import importlib
import pkgutil

from commsim.fec.base import CHANNEL_CODES, CRC, ChannelCode, channel_code_family, register_channel_code
from commsim.fec.convolutional import ConvCode, ConvFamily
from commsim.fec.decoders import OSDDecoder, generator_matrix
from commsim.fec.ideal import (
    IdealCode, IdealFamily, IdealFiniteBlocklengthFamily, awgn_capacity, bsc_capacity, capacity, channel_information,
    normal_approximation_bits, normal_approximation_bler, normal_approximation_ebno_db, z_capacity,
)
from commsim.fec.ldpc import LDPCCode, LDPCFamily, bp_decode, commpy_bp_decode, load_design, regular_ldpc
from commsim.fec.nrldpc import NRLDPCCode, NRLDPCFamily
from commsim.fec.osd import OSDCode
from commsim.fec.polar import PolarCode, PolarFamily
from commsim.fec.repetition import RepetitionCode, RepetitionFamily
from commsim.fec.best import BestFamily, member_families
from commsim.fec.specs import build_code, parse_code_spec

__all__ = [
    "BestFamily", "CHANNEL_CODES", "CRC", "ChannelCode", "ConvCode", "ConvFamily", "IdealCode", "IdealFamily",
    "IdealFiniteBlocklengthFamily", "LDPCCode", "LDPCFamily", "NRLDPCCode", "NRLDPCFamily", "OSDCode", "OSDDecoder",
    "PolarCode", "PolarFamily", "RepetitionCode",
    "RepetitionFamily", "awgn_capacity", "bp_decode", "bsc_capacity", "build_code", "capacity", "channel_code_family",
    "channel_information", "commpy_bp_decode", "generator_matrix", "load_design", "member_families",
    "normal_approximation_bits", "normal_approximation_bler", "normal_approximation_ebno_db", "parse_code_spec",
    "regular_ldpc", "register_channel_code", "z_capacity",
]

for _module in pkgutil.iter_modules(__path__):  # every channel-code module registers its family
    importlib.import_module(f"{__name__}.{_module.name}")
