"""The channel contract.

Every channel is a ``torch.nn.Module`` with binary input and one output representation shared by all
decoders in commsim: **log-likelihood ratios in the logit convention**

    ``llr = log P(b = 1 | r) / P(b = 0 | r)``  (uniform prior on b)

so ``sigmoid(llr)`` is the posterior probability of a 1, ``llr > 0`` decides 1, ``llr < 0`` decides 0
and ``llr == 0`` is an erasure (no information). Values are finite: certainty is clipped to
``±LLR_LIMIT``. Hard-output channels (BSC, Z, Gilbert–Elliott) give ``±`` the reliability of their
nominal crossover probability; the BEC gives ``±LLR_LIMIT`` or 0; AWGN gives the exact soft LLR.

Call contract: ``channel(bits, generator=None, **params) -> llr``

- ``bits``: ``[B, m]`` floating tensor of 0/1 values.
- ``params``: the channel's parameters (e.g. ``eps``), given at call time as a float or as a tensor
  of shape ``[B]`` (one value per sample) or ``[B, m]`` (one per bit).
- ``generator``: a ``torch.Generator`` on the bits' device; all randomness is drawn from it.
- returns ``llr``: ``[B, m]`` float32.

Write a channel by subclassing :class:`Channel` (declare ``params`` and implement ``transmit``) or by
wrapping a function with :class:`LambdaChannel`.
"""
from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

LLR_LIMIT = 30.0
"""Magnitude of the LLR that stands for certainty (sigmoid(30) = 1 - 9e-14)."""


class ChannelError(ValueError):
    """A channel block whose ``transmit`` failed (raised, wrote into its input, returned NaN or a wrong
    shape): one line naming the channel; ``__cause__`` holds what it raised."""


@dataclass(frozen=True)
class Param:
    """One channel parameter: its closed range, default (``None`` = required) and meaning.

    ``better``: ``"higher"`` or ``"lower"`` if the channel gets better (fewer errors) as the parameter
    rises or falls (Eb/N0; a crossover probability up to 1/2), else ``None``; a BER simulation stops a
    curve after an error-free point only in a known direction."""

    low: float = -math.inf
    high: float = math.inf
    default: float | None = None
    doc: str = ""
    better: str | None = None


def check_bits(bits: torch.Tensor) -> torch.Tensor:
    """Validate a ``[B, m]`` floating tensor of 0/1 values; raise ``ValueError`` naming ``bits``."""
    if not isinstance(bits, torch.Tensor):
        raise ValueError(f"bits must be a torch.Tensor, got {type(bits).__name__}")
    if not bits.is_floating_point():
        raise ValueError(f"bits must be a floating tensor of 0/1 values, got dtype {bits.dtype}")
    if bits.dim() != 2:
        raise ValueError(f"bits must have shape [B, m], got {list(bits.shape)}")
    if bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
        raise ValueError("bits must contain only 0 and 1")
    return bits


def reliability(eps: torch.Tensor) -> torch.Tensor:
    """``log((1 - eps) / eps)``, the LLR magnitude of a hard bit seen through a BSC(eps), clipped."""
    eps = eps.to(torch.float32)
    return (torch.log1p(-eps) - torch.log(eps)).clamp(-LLR_LIMIT, LLR_LIMIT)


def hard_llr(received_bits: torch.Tensor, magnitude: torch.Tensor | float) -> torch.Tensor:
    """LLR of hard received bits with the given reliability: ``(2 y - 1) * magnitude``."""
    return (2.0 * received_bits - 1.0) * magnitude


def hard_decisions(llr: torch.Tensor) -> torch.Tensor:
    """Map LLRs to ``{0, 0.5, 1}``: the decided bit, with 0.5 for an erasure (``llr == 0``)."""
    return torch.where(llr == 0, torch.full_like(llr, 0.5), (llr > 0).to(llr.dtype))


class Channel(nn.Module):
    """Base class of binary-input channels. Subclasses set ``params`` and implement ``transmit``.

    ``main_param`` names the parameter that a sweep varies (``eps`` for the BSC).
    """

    params: dict[str, Param] = {}
    main_param: str | None = None

    def forward(self, bits: torch.Tensor, generator: torch.Generator | None = None, **params) -> torch.Tensor:
        """``bits [B, m]`` -> ``llr [B, m]`` float32, checked: a ``transmit`` that writes into its input
        (which would corrupt the sender's bits, and the BER counted from them) or returns NaN or
        infinite LLRs raises ``ValueError`` naming the channel. The finiteness check runs wherever it
        costs no device synchronisation inside training: always on the CPU, outside autograd on others."""
        bits = check_bits(bits)
        values = self.check_params(params, bits)
        version = bits._version
        name = getattr(self, "name", None) or type(self).__name__
        try:
            llr = self.transmit(bits, generator, **values)
        except ValueError:
            raise
        except Exception as exc:  # a user channel's bug: one line naming it (``--traceback`` shows the cause)
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise ChannelError(f"channel {name} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                               f"({frame.filename}, line {frame.lineno}); fix it (`commsim --traceback ...` shows where)") from exc
        if bits._version != version:
            raise ChannelError(f"channel {name} modified its input bits in place; compute a new tensor instead "
                             "(e.g. start transmit with bits = bits.clone())")
        if not isinstance(llr, torch.Tensor) or llr.shape != bits.shape:
            what = f"a {type(llr).__name__}" if not isinstance(llr, torch.Tensor) else f"shape {list(llr.shape)}"
            raise ChannelError(f"channel {name} returned {what}; transmit must return a torch.Tensor of the bits' shape "
                             f"{list(bits.shape)}")
        if (llr.device.type == "cpu" or not torch.is_grad_enabled()) and not bool(torch.isfinite(llr).all()):
            raise ChannelError(f"channel {name} returned LLRs that are NaN or infinite; return finite values "
                             f"(clip certainty to +-{LLR_LIMIT:g})")
        return llr.to(torch.float32)

    def transmit(self, bits: torch.Tensor, generator: torch.Generator | None, **params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_params(self, params: dict, bits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fill defaults, check ranges and shapes; return tensors broadcastable to ``bits``."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} takes no parameter {sorted(unknown)[0]!r}; "
                f"its parameters are: {', '.join(self.params) or 'none'}"
            )
        out = {}
        for name, spec in self.params.items():
            value = params.get(name, spec.default)
            if value is None:
                raise ValueError(f"{type(self).__name__} needs the parameter {name!r}")
            out[name] = check_param(name, value, spec, bits)
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}=[{p.low}, {p.high}]" for k, p in self.params.items())


def check_param(name: str, value, spec: Param, bits: torch.Tensor) -> torch.Tensor:
    """One parameter as a float32 tensor of shape ``[]``, ``[B, 1]`` or ``[B, m]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise ValueError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    tensor = torch.as_tensor(value, dtype=torch.float32, device=bits.device)
    batch = bits.shape[0]
    if tensor.dim() == 1:
        if tensor.shape[0] != batch:
            raise ValueError(f"{name} per sample must have shape [{batch}], got {list(tensor.shape)}")
        tensor = tensor.unsqueeze(1)
    elif tensor.dim() == 2:
        if tuple(tensor.shape) not in {tuple(bits.shape), (batch, 1)}:
            raise ValueError(f"{name} per bit must have shape {list(bits.shape)}, got {list(tensor.shape)}")
    elif tensor.dim() != 0:
        raise ValueError(f"{name} must be a float or a tensor of shape [B] or [B, m], got {list(tensor.shape)}")
    if bool(torch.isnan(tensor).any()):
        raise ValueError(f"{name} must not be NaN")
    if bool((tensor < spec.low).any()) or bool((tensor > spec.high).any()):
        bad = tensor[(tensor < spec.low) | (tensor > spec.high)].flatten()[0].item()
        raise ValueError(f"{name} must be in [{spec.low:g}, {spec.high:g}], got {bad:g}")
    return tensor


def uniform(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Uniform [0, 1) draws from ``generator`` (the only source of channel randomness)."""
    return torch.rand(shape, generator=generator, device=device)


class LambdaChannel(Channel):
    """Wrap a plain function as a channel.

    ``fn(bits, generator, **params)`` gets ``bits [B, m]`` float 0/1 and returns either

    * received hard bits ``[B, m]`` of 0/1 (``output="bits"``, the default; they are turned into LLRs
      of magnitude ``LLR_LIMIT``, i.e. treated as certain), or
    * LLRs ``[B, m]`` in the logit convention ``log P(b=1|r) / P(b=0|r)`` (``output="llr"``): positive
      means 1, ``0`` is an erasure; values are clipped to ``±LLR_LIMIT``.

    ``params`` declares the parameters ``fn`` takes, e.g. ``{"eps": Param(0, 1)}``.

    Examples::

        flip_all = LambdaChannel(lambda bits, generator: 1 - bits)

        def erase(bits, generator, p):          # a binary erasure channel, written by hand
            llr = (2 * bits - 1) * LLR_LIMIT
            return llr.masked_fill(torch.rand(bits.shape, generator=generator) < p, 0.0)
        bec = LambdaChannel(erase, params={"p": Param(0, 1)}, output="llr")
    """

    def __init__(self, fn: Callable, params: dict[str, Param] | None = None, output: str = "bits", name: str | None = None):
        super().__init__()
        if output not in ("bits", "llr"):
            raise ValueError(f"output must be 'bits' or 'llr', got {output!r}")
        self.fn = fn
        self.params = dict(params or {})
        self.output = output
        self.name = name or getattr(fn, "__name__", "lambda")
        if len(self.params) == 1:
            self.main_param = next(iter(self.params))

    def transmit(self, bits, generator, **params):
        out = self.fn(bits, generator, **params)
        if not isinstance(out, torch.Tensor) or out.shape != bits.shape:
            raise ValueError(f"channel function {self.name!r} must return a tensor of shape {list(bits.shape)}")
        if self.output == "bits":
            out = out.to(torch.float32)
            if out.numel() and not bool(((out == 0) | (out == 1)).all()):
                raise ValueError(f"channel function {self.name!r} returned values other than 0 and 1; a function that "
                                 "returns LLRs (log P(b=1|r)/P(b=0|r), 0 = erasure) needs LambdaChannel(..., output='llr')")
            return hard_llr(out, LLR_LIMIT)
        return out.to(torch.float32).clamp(-LLR_LIMIT, LLR_LIMIT)

    def extra_repr(self) -> str:
        return f"fn={self.name}, output={self.output}"
