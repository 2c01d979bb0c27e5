"""Decorator registries: the names by which the Python API finds codecs, channels, data sets, ...

Example::

    from commsim.core.registry import register_channel

    @register_channel("my_channel")
    class MyChannel(Channel): ...

The registries are the truth, but the CLI does not import them to list names or build its options
(that would import torch and every block): ``commsim list``, ``--help`` and the CLI's choices read
the generated catalog (:mod:`commsim.core.catalog`, ``catalog.json``), which a test checks against
the registries. A block added to commsim needs no CLI edit, only ``commsim catalog --write`` to
regenerate the catalog.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator


def plain_text(doc: str) -> str:
    """The first line of a docstring without reStructuredText markup (````x````, ```x```, ``:role:`x```)."""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    line = re.sub(r":\w+:`([^`]*)`", r"\1", line)
    return re.sub(r"`{1,2}([^`]*)`{1,2}", r"\1", line)


class UnknownNameError(ValueError):
    """A name that no registry entry carries (a ``ValueError``, so callers can catch either)."""


class Registry:
    """A name -> factory map with a decorator to fill it.

    ``kind`` is the singular noun used in error messages ("codec", "channel", "data set").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._docs: dict[str, str] = {}
        self._composers: list[Callable[[str], Any]] = []

    def compose(self, composer: Callable[[str], Any]) -> Callable[[str], Any]:
        """Add ``composer(name) -> entry | None``, asked for names that are not registered: entries made
        of parts registered elsewhere (``SOURCE+FAMILY``, so a channel-code family registered after
        import is a codec with every source code at once). A composed entry is registered when made."""
        self._composers.append(composer)
        return composer

    def _composed(self, name: str) -> Any:
        for composer in self._composers:
            made = composer(name)
            if made is not None:
                self.register(name, doc=getattr(made, "description", None))(made)
                return made
        return None

    def register(self, name: str, doc: str | None = None) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            text = doc if doc is not None else (obj.__doc__ or "")
            self._docs[name] = plain_text(text)
            return obj

        return decorator

    def get(self, name: str) -> Any:
        try:
            return self._entries[name]
        except KeyError:
            made = self._composed(name) if isinstance(name, str) else None
            if made is not None:
                return made
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())} "
                f"(see `commsim list`)"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        return self._docs.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._entries or (isinstance(name, str) and self._composed(name) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


CODECS = Registry("codec")
CHANNELS = Registry("channel")
DATASETS = Registry("data set")

register_codec = CODECS.register
register_channel = CHANNELS.register
register_dataset = DATASETS.register
