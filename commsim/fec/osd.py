"""Any linear channel code decoded by ordered-statistics decoding (OSD) instead of its own decoder.

:class:`OSDCode` wraps a code: it encodes with the wrapped code and decodes with
:class:`~commsim.fec.decoders.OSDDecoder` of the code's generator matrix (of the transmitted bits,
derived from ``code.encode(eye(k))`` by :func:`~commsim.fec.decoders.generator_matrix`, so punctured,
shortened, rate-matched and CRC-extended codes work as long as their encoder is linear)::

    from commsim.fec import NRLDPCCode, OSDCode
    code = OSDCode(NRLDPCCode(64, 128), order=2)
    info_hat, ok = code.decode_tensor(llr)        # llr [F, 128] -> [F, 64] uint8, [F] bool

``ok`` is all True (OSD always returns a codeword and has no error detection of its own).
"""
from __future__ import annotations

import numpy as np
import torch

from commsim.fec.base import ChannelCode, check_llr
from commsim.fec.decoders import OSDDecoder, generator_matrix


class OSDCode(ChannelCode):
    """``code`` with OSD of order ``order`` as its decoder (same ``k``, ``n``, encoder).

    Shapes: ``encode(info [F, k]) -> [F, n]`` (the wrapped code's); ``decode_tensor(llr [F, n]) ->
    (info [F, k] uint8, ok [F] bool)`` on ``llr``'s device; ``decode`` is the numpy version.
    """

    def __init__(self, code: ChannelCode, order: int = 2, chunk_size: int | None = None):
        super().__init__()
        self.code = code
        self.k, self.n = code.k, code.n
        self.G = generator_matrix(code)
        self.osd = OSDDecoder(self.G, order=order, chunk_size=chunk_size)
        self.name = f"{code.name}+osd{order}"

    def encode(self, info: np.ndarray) -> np.ndarray:
        return self.code.encode(info)

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, info = self.osd(llr)
        return info, torch.ones(llr.shape[0], dtype=torch.bool, device=llr.device)

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llr = check_llr(llr, self.n)
        info, ok = self.decode_tensor(torch.from_numpy(llr))
        return info.numpy(), ok.numpy()
