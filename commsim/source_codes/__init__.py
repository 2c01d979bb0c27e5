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

SOURCE_CODES.register("jpeg")(JPEGCode)
SOURCE_CODES.register("webp")(WebPCode)
SOURCE_CODES.register("jpeg2000")(JPEG2000Code)
SOURCE_CODES.register("vq")(VQCode)
SOURCE_CODES.register("pca")(PCACode)
SOURCE_CODES.register("neural")(NeuralCode)


def get_source_code(name: str, image_shape, **options) -> SourceCode:
    """An unfitted source code by name; call ``.fit(source_or_train_images)`` before use."""
    return SOURCE_CODES.get(name)(image_shape, **options)


__all__ = ["JPEG2000Code", "JPEGCode", "LadderCode", "NeuralCode", "PCACode", "SOURCE_CODES", "SourceCode", "VQCode",
           "WebPCode", "get_source_code"]
