"""Random draws for one training or for a stack of members (:mod:`commsim.learned.ensemble`).

The objectives draw their uniforms through :func:`uniform`: with a plain ``torch.Generator`` it is
``torch.rand(shape)``, exactly as before; with :class:`MemberGenerators` (one generator per member of
an ensemble) it stacks each member's ``torch.rand(shape)`` into ``[N, *shape]``, so member n draws
exactly the numbers, in the same order, that a single training with its own generator draws.
"""
from __future__ import annotations

from typing import Sequence

import torch


class MemberGenerators(tuple):
    """One ``torch.Generator`` per member of an ensemble, in member order."""

    def __new__(cls, generators: Sequence[torch.Generator]):
        generators = tuple(generators)
        if not generators or not all(isinstance(g, torch.Generator) for g in generators):
            raise ValueError("MemberGenerators takes one torch.Generator per member (at least one)")
        return super().__new__(cls, generators)

    def select(self, keep: Sequence[int]) -> "MemberGenerators":
        """The generators of the members ``keep`` (e.g. those still training)."""
        return MemberGenerators([self[i] for i in keep])


def uniform(shape, generator: torch.Generator | MemberGenerators | None, device=None,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniforms in [0, 1): ``[*shape]`` from a generator (or torch's default one for ``None``), or
    ``[N, *shape]`` from :class:`MemberGenerators` (member n's rows from its own generator)."""
    if isinstance(generator, MemberGenerators):
        return torch.stack([torch.rand(shape, generator=g, device=device, dtype=dtype) for g in generator])
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


__all__ = ["MemberGenerators", "uniform"]
