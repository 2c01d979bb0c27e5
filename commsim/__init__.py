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
    "Codec": "commsim.codecs", "TrainConfig": "commsim.codecs", "load_codec": "commsim.codecs",
    "train_codec": "commsim.codecs",
    "ImageSource": "commsim.data", "load_dataset": "commsim.data",
    "EvalResult": "commsim.pipeline", "Pipeline": "commsim.pipeline",
    "CHANNELS": "commsim.registry", "CODECS": "commsim.registry", "DATASETS": "commsim.registry",
    "register_channel": "commsim.registry", "register_codec": "commsim.registry",
    "register_dataset": "commsim.registry",
}
_REGISTERING = ("commsim.channels", "commsim.codecs", "commsim.baselines", "commsim.data")
"""Modules whose import fills the registries (imported before a registry is handed out)."""

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'commsim' has no attribute {name!r}")
    if module == "commsim.registry":
        for registering in _REGISTERING:
            importlib.import_module(registering)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
