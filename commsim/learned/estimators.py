"""Gradient estimators for a code of Bernoulli bits sent through a simulated BSC.

The encoder gives per-bit probabilities of *receiving* a 1, ``q [B, m]`` (the BSC folded into the
sampling, ``q = sigmoid(l)(1 - 2 eps) + eps``); the decoder sees K received codes ``y [K, B, m]``.
The loss to minimise is a function of the per-sample, per-image reconstruction losses ``L [K, B]``.

- ``"vimco"``: hard ``y ~ Bernoulli(q)``, no gradient through ``y``; the encoder learns through the
  score function with VIMCO's leave-one-out baselines (:mod:`commsim.learned.vimco`), K = 5 by default.
- ``"st"``: the Bernoulli straight-through estimator (Seo, Kim & Kang, JCN 2022): hard
  ``y ~ Bernoulli(q)`` in the forward pass, ``y + q - q.detach()`` so that the backward pass treats
  ``dy/dq = 1``, a pathwise gradient; one decoder pass (K = 1) by default. The gradient flows into the
  *received* soft codeword ``q`` (their "soft codeword"), so the encoder sees the factor
  ``(1 - 2 eps)`` of the channel but not the sign of each individual flip. (Two other forms were tried
  and dropped, see ``benchmarks/results/estimators.md``: straight-through on the sent bit, flipped by
  the sampled channel noise, ``y = b (1 - 2 f) + f``, and feeding the decoder ``q`` itself.)
- ``"gumbel"``: the relaxed Bernoulli (binary Concrete / Gumbel-sigmoid, Maddison et al. and Jang et
  al. 2017) of the received bit, ``sigmoid((logit q + logit u) / temperature)`` with
  ``u ~ U(0, 1)``, hard (``logit q + logit u > 0``, exactly a Bernoulli(q) draw) in the forward pass
  with the relaxed sample's gradient (straight-through Gumbel), so the decoder trains on the {0, 1}
  codes it sees at test time.

All randomness draws from the ``generator`` passed in. Over a training channel other than the BSC
(:mod:`commsim.learned.necst`), ``q`` is the encoder's own ``sigmoid(l)``: the same draws give the
*sent* bits, which then cross the channel block.
"""
from __future__ import annotations

import torch

from commsim.core.choices import choice
from commsim.learned.members import uniform

ESTIMATORS = ("vimco", "st", "gumbel")
PATHWISE = ("st", "gumbel")


Estimator = choice("Estimator", "estimator", ESTIMATORS, __name__)
"""The gradient estimators as a :class:`~commsim.core.choices.Choice` (``Estimator.parse("st")``)."""


def bernoulli_draws(q: torch.Tensor, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """Hard draws ``y [K, B, m]`` in {0, 1} of ``Bernoulli(q)``, ``q [B, m]``, no gradient (an ensemble's
    ``q [N, B, m]`` with :class:`~commsim.learned.members.MemberGenerators`: ``y [N, K, B, m]``)."""
    u = uniform((samples, *q.shape[-2:]), generator, q.device, q.dtype)
    return (u < q.detach().unsqueeze(-3)).to(q.dtype)


def straight_through(q: torch.Tensor, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """``y [K, B, m]``: ``Bernoulli(q)`` draws forward, gradient of ``q`` backward (dy/dq = 1)."""
    return bernoulli_draws(q, samples, generator) + (q - q.detach()).unsqueeze(-3)


def gumbel_sigmoid(q: torch.Tensor, samples: int, generator: torch.Generator | None, temperature: float,
                   floor: float = 1e-7) -> torch.Tensor:
    """``y [K, B, m]``: hard Bernoulli(q) forward, gradient of the relaxed Bernoulli at ``temperature``."""
    u = uniform((samples, *q.shape[-2:]), generator, q.device, q.dtype).clamp(floor, 1 - floor)
    p = q.clamp(floor, 1 - floor).unsqueeze(-3)
    score = torch.log(p) - torch.log1p(-p) + torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid(score / temperature)
    return (score.detach() > 0).to(q.dtype) + (soft - soft.detach())


def pathwise_codes(estimator: str, q: torch.Tensor, samples: int, generator: torch.Generator | None,
                   temperature: float) -> torch.Tensor:
    """Received codes ``[K, B, m]`` carrying a pathwise gradient to ``q`` (``"st"`` or ``"gumbel"``)."""
    if estimator == "st":
        return straight_through(q, samples, generator)
    if estimator == "gumbel":
        return gumbel_sigmoid(q, samples, generator, temperature)
    raise ValueError(f"estimator {estimator!r} has no pathwise codes; choose one of {', '.join(PATHWISE)}")
