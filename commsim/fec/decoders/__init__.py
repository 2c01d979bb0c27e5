"""Fast batched channel decoders in torch: LDPC belief propagation and Viterbi.

Both take LLRs in the one convention of :mod:`commsim.channels.base` (``llr = log P(b=1|r)/P(b=0|r)``)
as ``[F, n]`` tensors on any device, and offer a numpy-in/numpy-out ``decode`` adapter:

- :class:`BPDecoder` ``(H, algorithm="sum-product"|"min-sum", ...)``:
  ``llr [F, n] -> (bits [F, n] uint8, converged [F] bool, iterations [F] int32)``;
  ``.decode(llr) -> (bits, converged)``.
- :class:`ViterbiDecoder` ``(trellis, terminated=True, hard_input=False)``:
  ``llr [F, N] -> info bits [F, N/n*k - tail] uint8``; ``.decode(llr) -> bits``.
"""
from commsim.fec.decoders.bp import BPDecoder, parity_check_lists
from commsim.fec.decoders.viterbi import ViterbiDecoder

__all__ = ["BPDecoder", "ViterbiDecoder", "parity_check_lists"]
