"""Information-theoretic reference curves for the distortion-vs-channel-bits plots.

None of these is a lower bound on distortion. A true bound would come from the data's
rate-distortion function ``D(R)`` evaluated at ``R = m C`` (the source-channel separation theorem in
its converse form); we do not have ``D(R)`` of MNIST or any image set, only codes that achieve some
points above it. What this module gives:

- :func:`zero_information_l2`: the distortion of the training-mean image on the test split -- what
  any scheme reaches with no information at all; a scheme worse than it is broken.
- :func:`capacity_bits`: ``m C``, the most information ``m`` uses of the channel can carry with
  vanishing error as blocks grow (``C`` from :func:`commsim.fec.capacity`).
- :func:`normal_approximation_bits`: the finite-blocklength refinement (Polyanskiy, Poor, Verdu
  2010) of the information an ``m``-bit code can carry at frame error rate ``p_error`` -- an
  approximation, neither an upper nor a lower bound.
- :func:`vq_proxy_l2`: the test distortion of the ``vq`` source code at ``k = floor(m C)`` bits
  delivered without error, a practical proxy of "the best separated scheme": a 2^k-word VQ is the
  optimal fixed-rate quantiser in the limit of its training, but above 12 bits our ``vq`` is
  residual VQ (see :mod:`commsim.source_codes.vq`), which is weaker. ``pca`` at the same ``k``
  is often better; :func:`source_proxy_l2` gives either.

Example::

    from commsim import load_dataset
    from commsim.bounds import reference_row
    print(reference_row(load_dataset("mnist"), m=100, eps=0.1))
"""
from __future__ import annotations

import math

import numpy as np
import torch

from commsim.core import metrics as M
from commsim.fec import capacity, normal_approximation_bits as _normal_bits
from commsim.data.sources import ImageSource
from commsim.core.device import make_generator
from commsim.source_codes import get_source_code


def zero_information_l2(source: ImageSource, split: str = "test", limit: int | None = None, seed: int = 0) -> M.Estimate:
    """``l2_per_image`` of the training-mean image on ``split`` (with its 95 % interval)."""
    x, _ = source.tensors(split, make_generator(seed))
    x = x if limit is None else x[:limit]
    return M.mean_ci(M.l2_per_image(x, source.mean_image().expand_as(x)))


def capacity_bits(m: int, channel: str = "bsc", **params) -> float:
    """``m C``: channel bits times the capacity in bits per use, e.g. ``capacity_bits(100, eps=0.1)``."""
    return float(m) * capacity(channel, **params)


def normal_approximation_bits(m: int, eps: float, p_error: float = 1e-3, channel: str = "bsc") -> int:
    """Information bits of the best ``m``-bit code at frame error rate ``p_error`` by the normal
    approximation (BSC and BEC), floored."""
    return _normal_bits(m, eps, p_error, channel)


def source_proxy_l2(source: ImageSource, k: int, code: str = "vq", split: str = "test", limit: int | None = None,
                    seed: int = 0, **options) -> M.Estimate:
    """Test ``l2_per_image`` of a source code at ``k`` bits without channel errors."""
    x, _ = source.tensors(split, make_generator(seed))
    x = (x if limit is None else x[:limit]).numpy().astype(np.float32)
    if k < 1:
        return M.mean_ci(M.l2_per_image(torch.from_numpy(x), source.mean_image().expand(len(x), *x.shape[1:])))
    sc = get_source_code(code, source.image_shape, seed=seed, **options).fit(source)
    bits, _ = sc.encode_batch(x, k)
    x_hat, _ = sc.decode_batch(bits)
    return M.mean_ci(M.l2_per_image(torch.from_numpy(x), torch.from_numpy(x_hat)))


def vq_proxy_l2(source: ImageSource, m: int, channel: str = "bsc", split: str = "test", limit: int | None = None,
                seed: int = 0, **params) -> tuple[int, M.Estimate]:
    """``(k, l2)``: the ``vq`` code at ``k = floor(m C)`` bits, delivered error-free, on ``split``."""
    k = int(math.floor(capacity_bits(m, channel, **params) + 1e-9))
    return k, source_proxy_l2(source, k, "vq", split, limit, seed)


def reference_row(source: ImageSource, m: int, eps: float, channel: str = "bsc", p_error: float = 1e-3,
                  limit: int | None = None, seed: int = 0, proxies: tuple[str, ...] = ("vq", "pca")) -> dict:
    """One row of reference numbers for ``m`` channel bits at ``eps``: ``m C``, the normal
    approximation, the zero-information distortion and the proxies' distortion at ``floor(m C)`` bits."""
    cap = capacity_bits(m, channel, eps=eps)
    k = int(math.floor(cap + 1e-9))
    zero = zero_information_l2(source, limit=limit, seed=seed)
    row = {"m": m, "eps": eps, "channel": channel, "capacity_bits": cap, "k_capacity": k,
           "normal_approx_bits": normal_approximation_bits(m, eps, p_error, channel) if channel in ("bsc", "bec") else None,
           "p_error": p_error, "zero_info_l2": zero.mean, "zero_info_l2_low": zero.low, "zero_info_l2_high": zero.high}
    for name in proxies:
        est = source_proxy_l2(source, k, name, limit=limit, seed=seed)
        row.update({f"{name}_at_capacity_l2": est.mean, f"{name}_at_capacity_l2_low": est.low,
                    f"{name}_at_capacity_l2_high": est.high})
    row["images"] = zero.count
    return row
