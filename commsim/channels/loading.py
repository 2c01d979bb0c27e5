"""Channels by registered name or by Python path (``package.module:NAME`` or ``path/to/file.py:NAME``)."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

from commsim.channels.base import Channel
from commsim.registry import CHANNELS


def resolve_channel(spec: str) -> Channel:
    """A channel block from a registered name (``bsc``) or a user module path.

    ``NAME`` in a module path may be a ``Channel`` instance or a ``Channel`` subclass (instantiated
    without arguments), e.g. ``my_channels.py:burst``.
    """
    if ":" not in spec:
        return CHANNELS.get(spec)()
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise FileNotFoundError(f"channel module {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import channel module {module_name!r} ({exc})") from None
    obj = getattr(module, attr, None)
    if inspect.isclass(obj) and issubclass(obj, Channel):
        obj = obj()
    if not isinstance(obj, Channel):
        raise ValueError(f"{spec} is not a commsim Channel (an instance or subclass of commsim.channels.Channel)")
    return obj
