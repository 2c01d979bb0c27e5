"""Source -> Encoder -> Channel -> Decoder, and Monte Carlo evaluation with confidence intervals.

Example::

    from commsim import Pipeline, load_dataset, get_channel, load_codec
    source = load_dataset("mnist")
    codec = load_codec("necst", dataset="mnist", bits=100, eps=0.1)
    result = Pipeline(source, codec, get_channel("bsc")).evaluate(eps=0.1, seed=0)
    print(result.metrics["l2_per_image"])
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from commsim.core import metrics as M
from commsim.channels.base import Channel
from commsim.core.codec import Codec
from commsim.data.sources import ImageSource
from commsim.core.device import make_generator


@dataclass
class EvalResult:
    """Metrics of one evaluation (each an :class:`~commsim.core.metrics.Estimate`) and its bookkeeping."""

    metrics: dict[str, M.Estimate]
    images: int
    bits: int
    seconds: float
    seed: int
    split: str
    params: dict = field(default_factory=dict)
    per_image: dict[str, torch.Tensor] = field(default_factory=dict)
    """The per-image values behind the image-averaged metrics (``l2_per_image``, ``mse_per_pixel``, and
    ``bce_per_pixel`` on binary data), each ``[images]`` float on the CPU in the split's order: for paired
    comparisons of two codecs evaluated with the same seed (the same channel and sampling draws)."""

    def row(self) -> dict:
        """A flat dict (one tidy-CSV row) of all metrics with their intervals and counts."""
        out = {}
        for name, est in self.metrics.items():
            out.update(est.as_dict(name))
        return out

    def table(self, labels: dict[str, str], metric: str) -> list[str]:
        """Three lines for a terminal: a header, the values (``labels`` first, e.g. codec and channel,
        then ``metric`` with its 95 % interval, PSNR, BER, failures where flagged, images) and a legend."""
        m = self.metrics
        cells = {**labels, metric: f"{m[metric].mean:.4f} [{m[metric].low:.4f}, {m[metric].high:.4f}]",
                 "psnr_db": f"{m['psnr_db'].mean:.2f}", "ber": f"{m['ber'].mean:.4f}"}
        if "failure_rate" in m:
            cells["failures"] = f"{m['failure_rate'].mean:.3f}"
        cells["images"] = str(self.images)
        widths = {k: max(len(k), len(v)) for k, v in cells.items()}
        return ["  ".join(k.ljust(widths[k]) for k in cells), "  ".join(v.ljust(widths[k]) for k, v in cells.items()),
                f"[low, high]: 95 % confidence interval of the mean {metric} over the {self.images} test images"]


class Link(NamedTuple):
    """One batch through the link: ``bits [B, m]`` sent, ``llr [B, m]`` received, ``x_hat [B, C, H, W]``,
    ``failures [B]`` bool (frames the codec knows it lost) and ``logits [B, C, H, W]`` (codecs with
    ``has_logits``, else ``None``)."""

    bits: torch.Tensor
    llr: torch.Tensor
    x_hat: torch.Tensor
    failures: torch.Tensor
    logits: torch.Tensor | None


class Pipeline(torch.nn.Module):
    """Composes a source, a codec (encoder + decoder) and a channel.

    ``pipeline(x, generator=None, **params) -> (x_hat, llr, bits)`` for one batch ``x [B, C, H, W]``
    (Sionna style: ``Pipeline(source, codec, channel)(x, eps=0.1)``);
    ``link(x, generator, **params)`` also returns the failures (:class:`Link`);
    ``evaluate(split, seed, **params) -> EvalResult`` over a whole split.
    """

    def __init__(self, source: ImageSource, codec: Codec, channel: Channel):
        super().__init__()
        if tuple(source.image_shape) != tuple(codec.image_shape):
            raise ValueError(f"codec expects images {list(codec.image_shape)} but data set {source.name!r} has {list(source.image_shape)}")
        self.source = source
        self.codec = codec
        self.channel = channel

    @property
    def device(self) -> torch.device:
        """Where the codec's weights (or, for separated codecs, its tables) are: where batches go."""
        return _device_of(self.codec)

    def link(self, x: torch.Tensor, generator: torch.Generator | None = None, **params) -> Link:
        """Encode ``x``, send the bits through the channel and decode; the decoder gets ``x`` and
        ``generator`` too (the genie: only ideal-code references read them, see :mod:`commsim.core.codec`)."""
        bits = self.codec.encode(x, generator)
        llr = self.channel(bits, generator, **params)
        if self.codec.has_logits:
            logits = self.codec.decode_logits(llr)
            return Link(bits, llr, torch.sigmoid(logits), self.codec.no_failures(llr), logits)
        x_hat, failures = self.codec.decode(llr, x=x, generator=generator)
        return Link(bits, llr, x_hat, failures, None)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, **params):
        """``x [B, C, H, W]`` -> ``(x_hat [B, C, H, W], llr [B, m], bits [B, m])``."""
        out = self.link(x, generator, **params)
        return out.x_hat, out.llr, out.bits

    @torch.no_grad()
    def evaluate(self, split: str = "test", seed: int = 0, batch_size: int = 500, limit: int | None = None,
                 device: torch.device | str | None = None, **params) -> EvalResult:
        device = torch.device(device) if device is not None else self.device
        was_training = self.codec.training
        self.codec.eval()
        generator = make_generator(seed, device)
        data_generator = make_generator(seed)  # CPU: dynamic binarization of the split
        start = time.perf_counter()
        l2, mse, bce, failures = [], [], [], []
        errors, nbits = 0.0, 0
        for x, _ in self.source.batches(split, batch_size, generator=data_generator, limit=limit):
            x = x.to(device)
            out = self.link(x, generator, **params)
            if self.source.binary:
                bce.append(M.bce_per_pixel(x, out.logits) if out.logits is not None else M.bce_per_pixel_from_probs(x, out.x_hat))
            l2.append(M.l2_per_image(x, out.x_hat))
            mse.append(M.mse_per_pixel(x, out.x_hat))
            failures.append(out.failures.float())
            errors += M.bit_errors(out.bits, out.llr)
            nbits += out.bits.numel()
        self.codec.train(was_training)
        per_image = {"l2_per_image": torch.cat(l2).cpu(), "mse_per_pixel": torch.cat(mse).cpu()}
        if self.source.binary:
            per_image["bce_per_pixel"] = torch.cat(bce).cpu()
        mse_est = M.mean_ci(per_image["mse_per_pixel"])
        metrics = {"l2_per_image": M.mean_ci(per_image["l2_per_image"]), "mse_per_pixel": mse_est,
                   "psnr_db": M.psnr_from_mse(mse_est)}
        if self.source.binary:
            metrics["bce_per_pixel"] = M.mean_ci(per_image["bce_per_pixel"])
        metrics["ber"] = M.binomial_ci(errors, nbits)
        if self.codec.flags_failures:
            fails = torch.cat(failures)
            metrics["failure_rate"] = M.binomial_ci(float(fails.sum()), fails.numel())
        return EvalResult(metrics, images=mse_est.count, bits=nbits, seconds=time.perf_counter() - start,
                          seed=seed, split=split, params={k: _plain(v) for k, v in params.items()}, per_image=per_image)


def _device_of(codec: Codec) -> torch.device:
    """Where the codec's weights (or, for separated codecs, its tables) are; the CPU if it has none."""
    tensor = next(itertools.chain(codec.parameters(), codec.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _plain(value):
    return value.tolist() if isinstance(value, torch.Tensor) else value


def distortion_metric(source: ImageSource) -> str:
    """The headline distortion of a data set: ``bce_per_pixel`` for binary data, else ``l2_per_image``."""
    return "bce_per_pixel" if source.binary else "l2_per_image"
