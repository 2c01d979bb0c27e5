"""VIMCO (Mnih & Rezende, 2016) for a code of Bernoulli bits, as the NECST reference uses it.

For one image and K codes ``y_k ~ q(y | x)`` with per-sample losses ``L_k`` (to minimise), the
multi-sample objective is

    ``J = log (1/K) sum_k exp(L_k)``  (>= mean_k L_k, so minimising J minimises an upper bound),

which is what the reference code optimises (it feeds the positive reconstruction loss to its VIMCO
bound). The decoder gets the pathwise gradient ``dJ = sum_k w_k dL_k`` with ``w = softmax(L)``; the
encoder gets the score-function gradient ``sum_k (J - J_{-k}) d log q(y_k)``, where the leave-one-out
baseline ``J_{-k}`` replaces ``L_k`` inside J by the mean of the other samples' losses.
"""
from __future__ import annotations

import math

import torch


def vimco_terms(losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``losses [K, B]`` -> ``(J [B], learning_signal [K, B], weights [K, B])``.

    ``learning_signal = J - J_{-k}`` and ``weights = softmax_k(L)`` are detached.
    """
    k = losses.shape[0]
    if k < 2:
        raise ValueError(f"VIMCO needs at least 2 samples, got {k}")
    log_k = math.log(k)
    bound = torch.logsumexp(losses, 0) - log_k
    detached = losses.detach()
    others_mean = (detached.sum(0, keepdim=True) - detached) / (k - 1)
    # replaced[k, j] = L_j for j != k, mean of the others for j == k
    eye = torch.eye(k, dtype=torch.bool, device=losses.device).unsqueeze(-1)
    replaced = torch.where(eye, others_mean.unsqueeze(1), detached.unsqueeze(0))
    leave_one_out = torch.logsumexp(replaced, 1) - log_k
    signal = (bound.detach().unsqueeze(0) - leave_one_out).detach()
    weights = torch.softmax(detached, 0)
    return bound, signal, weights


def vimco_surrogate(losses: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A scalar whose gradient is VIMCO's (averaged over the batch), and the bound J ``[B]``.

    ``losses [K, B]`` carry the decoder's graph; ``log_q [K, B]`` = sum over bits of
    ``log q(y_k | x)``, carrying the encoder's graph.
    """
    bound, signal, weights = vimco_terms(losses)
    surrogate = (signal * log_q).sum(0) + (weights * losses).sum(0)
    return surrogate.mean(), bound.detach()


def bernoulli_log_prob(y: torch.Tensor, probs: torch.Tensor, floor: float = 1e-7) -> torch.Tensor:
    """``sum over bits of log Bern(y; probs)``: ``y [K, B, m]``, ``probs [B, m]`` -> ``[K, B]``."""
    p = probs.clamp(floor, 1 - floor)
    return (y * torch.log(p) + (1 - y) * torch.log1p(-p)).sum(-1)
