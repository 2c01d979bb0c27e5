"""Source codes of the separated baselines: ``jpeg``, ``webp``, ``jpeg2000`` (variable rate, may not
fit), ``vq``, ``pca``, ``neural`` (fixed rate, any ``k``). See :mod:`commsim.source_codes.base`
for the contract and each module for what it sends.

Example::

    from commsim.source_codes import get_source_code
    code = get_source_code("jpeg", (1, 28, 28)).fit(load_dataset("mnist"))
    payload = code.encode(img, k=1000)          # None if even the lowest quality needs more bits
"""
from __future__ import annotations

from commsim.source_codes.base import SourceCode
from commsim.source_codes.neural import NeuralCode
from commsim.source_codes.pca import PCACode
from commsim.source_codes.pillow import JPEG2000Code, JPEGCode, LadderCode, WebPCode
from commsim.source_codes.vq import VQCode
from commsim.core.registry import Registry

SOURCE_CODES = Registry("source code")
"""Source codes by name."""

SOURCE_CODES.register("jpeg", "Baseline JPEG (Pillow/libjpeg), variable rate: a quality index and the entropy-coded scan.")(JPEGCode)
SOURCE_CODES.register("webp", "Lossy WebP (VP8, Pillow/libwebp), variable rate: the first-partition size and the VP8 data.")(WebPCode)
SOURCE_CODES.register("jpeg2000", "JPEG 2000 (OpenJPEG through Pillow, 9/7 wavelet), variable rate: a flag and the packets.")(JPEG2000Code)
SOURCE_CODES.register("vq", "Vector quantiser (k-means, residual stages beyond k = 12): exactly k bits of codeword index.")(VQCode)
SOURCE_CODES.register("pca", "PCA + uniform scalar quantisers with greedy bit allocation: exactly k bits.")(PCACode)
SOURCE_CODES.register("neural", "NECST trained with eps = 0 as a compressor: the k thresholded encoder bits.")(NeuralCode)


def get_source_code(name: str, image_shape, **options) -> SourceCode:
    """An unfitted source code by name; call ``.fit(source_or_train_images)`` before use."""
    return SOURCE_CODES.get(name)(image_shape, **options)


__all__ = ["JPEG2000Code", "JPEGCode", "LadderCode", "NeuralCode", "PCACode", "SOURCE_CODES", "SourceCode", "VQCode",
           "WebPCode", "get_source_code"]
