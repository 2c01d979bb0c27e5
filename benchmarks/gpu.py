"""CPU vs CUDA: parity of a seeded evaluation, training seconds per epoch, decode throughput.

For each device available (the CPU always; CUDA when ``torch.cuda.is_available()``):

1. **Parity.** A small NECST model (MNIST, 100 bits, a few epochs of the default recipe, trained
   on the CPU from a fixed seed) decodes the *same* channel LLRs (drawn once on the CPU) on each
   device; the table gives the largest absolute difference of the reconstructions against the CPU,
   and the test ``l2_per_image`` of a whole seeded ``Pipeline.evaluate`` on each device (CUDA draws
   its own random numbers, so those two agree within their confidence intervals, not bit for bit).
2. **Training speed.** Seconds per epoch of NECST and IABF (default recipe and estimator, batch
   100) on each device (median of the timed epochs, after one warm-up epoch).
3. **Decoding throughput.** Information bits per second of the torch LDPC decoder (WiMAX-style
   regular (3,6) code, n = 1440, sum-product, layered, BSC 0.07) and of the K = 7 Viterbi decoder
   (rate 1/2, terminated, 1000 information bits per frame, BSC 0.03), on batches of frames.

Writes ``benchmarks/results/gpu.md`` and ``.csv``. Without CUDA the CUDA rows say "not available":
nothing is claimed for a device that was not measured.

    python benchmarks/gpu.py            # a few minutes on a CPU
    python benchmarks/gpu.py --quick    # seconds: checks the script
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from commsim.channels import BSC  # noqa: E402
from commsim.core.device import make_generator  # noqa: E402
from commsim.data import load_dataset  # noqa: E402
from commsim.fec.convolutional import ConvCode, torch_viterbi  # noqa: E402
from commsim.fec.ldpc import LDPCCode, regular_ldpc, torch_bp_decoder  # noqa: E402
from commsim.learned.training import TrainConfig, train_codec  # noqa: E402
from commsim.learned.zoo import build_codec  # noqa: E402
from commsim.pipeline import Pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def parity(source, epochs: int, limit: int) -> list[dict]:
    codec = build_codec("necst", source, 100, seed=0)
    train_codec(codec, source, TrainConfig(eps=0.1, epochs=epochs, seed=0), progress=False)
    x = source.tensors("test")[0][:limit]
    gen = make_generator(0)
    with torch.no_grad():
        llr = BSC()(codec.encode(x, gen), gen, eps=0.1)
        reference, _ = codec.decode(llr)
    rows = []
    for device in devices():
        model = codec.to(device)
        with torch.no_grad():
            out = model.decode(llr.to(device))
        out, _ = out
        sync(device)
        begin = time.perf_counter()
        l2 = Pipeline(source, model, BSC()).evaluate("test", seed=0, limit=limit, eps=0.1).metrics["l2_per_image"]
        sync(device)
        seconds = time.perf_counter() - begin
        rows.append({"section": "parity", "device": device, "max_abs_diff_vs_cpu": float((out.cpu() - reference).abs().max()),
                     "l2_per_image": round(l2.mean, 4), "l2_low": round(l2.low, 4), "l2_high": round(l2.high, 4),
                     "images": l2.count, "evaluate_seconds": round(seconds, 3)})
    codec.to("cpu")
    return rows


def training_speed(source, epochs: int) -> list[dict]:
    rows = []
    for device in devices():
        for name in ("necst", "iabf"):
            codec = build_codec(name, source, 100, seed=0).to(device)
            config = TrainConfig(eps=0.1, epochs=epochs + 1, seed=0, patience=0)
            result = train_codec(codec, source, config, progress=False)
            per_epoch = [h["train_seconds"] + h["val_seconds"] for h in result.history[1:]]
            rows.append({"section": "training", "device": device, "codec": name,
                         "estimator": config.estimator, "recipe": config.recipe, "epochs_timed": len(per_epoch),
                         "seconds_per_epoch": round(statistics.median(per_epoch), 3)})
    return rows


def decode_speed(frames: int, repeats: int) -> list[dict]:
    """The torch decoder modules called on LLR tensors that live on each device (they decode on the
    device of their input)."""
    rng = np.random.default_rng(0)
    rows = []
    ldpc = LDPCCode(regular_ldpc(1440, 720, seed=0))
    conv = ConvCode(1000, memory=6)
    cases = [("ldpc (1440,720) sum-product layered", ldpc, torch_bp_decoder(ldpc.H), 0.07),
             ("viterbi K=7 rate 1/2 terminated", conv, torch_viterbi(6), 0.03)]
    for label, code, decoder, eps in cases:
        info = rng.integers(0, 2, (frames, code.k), dtype=np.uint8)
        word = code.encode(info).astype(np.float32)
        received = np.where(rng.random(word.shape) < eps, 1 - word, word)
        llr = torch.from_numpy((2 * received - 1) * np.float32(np.log((1 - eps) / eps)))
        for device in devices():
            llr_d = llr.to(device)
            best = float("inf")
            for _ in range(repeats + 1):  # the first call builds the device tables
                sync(device)
                begin = time.perf_counter()
                out = decoder(llr_d)
                sync(device)
                best = min(best, time.perf_counter() - begin)
            bits = (out[0] if isinstance(out, tuple) else out).cpu().numpy()
            reference = word if bits.shape[1] == word.shape[1] else info
            fer = float((bits.astype(np.uint8) != reference.astype(np.uint8)).any(axis=1).mean())
            rows.append({"section": "decoding", "device": device, "code": label, "eps": eps, "frames": frames,
                         "info_bits_per_second": round(frames * code.k / best), "frame_error_rate": round(fer, 4)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    source = load_dataset("mnist")
    start = time.perf_counter()
    rows = parity(source, epochs=1 if args.quick else 5, limit=200 if args.quick else 1000)
    rows += training_speed(source, epochs=1 if args.quick else 3)
    rows += decode_speed(frames=50 if args.quick else 500, repeats=1 if args.quick else 3)
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out.with_suffix(".csv"), index=False)
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    lines = [f"# CPU vs CUDA{' (QUICK)' if args.quick else ''}", "",
             f"`python benchmarks/gpu.py{' --quick' if args.quick else ''}` on {platform.machine()}, {os.cpu_count()} cores, "
             f"{args.threads} CPU thread(s), torch {torch.__version__}; CUDA: "
             f"{cuda or '**not available on this machine: no CUDA number is claimed**'}; "
             f"{time.perf_counter() - start:.0f} s in all, {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    for section, part in frame.groupby("section", sort=False):
        part = part.dropna(axis=1, how="all").drop(columns="section")
        lines += [f"## {section}", "", "| " + " | ".join(part.columns) + " |", "|" + "---|" * len(part.columns)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in part.itertuples(index=False)]
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
