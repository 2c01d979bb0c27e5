"""Decoder lookup tables (module buffers) served on the device of the frames being decoded."""
from __future__ import annotations

import torch
from torch import nn


def check_llr_tensor(llr, n: int) -> torch.Tensor:
    """``llr`` if it is a ``[F, n]`` tensor without NaN (the input check of the batched decoders), else
    ``ValueError`` saying what is wrong."""
    if not isinstance(llr, torch.Tensor):
        raise ValueError(f"llr must be a torch.Tensor, got {type(llr).__name__} (use .decode for numpy)")
    if llr.dim() != 2 or llr.shape[1] != n:
        raise ValueError(f"llr must have shape [F, {n}], got {list(llr.shape)}")
    if llr.is_floating_point() and bool(torch.isnan(llr).any()):
        raise ValueError("llr must not contain NaN")
    return llr


class DeviceTables(nn.Module):
    """A module whose buffers are copied once to whatever device the input is on.

    ``tables(device)`` returns the buffers by name: the module's own when they already live there,
    else a cached copy (dropped when the module itself moves with ``.to()``).
    """

    def __init__(self):
        super().__init__()
        self._device_copies: dict[torch.device, dict[str, torch.Tensor]] = {}

    def _tables(self, device: torch.device) -> dict[str, torch.Tensor]:
        own = dict(self.named_buffers())
        if next(iter(own.values())).device == device:
            return own
        if device not in self._device_copies:
            self._device_copies = {device: {k: v.to(device) for k, v in own.items()}}
        return self._device_copies[device]

    def _apply(self, fn, *args, **kwargs):
        self._device_copies = {}
        return super()._apply(fn, *args, **kwargs)
