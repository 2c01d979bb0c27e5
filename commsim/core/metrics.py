"""Distortion and error metrics, each reported with its count and a 95 % confidence interval.

Per-image metrics take ``x`` and ``x_hat`` as ``[B, C, H, W]`` in [0, 1] and return ``[B]``:

- ``l2_per_image``: squared error summed over all pixels (and colour channels), the number the
  NECST / IABF papers report for MNIST, Omniglot and CIFAR-10.
- ``bce_per_pixel``: Bernoulli cross-entropy in nats averaged over the pixels of an image (what the
  papers' BinaryMNIST column is).
- ``mse_per_pixel``: squared error averaged over pixels.

``psnr_db`` is computed from the mean of ``mse_per_pixel`` (peak 1.0), its interval from the MSE's.
The bit error rate counts hard decisions of the channel LLRs against the sent bits, an erasure as
half an error.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import special  # the t and beta quantiles of scipy.stats, without its import (~0.9 s a process)

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: mean, 95 % interval [low, high] and the number of samples behind it."""

    mean: float
    low: float
    high: float
    count: int

    def __str__(self) -> str:
        half = (self.high - self.low) / 2
        return f"{self.mean:.4g} ± {half:.2g}"

    def as_dict(self, prefix: str) -> dict:
        return {f"{prefix}{'' if not k or k == 'mean' else '_' + k}": v for k, v in asdict(self).items()}


def mean_ci(values: np.ndarray | torch.Tensor) -> Estimate:
    """Mean of i.i.d. samples with a Student-t 95 % interval."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64).ravel()
    n = v.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    half = float(special.stdtrit(n - 1, 0.5 + CONFIDENCE / 2) * v.std(ddof=1) / math.sqrt(n))  # t quantile
    return Estimate(mean, mean - half, mean + half, n)


def binomial_ci(errors: float, trials: int) -> Estimate:
    """A rate with its Clopper–Pearson 95 % interval (``errors`` may be fractional: rounded for the CI)."""
    if trials == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    k = int(round(errors))
    alpha = 1 - CONFIDENCE
    low = 0.0 if k == 0 else float(special.betaincinv(k, trials - k + 1, alpha / 2))  # beta quantiles
    high = 1.0 if k == trials else float(special.betaincinv(k + 1, trials - k, 1 - alpha / 2))
    return Estimate(errors / trials, low, high, trials)


def l2_per_image(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).pow(2).flatten(1).sum(1)


def mse_per_pixel(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).pow(2).flatten(1).mean(1)


def bce_per_pixel(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in nats per pixel from Bernoulli logits (exact for learned binary decoders)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1)


def bce_per_pixel_from_probs(x: torch.Tensor, x_hat: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """Cross-entropy per pixel for decoders that give probabilities, clamped to [floor, 1 - floor]."""
    p = x_hat.clamp(floor, 1 - floor)
    return F.binary_cross_entropy(p, x, reduction="none").flatten(1).mean(1)


def psnr_from_mse(mse: Estimate) -> Estimate:
    def db(v: float) -> float:
        return math.inf if v <= 0 else -10.0 * math.log10(v)

    return Estimate(db(mse.mean), db(mse.high), db(mse.low), mse.count)


def bit_errors(bits: torch.Tensor, llr: torch.Tensor) -> float:
    """Hard-decision errors of ``llr`` against ``bits``; an erasure (llr == 0) counts as half."""
    decided = (llr > 0).to(bits.dtype)
    wrong = (decided != bits).to(torch.float64)
    wrong = torch.where(llr == 0, torch.full_like(wrong, 0.5), wrong)
    return float(wrong.sum())


METRICS = ("l2_per_image", "bce_per_pixel", "mse_per_pixel", "psnr_db", "ber", "failure_rate")
"""Every metric an evaluation can report (``failure_rate`` only for codecs that flag failed frames),
in the order of the sweep CSV's columns."""
