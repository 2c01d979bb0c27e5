"""Fast batched channel decoders in torch: LDPC belief propagation, Viterbi, polar SC / SCL and ordered statistics.

All take LLRs in the one convention of :mod:`commsim.channels.base` (``llr = log P(b=1|r)/P(b=0|r)``)
as ``[F, n]`` tensors on any device, and offer a numpy-in/numpy-out ``decode`` adapter:

- :class:`BPDecoder` ``(H, algorithm="sum-product"|"min-sum", ...)``:
  ``llr [F, n] -> (bits [F, n] uint8, converged [F] bool, iterations [F] int32)``;
  ``.decode(llr) -> (bits, converged)``.
- :class:`ViterbiDecoder` ``(trellis, terminated=True, hard_input=False)``:
  ``llr [F, N] -> info bits [F, N/n*k - tail] uint8``; ``.decode(llr) -> bits``.
- :class:`SCDecoder` ``(frozen)`` and :class:`SCLDecoder` ``(frozen, list_size, crc_matrix)`` (polar codes):
  ``llr [F, N] -> (message [F, K] uint8, ok [F] bool)``.
- :class:`OSDDecoder` ``(G, order=2)``: ordered-statistics decoding of any binary linear code from its
  generator matrix (:func:`generator_matrix` derives it from a code's encoder):
  ``llr [F, n] -> (codeword [F, n] uint8, info [F, k] uint8)``; ``.decode(llr) -> (info, ok)``.
"""
from commsim.fec.decoders.bp import BPDecoder, parity_check_lists
from commsim.fec.decoders.osd import OSDDecoder, generator_matrix
from commsim.fec.decoders.polar import SCDecoder, SCLDecoder, polar_transform
from commsim.fec.decoders.viterbi import ViterbiDecoder

__all__ = ["BPDecoder", "OSDDecoder", "SCDecoder", "SCLDecoder", "ViterbiDecoder", "generator_matrix",
           "parity_check_lists", "polar_transform"]
