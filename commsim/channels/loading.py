"""Channels by registered name or by Python path (``package.module:NAME`` or ``path/to/file.py:NAME``).

A user module that fails to import (a syntax error, an exception at import) raises
:class:`ChannelModuleError`: one line naming the file and line, the original error as its cause.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import traceback
from pathlib import Path

from commsim.channels.base import Channel
from commsim.core.registry import CHANNELS


class ChannelModuleError(ValueError):
    """A user channel module that cannot be imported; ``__cause__`` holds the original error."""


def _where(exc: BaseException, module_file: str | None) -> str:
    """``file, line N`` of the error: a syntax error's own position, else the deepest frame in the
    user's module (else the deepest frame of all)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if module_file and Path(f.filename).resolve() == Path(module_file).resolve()]
    frame = (own or frames or [None])[-1]
    return f"{frame.filename}, line {frame.lineno}" if frame else str(module_file)


def _import_failed(name: str, exc: Exception, module_file: str | None) -> ChannelModuleError:
    detail = (exc.msg if isinstance(exc, SyntaxError) else str(exc)).strip()
    what = f"{type(exc).__name__}: {detail.splitlines()[0]}" if detail else type(exc).__name__
    return ChannelModuleError(f"channel module {name} failed to import ({_where(exc, module_file)}): {what}; "
                              "fix it (`commsim --traceback ...` shows the whole traceback)")


def get_channel(spec: str) -> Channel:
    """A new channel block from a registered name (``get_channel("bsc")``) or a user module path (the
    one channel factory of commsim: every command and the API take both forms).

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
        try:
            module_spec.loader.exec_module(module)
        except SystemExit as exc:  # sys.exit() at import would end commsim silently, often with code 0
            raise ChannelModuleError(f"channel module {path} called sys.exit({exc.code!r}) while being imported; "
                                     "a channel module must only define its channels") from None
        except Exception as exc:  # whatever the user's code raises: one line, the cause kept for --traceback
            raise _import_failed(str(path), exc, str(path)) from exc
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ValueError(f"cannot import channel module {module_name!r} ({exc})") from None
            raise _import_failed(module_name, exc, None) from exc
        except Exception as exc:
            raise _import_failed(module_name, exc, None) from exc
    obj = getattr(module, attr, None)
    if inspect.isclass(obj) and issubclass(obj, Channel):
        try:
            obj = obj()
        except TypeError as exc:  # e.g. a constructor that needs arguments
            raise ValueError(f"{spec}: the channel class cannot be built without arguments ({exc}); give an instance "
                             f"instead (e.g. {attr.lower()} = {attr}(...) in the module, then --channel ...:{attr.lower()})") from None
    if not isinstance(obj, Channel):
        raise ValueError(f"{spec} is not a commsim Channel (an instance or subclass of commsim.channels.Channel)")
    return obj
