"""A learned compressor as a source code: ``neural`` -- NECST trained without channel noise.

``load_codec("necst", dataset=..., bits=k, eps=0.0)`` from :mod:`commsim.learned.zoo` (cached there,
trained on first use: about a minute per ``k`` on two CPU cores at the default budget). The code
is deterministic: ``bits = sigmoid(encoder logits) > 0.5``; the decoder network reconstructs from the
received bits. A fixed-rate code: exactly ``k`` bits; the networks are shared.

The zoo's cache is looked up by the whole training configuration (eps 0, ``epochs``, ``seed``), so a
checkpoint trained with another budget is not reused.
"""
from __future__ import annotations

import numpy as np
import torch

from commsim.source_codes.base import BatchSourceCode
from commsim.channels.base import LLR_LIMIT
from commsim.data.sources import ImageSource
from commsim.learned.training import DEFAULT_EPOCHS
from commsim.learned.zoo import load_codec


class NeuralCode(BatchSourceCode):
    """NECST trained with eps = 0 as a compressor: sends the k thresholded encoder bits; the networks
    are shared."""

    name = "neural"

    def __init__(self, image_shape, seed: int = 0, epochs: int | None = None, progress: bool = False):
        super().__init__(image_shape, seed)
        self.epochs = int(epochs or DEFAULT_EPOCHS)
        self.progress = progress
        self.source: ImageSource | None = None
        self._models: dict[int, torch.nn.Module] = {}

    def fit(self, data) -> "NeuralCode":
        if not isinstance(data, ImageSource):
            raise ValueError("the neural source code trains through commsim.learned.zoo and needs an ImageSource")
        super().fit(data)
        self.source = data
        return self

    def model(self, k: int) -> torch.nn.Module:
        """The NECST codec for ``k`` bits (from the zoo's cache, else trained now), on the CPU."""
        if self.source is None:
            raise RuntimeError("fit the neural code before use")
        if k not in self._models:
            with torch.enable_grad():  # callers may be inside no_grad (Pipeline.evaluate)
                self._models[k] = load_codec("necst", dataset=self.source.name, bits=k, eps=0.0, epochs=self.epochs,
                                             seed=self.seed, device="cpu", source=self.source, progress=self.progress).eval()
        return self._models[k]

    def encode_batch(self, x, k):
        x = torch.from_numpy(np.asarray(x, np.float32))
        self.check_shape(tuple(x.shape[1:]))
        model = self.model(k)
        with torch.no_grad():
            bits = (model.logits(x) > 0).numpy().astype(np.uint8)
        return bits, np.ones(len(x), bool)

    def decode_batch(self, bits):
        bits = np.asarray(bits, np.uint8)
        model = self.model(bits.shape[1])
        with torch.no_grad():
            x, _ = model.decode((2.0 * torch.from_numpy(bits).float() - 1.0) * LLR_LIMIT)
        return x.numpy().astype(np.float32), np.ones(bits.shape[0], bool)
