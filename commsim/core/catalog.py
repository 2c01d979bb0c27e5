"""A generated list of the registered names and their one-line descriptions (``catalog.json``).

``commsim --help``, ``commsim list`` and the CLI's choices read it instead of importing every
block (and torch), so they start in a fraction of a second. The registries stay the truth: a test
checks that the file equals what they hold; after adding a block to commsim, regenerate it with the
developers' (hidden) command ``commsim catalog --write`` (``commsim catalog`` alone only checks it).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("catalog.json")
SECTIONS = ("codecs", "source_codes", "channel_codes", "channels", "datasets")
"""Registries listed by ``commsim list``; the catalog also holds ``"choices"`` (recipes, estimators,
devices) and ``"defaults"`` (training budget, recipe, estimator) for the CLI's options."""
TITLES = {"codecs": "codecs", "channels": "channels", "datasets": "data sets",
          "source_codes": "source codes (SOURCE of a SOURCE+CODE separated codec)",
          "channel_codes": "channel codes (CODE of a SOURCE+CODE separated codec)"}
SEPARATED_LINE = ("SOURCE+CODE", "separated codec: any source code and channel code below, e.g. jpeg+ldpc "
                                 "(rate chosen on validation)")
"""How ``commsim list`` shows the separated codecs: one line instead of every pair."""


@lru_cache(maxsize=1)
def load() -> dict[str, dict[str, str]]:
    """The catalog as written in ``catalog.json`` (fast)."""
    return json.loads(CATALOG_FILE.read_text())


def names(section: str) -> list[str]:
    """Registered names of a section, or the choices of ``"recipes"`` / ``"estimators"`` / ``"devices"``."""
    catalog = load()
    return list(catalog[section] if section in catalog else catalog["choices"][section])


def default(name: str):
    """A default of the training options: ``"epochs"``, ``"recipe"``, ``"estimator"``."""
    return load()["defaults"][name]
