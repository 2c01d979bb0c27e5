"""Monte Carlo bit and block error rates of channel codes alone (Sionna's ``sim_ber``, AFF3CT's simulator).

One point: random information bits, ``code.encode``, a channel block at the given parameters,
``code.decode_iterations`` on the LLRs, and counts::

    from commsim.fec import build_code
    from commsim.fec.simulate import simulate_point, simulate_curve
    code = build_code("ldpc(128,64)")
    row = simulate_point(code, "awgn", {"ebno_db": 3.0}, target_block_errors=100, max_frames=100_000)
    rows = simulate_curve(code, "awgn", "ebno_db", [1, 2, 3, 4])   # stops after an error-free point

**Stop rules** (per point): frames are drawn in batches until ``target_block_errors`` block errors
have been seen (``stop = "errors"``) or ``max_frames`` frames were sent (``stop = "frames"``); the
last batch is sized from the error rate seen so far, so a point overshoots the target by little. A
curve is simulated from the worst channel value to the best (the direction a channel parameter
declares with ``Param.better``) and stops after the first point without any block error: the
points after it are skipped (``simulate_curve`` returns only the points it ran).

**Counts** (a row): ``frames``, ``bits`` (information bits), ``bit_errors``, ``block_errors``
(frames whose decoded information differs from what was sent, whatever the decoder believed),
``detected_failures`` (frames the decoder flagged: ``ok`` false), ``undetected_errors`` (wrong
frames the decoder took for right), BER and BLER with Clopper-Pearson 95 % intervals, the mean
decoder ``iterations`` per frame (empty for decoders without iterations), seconds in all and in
the decoder, and throughput: information bits and codewords decoded per second of decoder time.

**AWGN**: ``ebno_db`` is per *information* bit: ``rate = code.rate`` is passed to the channel
(``Es/N0 = R Eb/N0``) unless the caller fixes ``rate``; ``snr_db`` is Es/N0 per channel bit.

**Randomness**: each point has its own streams, derived from ``seed`` and the point (the code's name,
the channel and its parameters) by :class:`numpy.random.SeedSequence`: ``"info"`` draws the
information bits, ``"noise"`` the channel. The same seed gives the same counts for a point whichever
other points run, in whatever order.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Callable

import numpy as np
import torch

from commsim.channels import get_channel
from commsim.channels.base import Channel
from commsim.core.metrics import binomial_ci
from commsim.fec.base import ChannelCode

STREAMS = ("info", "noise")
"""The named random streams of a point."""
MAX_BATCH_BITS = 4_000_000
"""Largest batch, in channel bits (frames x n): bounds the memory of the decoders' messages."""
MIN_BATCH = 64
"""Smallest batch of frames (below it the per-call overhead of the batched decoders dominates)."""

COLUMNS = ["code", "k", "n", "rate", "channel", "param", "value", "fixed_params", "ebno_db", "esno_db",
           "frames", "bits", "bit_errors", "ber", "ber_low", "ber_high", "block_errors", "bler", "bler_low",
           "bler_high", "detected_failures", "undetected_errors", "iterations", "stop", "seconds",
           "decoder_seconds", "info_bits_per_s", "codewords_per_s", "seed", "device"]
"""The columns of a point's row, in CSV order."""


def point_streams(seed: int, label: str, device: torch.device | str = "cpu") -> dict[str, torch.Generator]:
    """``{"info": gen, "noise": gen}``, ``torch.Generator``s on ``device`` seeded from ``seed`` and the
    point's ``label`` (a ``SeedSequence`` keyed by both, one child per stream)."""
    sequence = np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(label.encode())])
    out = {}
    for name, child in zip(STREAMS, sequence.spawn(len(STREAMS))):
        out[name] = torch.Generator(device=device).manual_seed(int(child.generate_state(1, np.uint64)[0] >> 1))
    return out


def channel_params(code: ChannelCode, channel_name: str, params: dict) -> dict:
    """The channel's parameters for this code: AWGN with ``ebno_db`` gets ``rate = code.rate`` unless
    given."""
    params = dict(params)
    if channel_name == "awgn" and params.get("ebno_db") is not None:
        params.setdefault("rate", code.rate)
    return params


def fixed_text(params: dict, param: str) -> str:
    """The ``fixed_params`` cell of a row: the parameters other than the swept ``param``, ``k=v;...``."""
    return ";".join(f"{k}={params[k]:g}" for k in sorted(params) if k != param and params[k] is not None)


def _es_eb(channel_name: str, params: dict) -> tuple[float, float]:
    """``(Eb/N0, Es/N0)`` in dB of AWGN parameters (NaN for other channels)."""
    if channel_name != "awgn":
        return math.nan, math.nan
    rate = float(params.get("rate", 1.0))
    if params.get("ebno_db") is not None:
        return float(params["ebno_db"]), float(params["ebno_db"]) + 10 * math.log10(rate)
    return float(params["snr_db"]) - 10 * math.log10(rate), float(params["snr_db"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def simulate_point(code: ChannelCode, channel: str | Channel, params: dict, *, target_block_errors: int = 100,
                   max_frames: int = 100_000, seed: int = 0, device: str | torch.device = "cpu",
                   max_batch: int | None = None, channel_name: str | None = None, param: str = "",
                   value: float = math.nan) -> dict:
    """Simulate ``code`` over ``channel`` (a name or a block) at ``params`` until the stop rule; return
    the row (:data:`COLUMNS`). ``param``/``value`` only label the row (the swept parameter).

    Parameters (11): besides the code, the channel and its parameters, each is an independent
    keyword-only setting with a default (the stop rule's two counts, seed, device, batch cap, and the
    three labels of the row), as in Sionna's ``sim_ber``; grouping them would only move the list."""
    if target_block_errors < 1 or max_frames < 1:
        raise ValueError(f"need target_block_errors >= 1 and max_frames >= 1, got {target_block_errors}, {max_frames}")
    if getattr(code, "ideal", False):
        raise ValueError(f"{code.name} is an ideal code (a reference without a decoder): it has no error rate to simulate")
    device = torch.device(device)
    name = channel_name or (channel if isinstance(channel, str) else type(channel).__name__.lower())
    block = get_channel(channel) if isinstance(channel, str) else channel
    block = block.to(device)
    code = code.to(device)
    params = channel_params(code, name, params)
    fixed = fixed_text(params, param)
    label = f"{code.name}|{name}|" + ";".join(f"{k}={params[k]!r}" for k in sorted(params))
    streams = point_streams(seed, label, device)
    cap = max(MIN_BATCH, MAX_BATCH_BITS // max(code.n, 1)) if max_batch is None else int(max_batch)

    frames = bit_errors = block_errors = failures = undetected = 0
    iterations, iteration_frames = 0.0, 0
    decoder_seconds, start = 0.0, time.perf_counter()
    while block_errors < target_block_errors and frames < max_frames:
        if block_errors == 0:
            batch = min(cap, max(MIN_BATCH, frames))  # no error yet: double the frames sent
        else:
            needed = (target_block_errors - block_errors) * frames / block_errors
            batch = min(cap, max(MIN_BATCH, int(math.ceil(1.1 * needed))))
        batch = min(batch, max_frames - frames)
        info = torch.randint(0, 2, (batch, code.k), generator=streams["info"], device=device, dtype=torch.uint8)
        word = torch.from_numpy(np.asarray(code.encode(info.cpu().numpy()), np.float32)).to(device)
        llr = block(word, generator=streams["noise"], **params)  # checked finite by the channel block
        _sync(device)
        t0 = time.perf_counter()
        info_hat, ok, iters = code.decode_iterations(llr)
        _sync(device)
        decoder_seconds += time.perf_counter() - t0
        wrong = (info_hat.to(device) != info)
        wrong_frames = wrong.any(dim=1)
        ok = ok.to(device)
        frames += batch
        bit_errors += int(wrong.sum())
        block_errors += int(wrong_frames.sum())
        failures += int((~ok).sum())
        undetected += int((wrong_frames & ok).sum())
        if iters is not None:
            iterations += float(iters.double().sum())
            iteration_frames += batch
    seconds = time.perf_counter() - start

    ber, bler = binomial_ci(bit_errors, frames * code.k), binomial_ci(block_errors, frames)
    ebno, esno = _es_eb(name, params)
    return {
        "code": code.name, "k": code.k, "n": code.n, "rate": code.rate, "channel": name, "param": param,
        "value": value, "fixed_params": fixed, "ebno_db": ebno, "esno_db": esno, "frames": frames,
        "bits": frames * code.k, "bit_errors": bit_errors, "ber": ber.mean, "ber_low": ber.low, "ber_high": ber.high,
        "block_errors": block_errors, "bler": bler.mean, "bler_low": bler.low, "bler_high": bler.high,
        "detected_failures": failures, "undetected_errors": undetected,
        "iterations": iterations / iteration_frames if iteration_frames else math.nan,
        "stop": "errors" if block_errors >= target_block_errors else "frames", "seconds": seconds,
        "decoder_seconds": decoder_seconds,
        "info_bits_per_s": frames * code.k / decoder_seconds if decoder_seconds > 0 else math.nan,
        "codewords_per_s": frames / decoder_seconds if decoder_seconds > 0 else math.nan,
        "seed": seed, "device": str(device),
    }


def curve_order(channel: Channel, param: str, values: list[float]) -> tuple[list[float], bool]:
    """``(values from the worst channel to the best, whether that direction is known)``: the order in
    which a curve is simulated so that an error-free point can stop it."""
    better = getattr(channel.params.get(param), "better", None)
    if better == "higher":
        return sorted(values), True
    if better == "lower":
        return sorted(values, reverse=True), True
    return list(values), False


def simulate_curve(code: ChannelCode, channel: str | Channel, param: str, values: list[float], fixed: dict | None = None,
                   *, stop_after_clean: bool = True, on_point: Callable[[dict], None] | None = None,
                   skip: Callable[[float], dict | None] | None = None, **options) -> list[dict]:
    """:func:`simulate_point` at each of ``values`` of ``param`` (other parameters in ``fixed``), from
    the worst channel to the best, stopping after the first point without a block error when
    ``stop_after_clean`` (and the parameter's direction is known). ``on_point(row)`` sees each row as it
    is made; ``skip(value)`` may return an earlier row of a value (resume): it is not simulated again
    but still counts for the stop rule. ``options`` go to :func:`simulate_point`."""
    block = get_channel(channel) if isinstance(channel, str) else channel
    name = options.pop("channel_name", None) or (channel if isinstance(channel, str) else type(channel).__name__.lower())
    ordered, known = curve_order(block, param, values)
    rows = []
    for value in ordered:
        row = skip(value) if skip is not None else None
        if row is None:
            row = simulate_point(code, block, {**(fixed or {}), param: value}, channel_name=name, param=param,
                                 value=value, **options)
            rows.append(row)
            if on_point is not None:
                on_point(row)
        if stop_after_clean and known and int(row["block_errors"]) == 0:
            break
    return rows
