"""Device selection: ``auto`` is CUDA when available, else the CPU."""
from __future__ import annotations

import torch

from commsim.core import protocol
from commsim.core.files import PrecisionWarning

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for but no CUDA GPU is available; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    return torch.device(name)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (the only source of randomness)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def make_adam(parameters, lr: float) -> torch.optim.Adam:
    """Adam over ``parameters``, fused (one kernel for all tensors; about 4x faster steps on the CPU)
    where this torch supports it for their device, else the plain implementation."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # torch < 2.4 on the CPU, or an unsupported device
        return torch.optim.Adam(parameters, lr=lr)


def flushing_denormals() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero (FTZ/DAZ) right now."""
    return torch.full((1,), 1e-39, dtype=torch.float32).mul(1.0).item() == 0.0


def flush_denormals(on: bool = True) -> bool:
    """Flush denormal floats to zero on the CPU (x86 FTZ/DAZ, ARM FZ) in this thread and in the
    threads it starts later (they inherit it); return whether this CPU supports it.

    Training drives some gradients and Adam moments into the denormal range (below 1.2e-38 in
    float32), where every multiply-add costs tens of cycles: a NECST epoch on one thread grows from
    about 0.8 to 1.2 CPU seconds after the first ~15 epochs. Flushing them is the usual cure; in our
    measurement it left the validation score of a 40-epoch NECST training bit-for-bit the same.
    """
    return torch.set_flush_denormal(on)


class denormals_flushed:
    """``with denormals_flushed():`` flush denormals inside the block, then restore the thread's
    previous setting (training uses it, so a Python user's process is left as it was)."""

    def __enter__(self):
        self.before = flushing_denormals()
        flush_denormals(True)
        return self

    def __exit__(self, *exc):
        flush_denormals(self.before)
        return False



PRECISIONS = protocol.PRECISIONS
"""Training precisions: ``fp32``; ``bf16`` (autocast of the matrix products to bfloat16; losses,
probabilities, Adam state and master weights stay float32); ``auto`` = bf16 where the device has bf16
matrix units (:func:`has_bf16_units`), else fp32."""


def has_bf16_units(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: a CUDA GPU of compute capability >= 8.0
    (Ampere and later), or a CPU with AMX or AVX-512-BF16 that this torch's oneDNN uses."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` (one of :data:`PRECISIONS`) on ``device``; ``bf16``
    forced on a device without bf16 units runs, with one :class:`PrecisionWarning`."""
    import warnings

    precision = protocol.Precision.parse(precision).value
    if precision == "auto":
        return "bf16" if has_bf16_units(device) else "fp32"
    if precision == "bf16" and not has_bf16_units(device):
        warnings.warn(f"bf16 on {torch.device(device)} without bf16 matrix units is emulated and slow; "
                      "use --precision fp32 or auto", PrecisionWarning, stacklevel=2)
    return precision


def autocast(device: torch.device | str, precision: str):
    """The context a training's forward passes run in: ``torch.autocast`` to bfloat16 for ``"bf16"``,
    nothing for ``"fp32"`` (an autocast context that is disabled)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
