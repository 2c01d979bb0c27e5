"""Binary-input channels. All output LLRs ``log P(b=1|r)/P(b=0|r)``; see :mod:`commsim.channels.base`."""
from commsim.channels.awgn import AWGN
from commsim.channels.base import LLR_LIMIT, Channel, LambdaChannel, Param, check_bits, hard_decisions
from commsim.channels.bec import BEC
from commsim.channels.bsc import BSC
from commsim.channels.chain import Bound, Chain
from commsim.channels.gilbert_elliott import GilbertElliott, long_run_error_rate
from commsim.channels.z import ZChannel
from commsim.channels.loading import get_channel  # the one channel factory: a registered name or file.py:NAME


__all__ = [
    "AWGN", "BEC", "BSC", "Bound", "Chain", "Channel", "GilbertElliott", "LLR_LIMIT", "LambdaChannel",
    "Param", "ZChannel", "check_bits", "get_channel", "hard_decisions", "long_run_error_rate",
]
