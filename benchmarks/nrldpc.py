"""5G NR LDPC and OSD on BPSK-AWGN: BLER vs Eb/N0, the gap to the normal approximation, CPU throughput.

- BLER (block = frame error rate) of NR LDPC (128, 64) and (1024, 512), layered sum-product BP with
  20 iterations, and OSD of order 2 (and 3, fewer frames) on the NR LDPC (128, 64) code's generator
  matrix of its transmitted bits. ``R = k / n``, ``sigma^2 = 1 / (2 R Eb/N0)``, LLRs ``2 r / sigma^2``
  clipped to +-30. Each point runs until ``--errors`` frame errors or ``--max-frames`` frames; the
  intervals are 95 % Clopper-Pearson.
- The Eb/N0 at BLER 1e-3 is interpolated linearly in ``log10(BLER)`` between the two points around
  1e-3, and compared with the normal approximation of the BI-AWGN channel,
  ``log2 M = n C - sqrt(n V) Q^-1(eps) + log2(n) / 2``, with ``C`` and ``V`` (mean and variance of
  the information density ``1 - log2(1 + e^-L)``, ``L ~ N(4 Es/N0, 8 Es/N0)`` the LLR of the sent
  bit) by numerical integration: the Eb/N0 at which the best code of length ``n`` carries ``k`` bits
  at BLER 1e-3.
- Throughput: information bits decoded per second (``time.perf_counter`` around ``decode_tensor``
  only) of NR LDPC (1024, 512) BP at Eb/N0 = 2 dB with 1 and 2 torch threads, and OSD codewords per
  second on (128, 64) at Eb/N0 = 3 dB.

Usage::

    python -m benchmarks.nrldpc            # ~10 minutes on one core
    python -m benchmarks.nrldpc --quick    # ~1 minute, fewer frames (intervals wide)

Writes ``nrldpc.md`` and ``nrldpc.csv`` (its first line: the provenance) in ``--out`` (default
``benchmarks/results``; ``--quick``: ``nrldpc_quick.*``).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd
import torch

from benchmarks import runlib
from commsim.channels import AWGN
from commsim.core.metrics import binomial_ci
from commsim.fec import NRLDPCCode, OSDCode, normal_approximation_ebno_db

TARGET = 1e-3


# Normal approximation ---------------------------------------------------------------------------

def normal_approximation_ebno(n: int, k: int, eps: float = TARGET) -> float:
    """Eb/N0 (dB) at which the normal approximation of an ``n``-bit code carries ``k`` bits at ``eps``."""
    return normal_approximation_ebno_db(n, k, eps)


def bler_point(code, ebno_db: float, max_errors: int, max_frames: int, batch: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    errors = frames = 0
    start = time.perf_counter()
    while errors < max_errors and frames < max_frames:
        f = min(batch, max_frames - frames)
        info = torch.randint(0, 2, (f, code.k), generator=gen, dtype=torch.uint8)
        x = torch.from_numpy(code.encode(info.numpy())).float()
        llr = AWGN()(x, gen, ebno_db=ebno_db, rate=code.rate)
        decoded, _ = code.decode_tensor(llr)
        errors += int((decoded != info).any(dim=1).sum())
        frames += f
    est = binomial_ci(errors, frames)
    return {"ebno_db": ebno_db, "frames": frames, "errors": errors, "bler": est.mean, "low": est.low,
            "high": est.high, "seconds": time.perf_counter() - start}


def crossing(points: list[dict], target: float = TARGET, key: str = "bler") -> float:
    """Eb/N0 where ``key`` crosses ``target`` (log-linear interpolation), NaN if not bracketed."""
    pts = sorted(points, key=lambda p: p["ebno_db"])
    for a, b in zip(pts, pts[1:]):
        if a[key] >= target >= b[key] > 0 and a[key] > 0:
            la, lb = math.log10(a[key]), math.log10(b[key])
            return a["ebno_db"] + (math.log10(target) - la) / (lb - la) * (b["ebno_db"] - a["ebno_db"])
    return math.nan


def curve(label, code, grid, args, batch, max_frames, seed) -> list[dict]:
    out = []
    for ebno in grid:
        p = bler_point(code, ebno, args.errors, max_frames, batch, seed + int(round(100 * ebno)))
        p["curve"] = label
        out.append(p)
        print(f"  {label} {ebno:.2f} dB: {p['errors']}/{p['frames']} = {p['bler']:.3g} "
              f"[{p['low']:.3g}, {p['high']:.3g}] ({p['seconds']:.1f} s)", flush=True)
        if p["high"] < TARGET / 3 or p["errors"] == 0:
            break
    return out


# Throughput ---------------------------------------------------------------------------------------

def throughput(code, ebno_db: float, frames: int, threads: int, repeats: int = 3, seed: int = 0) -> dict:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        info = torch.randint(0, 2, (frames, code.k), generator=gen, dtype=torch.uint8)
        x = torch.from_numpy(code.encode(info.numpy())).float()
        llr = AWGN()(x, gen, ebno_db=ebno_db, rate=code.rate)
        code.decode_tensor(llr[: min(frames, 64)])  # warm-up on a few frames
        (decoded, _), best = runlib.best_time(lambda: code.decode_tensor(llr), repeats, warmup=0)
        fer = float((decoded != info).any(dim=1).float().mean())
    finally:
        torch.set_num_threads(old)
    return {"code": code.name, "threads": threads, "ebno_db": ebno_db, "frames": frames, "seconds": best,
            "codewords_per_s": frames / best, "info_mbit_per_s": frames * code.k / best / 1e6, "fer": fer}


# Report ------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="fewer frames (wide intervals)", threads=False)
    parser.add_argument("--errors", type=int, default=100, help="frame errors per point (default 100)")
    parser.add_argument("--osd3-frames", type=int, default=8000, help="most frames per OSD-3 point")
    parser.add_argument("--seed", type=int, default=0)
    args = runlib.parse_args(parser, argv)
    if args.quick:
        args.errors = min(args.errors, 20)
        args.osd3_frames = min(args.osd3_frames, 300)
    torch.set_num_threads(1)  # the throughput section sets its own thread counts
    load_before = runlib.load_average()
    scale = 0.1 if args.quick else 1.0

    na = {(n, k): normal_approximation_ebno(n, k) for n, k in ((128, 64), (1024, 512))}
    print(f"normal approximation at BLER 1e-3: (128,64) {na[(128, 64)]:.3f} dB, (1024,512) {na[(1024, 512)]:.3f} dB")

    short, long_ = NRLDPCCode(64, 128, max_iters=20), NRLDPCCode(512, 1024, max_iters=20)
    points = []
    points += curve("NR LDPC (128,64) BP-20", short, np.arange(3.0, 5.51, 0.5), args, 20000, int(600000 * scale),
                    args.seed)
    points += curve("NR LDPC (1024,512) BP-20", long_, np.arange(1.5, 2.76, 0.25), args, 4000, int(150000 * scale),
                    args.seed + 1)
    osd2 = OSDCode(short, order=2)
    points += curve("NR LDPC (128,64) OSD-2", osd2, np.arange(2.5, 4.01, 0.5), args, 2000, int(60000 * scale),
                    args.seed + 2)
    osd3 = OSDCode(short, order=3)
    points += curve("NR LDPC (128,64) OSD-3", osd3, (2.0, 2.5, 3.0, 3.5), args, 500, args.osd3_frames, args.seed + 3)
    curves = [("NR LDPC (128,64) BP-20", (128, 64)), ("NR LDPC (1024,512) BP-20", (1024, 512)),
              ("NR LDPC (128,64) OSD-2", (128, 64)), ("NR LDPC (128,64) OSD-3", (128, 64))]
    try:
        from commsim.fec.polar import PolarCode
    except ImportError:  # the polar family is not on this branch
        PolarCode = None
    if PolarCode is not None:
        polar = PolarCode(64, 128, crc="6")  # CA-polar: G is that of the CRC-6 + polar concatenation
        points += curve("Polar (128,64)+CRC-6 OSD-2", OSDCode(polar, order=2), np.arange(2.5, 4.01, 0.5), args, 2000,
                        int(60000 * scale), args.seed + 4)
        points += curve("Polar (128,64)+CRC-6 OSD-3", OSDCode(polar, order=3), (2.5, 3.0, 3.5), args, 500,
                        args.osd3_frames, args.seed + 5)
        curves += [("Polar (128,64)+CRC-6 OSD-2", (128, 64)), ("Polar (128,64)+CRC-6 OSD-3", (128, 64))]

    summary = []
    for label, (n, k) in curves:
        pts = [p for p in points if p["curve"] == label]
        at = crossing(pts)
        lo, hi = crossing(pts, key="low"), crossing(pts, key="high")  # interval of the crossing
        summary.append({"curve": label, "ebno_at_1e-3": at, "ci_low": lo, "ci_high": hi,
                        "normal_approximation": na[(n, k)], "gap_db": at - na[(n, k)]})
        print(f"{label}: {at:.2f} dB at BLER 1e-3 [{lo:.2f}, {hi:.2f}], gap {at - na[(n, k)]:.2f} dB")

    speed = [throughput(long_, 2.0, 4000, t) for t in (1, 2)]
    for s in speed:
        print(f"BP (1024,512) 2 dB, {s['threads']} thread(s): {s['info_mbit_per_s']:.2f} Mbit/s")
    for order, frames in ((1, 4000), (2, 4000), (3, 300 if args.quick else 1000)):  # OSD on the NR LDPC code
        s = throughput(OSDCode(short, order=order), 3.0, frames, 1, repeats=1 if order == 3 else 2)
        s["code"] = f"OSD-{order} (128,64)"
        speed.append(s)
        print(f"OSD-{order} (128,64): {s['codewords_per_s']:.0f} codewords/s")
    load_after = runlib.load_average()

    columns = ["kind", "curve_or_code", "ebno_db", "frames", "errors", "bler", "low", "high", "threads",
               "info_mbit_per_s", "codewords_per_s"]
    table = [["bler", p["curve"], p["ebno_db"], p["frames"], p["errors"], f"{p['bler']:.4g}",
              f"{p['low']:.4g}", f"{p['high']:.4g}", 1, "", ""] for p in points]
    table += [["ebno_at_1e-3", s["curve"], f"{s['ebno_at_1e-3']:.3f}", "", "", "", f"{s['ci_low']:.3f}",
               f"{s['ci_high']:.3f}", "", "", ""] for s in summary]
    table += [["throughput", s["code"], s["ebno_db"], s["frames"], "", f"{s['fer']:.4g}", "", "",
               s["threads"], f"{s['info_mbit_per_s']:.3f}", f"{s['codewords_per_s']:.1f}"] for s in speed]
    args.output.csv(pd.DataFrame(table, columns=columns, dtype=object), stamp=True)

    lines = [
        "# 5G NR LDPC and OSD on BPSK-AWGN",
        "",
        f"{runlib.machine()}, torch {torch.__version__}; load average before / after {load_before} / {load_after} "
        "(other jobs share this machine: throughput is a lower bound).",
        "",
        "BLER = frame error rate of the information bits; intervals 95 % Clopper-Pearson; each point runs to "
        f"{args.errors} frame errors or its frame cap. Eb/N0 at BLER 1e-3 interpolated log-linearly; its interval "
        "from the crossings of the interval bounds. Normal approximation: BI-AWGN, "
        "`log2 M = nC - sqrt(nV) Q^-1(1e-3) + log2(n)/2`, C and V by numerical integration.",
        "",
        "## Eb/N0 at BLER 1e-3",
        "",
        "| curve | Eb/N0 at 1e-3 (dB) | interval | normal approximation (dB) | gap (dB) |",
        "|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(f"| {s['curve']} | {s['ebno_at_1e-3']:.2f} | [{s['ci_low']:.2f}, {s['ci_high']:.2f}] | "
                     f"{s['normal_approximation']:.2f} | {s['gap_db']:.2f} |")
    lines += [
        "",
        "Targets and published values: NR LDPC (128,64) BP about 1.6 dB from the normal approximation "
        "(target within 1.8 dB); (1024,512) target within 1.0 dB; OSD of high enough order within ~0.1-0.4 dB "
        "(for good codes such as eBCH). OSD of order t searches the sum of C(64, w), w <= t, test patterns "
        "(2081 for t = 2, 43745 for t = 3); for k = 64 order 2 is far from maximum likelihood and order 3 much "
        "closer, so the OSD-3 crossing (few errors: wide interval, an upper bound 'nan' when 1e-3 is not "
        "bracketed by the upper interval curve) is the nearer estimate of the codes' ML performance.",
        "The polar code is the CA-polar (128, 64) with CRC-6 of commsim.fec.polar (its own CA-SCL-8 decoder: "
        "3.23 dB at 1e-3, benchmarks/results/polar.md); OSD decodes the CRC + polar concatenation from its "
        "generator matrix.",
    ]
    lines += ["", "## BLER points", "", "| curve | Eb/N0 (dB) | errors / frames | BLER | interval |",
              "|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p['curve']} | {p['ebno_db']:.2f} | {p['errors']} / {p['frames']} | {p['bler']:.3g} | "
                     f"[{p['low']:.3g}, {p['high']:.3g}] |")
    lines += ["", "## CPU throughput (decode_tensor only, best of repeats)", "",
              "| decoder | Eb/N0 (dB) | threads | frames | info Mbit/s | codewords/s | FER |",
              "|---|---|---|---|---|---|---|"]
    for s in speed:
        lines.append(f"| {s['code']} | {s['ebno_db']} | {s['threads']} | {s['frames']} | {s['info_mbit_per_s']:.2f} | "
                     f"{s['codewords_per_s']:.0f} | {s['fer']:.3g} |")
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
