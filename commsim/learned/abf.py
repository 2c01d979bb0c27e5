"""ABF — adversarial bit flip (Song et al., AAAI 2020, eqs. 23–26 and 30).

Training noise is concentrated on the bits whose flip hurts the decoder most:

1. sample a clean code ``y ~ Bernoulli(sigmoid(l))``, decode it and take ``g = dL/dy`` of the
   per-image reconstruction loss ``L`` with ``y`` treated as a real vector;
2. per-bit levels ``eps_i`` proportional to ``|g_i|``, scaled so that ``sum_i eps_i = m * eps``
   with ``0 <= eps_i <= 1`` (water-filling: bits that saturate at 1 hand the remainder to the others);
3. mask ``m_i = 1`` only where flipping bit i increases the loss to first order
   (``y_i = 0`` and ``g_i > 0``, or ``y_i = 1`` and ``g_i < 0``); ``eps*_i = eps_i m_i``;
4. NECST's loss and gradient estimator (VIMCO, straight-through or Gumbel) under
   ``q_i = sigmoid(l_i) (1 - 2 eps*_i) + eps*_i``.

The gradient pass (step 1) uses ``torch.autograd.grad`` with respect to ``y`` only, on a detached
copy of the logits, so it neither accumulates parameter gradients nor enters the update; ``eps*`` is
a constant of the estimator's step. Choices the paper leaves open: the clean code is one fresh sample per
image (independent of the estimator's samples); the allocation is made over all m bits before masking,
so the masked total is at most ``m * eps``, as eq. 30 states.

ABF (and IABF) train over the BSC only: their adversarial noise *is* a BSC's flips at per-bit
levels, so another training channel is refused with an error rather than stacked under the flips.
"""
from __future__ import annotations

import torch

from commsim.learned.codec import LearnedCodec
from commsim.learned.members import uniform
from commsim.learned.necst import NECSTObjective


def allocate_levels(weights: torch.Tensor, budget: torch.Tensor | float, iterations: int = 64) -> torch.Tensor:
    """Levels ``[..., B, m]`` in [0, 1] proportional to ``weights [..., B, m] >= 0`` that sum to ``budget`` per row.

    Water-filling: saturated entries are fixed at 1 and the rest of the budget is shared among the
    others in proportion to their weights. Rows with all-zero weights share the budget uniformly.
    ``budget`` (a number, or a tensor broadcastable to ``[..., B, 1]``, e.g. an ensemble's ``[N, 1, 1]``)
    must be at most m.
    """
    m = weights.shape[-1]
    budget = torch.as_tensor(budget, dtype=weights.dtype, device=weights.device).expand(*weights.shape[:-1], 1).clone()
    if bool((budget > m + 1e-6).any()) or bool((budget < 0).any()):
        raise ValueError(f"budget must be in [0, {m}]")
    weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights))
    saturated = torch.zeros_like(weights, dtype=torch.bool)
    for _ in range(iterations):
        free = torch.where(saturated, torch.zeros_like(weights), weights)
        remainder = (budget - saturated.sum(-1, keepdim=True)).clamp_min(0)
        scale = remainder / free.sum(-1, keepdim=True).clamp_min(1e-30)
        levels = torch.where(saturated, torch.ones_like(weights), free * scale)
        newly = levels > 1
        if not bool(newly.any()):
            return levels
        saturated |= newly
    return levels.clamp(0, 1)


def flip_mask(y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """1 where flipping the bit raises the loss to first order: ``(y=0, g>0)`` or ``(y=1, g<0)``."""
    return (((y == 0) & (grad > 0)) | ((y == 1) & (grad < 0))).to(grad.dtype)


def adversarial_levels(y: torch.Tensor, grad: torch.Tensor, eps) -> torch.Tensor:
    """``eps*_i = eps_i m_i``: gradient-proportional levels summing to ``m * eps``, masked (``eps`` a
    number, or an ensemble's per-member tensor ``[N, 1, 1]``)."""
    levels = allocate_levels(grad.abs(), y.shape[-1] * (eps if torch.is_tensor(eps) else float(eps)))
    return levels * flip_mask(y, grad)


class ABFObjective(NECSTObjective):
    """NECST's loss under adversarial per-bit noise levels instead of a uniform eps (BSC only)."""

    folds_bsc_only = True

    def noise_levels(self, codec: LearnedCodec, x, logits, eps, generator):
        probs = torch.sigmoid(logits.detach())
        y = (uniform(probs.shape[-2:], generator, probs.device) < probs).to(probs.dtype)
        with torch.enable_grad():
            y = y.requires_grad_(True)
            loss = codec.reconstruction_loss(x, codec.pixel_logits(y)).sum()
            (grad,) = torch.autograd.grad(loss, y)
        return adversarial_levels(y.detach(), grad, eps)


class ABF(LearnedCodec):
    """ABF: NECST networks trained with adversarial bit flips (gradient-proportional, masked noise)."""

    name = "abf"
    objective_class = ABFObjective
