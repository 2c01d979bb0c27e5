"""VIMCO (Mnih & Rezende, 2016) for a code of Bernoulli bits, in two forms.

For one image and K codes ``y_k ~ q(y | x)`` with per-sample losses ``L_k`` (to minimise):

- ``"paper"`` (the default; eq. 31 of Song et al., AAAI 2020, the multi-sample bound with the
  loss as a negative log-likelihood): ``J = -log (1/K) sum_k exp(-L_k)`` (<= mean_k L_k). The
  decoder gradient weights the samples by ``softmax(-L)``: the *best* samples count most.
- ``"official"`` (what the NECST / IABF reference code optimises: it feeds the positive
  reconstruction loss to its VIMCO bound): ``J = log (1/K) sum_k exp(L_k)`` (>= mean_k L_k), weights
  ``softmax(L)``: the *worst* samples count most.

Either way the decoder gets the pathwise gradient ``dJ = sum_k w_k dL_k`` and the encoder the
score-function gradient ``sum_k (J - J_{-k}) d log q(y_k)``, where the leave-one-out baseline
``J_{-k}`` replaces ``L_k`` inside J by the mean of the other samples' losses.
"""
from __future__ import annotations

import math

import torch

from commsim.core.choices import choice

VIMCO_FORMS = ("paper", "official")


VimcoForm = choice("VimcoForm", "VIMCO form", VIMCO_FORMS, __name__)
"""The VIMCO forms as a :class:`~commsim.core.choices.Choice`."""


def _log_mean_exp_terms(losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``"official"`` terms: ``J = log mean_k exp(L_k)``, ``J - J_{-k}`` and ``softmax(L)`` (K at axis -2)."""
    k = losses.shape[-2]
    if k < 2:
        raise ValueError(f"VIMCO needs at least 2 samples, got {k}")
    log_k = math.log(k)
    bound = torch.logsumexp(losses, -2) - log_k
    detached = losses.detach()
    others_mean = (detached.sum(-2, keepdim=True) - detached) / (k - 1)
    # replaced[k, j] = L_j for j != k, mean of the others for j == k
    eye = torch.eye(k, dtype=torch.bool, device=losses.device).unsqueeze(-1)
    replaced = torch.where(eye, others_mean.unsqueeze(-2), detached.unsqueeze(-3))
    leave_one_out = torch.logsumexp(replaced, -2) - log_k
    signal = (bound.detach().unsqueeze(-2) - leave_one_out).detach()
    weights = torch.softmax(detached, -2)
    return bound, signal, weights


def vimco_terms(losses: torch.Tensor, form: str = "paper") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``losses [K, B]`` -> ``(J [B], learning_signal [K, B], weights [K, B])`` of the given form
    (an ensemble's ``[N, K, B]`` -> ``[N, B]``, ``[N, K, B]``, ``[N, K, B]``).

    ``learning_signal = J - J_{-k}`` and ``weights = dJ / dL`` are detached. The ``"paper"`` form is
    the ``"official"`` one applied to ``-L`` and negated: ``J = -f(-L)`` with ``f = log mean exp``
    (the leave-one-out mean is linear, so the baselines transform the same way).
    """
    if VimcoForm.parse(form) == "official":
        return _log_mean_exp_terms(losses)
    bound, signal, weights = _log_mean_exp_terms(-losses)
    return -bound, -signal, weights


def vimco_surrogate(losses: torch.Tensor, log_q: torch.Tensor, form: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """A scalar whose gradient is VIMCO's (averaged over the batch), and the bound J ``[B]``.

    ``losses [K, B]`` carry the decoder's graph; ``log_q [K, B]`` = sum over bits of
    ``log q(y_k | x)``, carrying the encoder's graph. An ensemble's ``[N, K, B]`` give one scalar
    per member, ``[N]``, and ``J [N, B]``.
    """
    bound, signal, weights = vimco_terms(losses, form)
    surrogate = (signal * log_q).sum(-2) + (weights * losses).sum(-2)
    return surrogate.mean(-1), bound.detach()


def bernoulli_log_prob(y: torch.Tensor, probs: torch.Tensor, floor: float = 1e-7) -> torch.Tensor:
    """``sum over bits of log Bern(y; probs)``: ``y [K, B, m]``, ``probs [B, m]`` -> ``[K, B]`` (or with a
    leading member axis: ``[N, K, B, m]``, ``[N, B, m]`` -> ``[N, K, B]``)."""
    p = probs.clamp(floor, 1 - floor).unsqueeze(-3)
    return (y * torch.log(p) + (1 - y) * torch.log1p(-p)).sum(-1)
