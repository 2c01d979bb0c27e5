"""commsim: Source -> Encoder -> Channel -> Decoder simulation with learned joint source-channel codes.

The public names below are imported on first use (PEP 562), so ``import commsim`` and the CLI's
``--help`` / ``list`` start without importing torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Chain": "commsim.channels", "Channel": "commsim.channels", "LambdaChannel": "commsim.channels",
    "Param": "commsim.channels", "get_channel": "commsim.channels",
    "Budget": "commsim.core.protocol", "Request": "commsim.core.protocol", "make_codec": "commsim.codecs",
    "Codec": "commsim.core.codec", "TrainConfig": "commsim.learned", "load_codec": "commsim.learned",
    "train_codec": "commsim.learned",
    "ImageSource": "commsim.data", "load_dataset": "commsim.data",
    "EvalResult": "commsim.pipeline", "Pipeline": "commsim.pipeline",
    "CHANNELS": "commsim.core.registry", "CODECS": "commsim.core.registry", "DATASETS": "commsim.core.registry",
    "register_channel": "commsim.core.registry", "register_codec": "commsim.core.registry",
    "register_dataset": "commsim.core.registry",
}
_REGISTERING = ("commsim.channels", "commsim.learned", "commsim.separated", "commsim.data")
"""Modules whose import fills the registries (imported before a registry is handed out)."""

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'commsim' has no attribute {name!r}")
    if module == "commsim.core.registry":
        for registering in _REGISTERING:
            importlib.import_module(registering)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
