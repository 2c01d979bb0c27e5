"""CPU vs CUDA: parity of a seeded evaluation, training seconds per epoch, decode throughput.

For each device available (the CPU always; CUDA when ``torch.cuda.is_available()``):

1. **Parity.** A small NECST model (MNIST, 100 bits, a few epochs of the default recipe, trained
   on the CPU from a fixed seed) decodes the *same* channel LLRs (drawn once on the CPU) on each
   device; the table gives the largest absolute difference of the reconstructions against the CPU,
   and the test ``l2_per_image`` of a whole seeded ``Pipeline.evaluate`` on each device (CUDA draws
   its own random numbers, so those two agree within their confidence intervals, not bit for bit).
2. **Training speed.** Seconds per epoch of NECST and IABF (default recipe and estimator, batch
   100) on each device (median of the timed epochs, after one warm-up epoch).
3. **Ensembles.** Seconds per epoch and images/s (summed over members) of N = 1, 12, 36 NECST members
   trained as one batched ensemble (``--members``), at the device's default precision.
4. **Decoding throughput.** Information bits per second of the torch LDPC decoder (WiMAX-style
   regular (3,6) code, n = 1440, sum-product, layered, BSC 0.07) and of the K = 7 Viterbi decoder
   (rate 1/2, terminated, 1000 information bits per frame, BSC 0.03), on batches of frames.

Writes ``gpu.md`` and ``gpu.csv`` in ``--out`` (default ``benchmarks/results``; ``--quick``:
``gpu_quick.*``). Without CUDA the CUDA rows say "not available": nothing is claimed for a device
that was not measured.

    python -m benchmarks.gpu            # a few minutes on a CPU
    python -m benchmarks.gpu --quick    # seconds: checks the script
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch

from benchmarks import runlib
from commsim.channels import BSC
from commsim.core.device import make_generator
from commsim.data import load_dataset
from commsim.fec.convolutional import ConvCode, torch_viterbi
from commsim.fec.ldpc import LDPCCode, regular_ldpc, torch_bp_decoder
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec
from commsim.pipeline import Pipeline


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


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
        result, seconds, _ = runlib.timed(lambda: Pipeline(source, model, BSC()).evaluate("test", seed=0, limit=limit, eps=0.1),
                                          device)
        l2 = result.metrics["l2_per_image"]
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


def ensemble_speed(source, members: list[int], epochs: int) -> list[dict]:
    """Seconds per epoch and images/s (summed over the members) of N NECST members trained as one batched
    ensemble on each device (the default recipe and precision of the device; the last of ``epochs`` + 1 epochs)."""
    from commsim.core.device import resolve_precision
    from commsim.learned.training import DEFAULT_RECIPE

    rows = []
    for device in devices():
        precision = resolve_precision("auto", device)
        for n in members:
            share = runlib.ensemble_share(source, n, device, epochs=epochs + 1, precision=precision)
            rows.append({"section": "ensembles", "device": device, "codec": "necst", "members": n, "precision": precision,
                         "recipe": DEFAULT_RECIPE, "seconds_per_epoch": round(share * n, 3),
                         "images_per_s": round(source.size("train") / share)})
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
            out, best = runlib.best_time(lambda: decoder(llr_d), repeats, device)  # the warm-up builds the device tables
            bits = (out[0] if isinstance(out, tuple) else out).cpu().numpy()
            reference = word if bits.shape[1] == word.shape[1] else info
            fer = float((bits.astype(np.uint8) != reference.astype(np.uint8)).any(axis=1).mean())
            rows.append({"section": "decoding", "device": device, "code": label, "eps": eps, "frames": frames,
                         "info_bits_per_second": round(frames * code.k / best), "frame_error_rate": round(fer, 4)})
    return rows


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1-3 epochs, 200 images, 50 frames, ensembles of 1 and 2")
    parser.add_argument("--members", default="1,12,36", help="ensemble sizes of the ensembles section")
    args = runlib.parse_args(parser, argv)
    source = load_dataset("mnist")
    start = time.perf_counter()
    rows = parity(source, epochs=1 if args.quick else 5, limit=200 if args.quick else 1000)
    rows += training_speed(source, epochs=1 if args.quick else 3)
    rows += ensemble_speed(source, [1, 2] if args.quick else [int(m) for m in args.members.split(",")], epochs=1)
    rows += decode_speed(frames=50 if args.quick else 500, repeats=1 if args.quick else 3)
    frame = pd.DataFrame(rows)
    args.output.csv(frame)
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    lines = [f"# CPU vs CUDA{' (QUICK)' if args.quick else ''}", "",
             f"{runlib.machine()}, {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; CUDA: "
             f"{cuda or '**not available on this machine: no CUDA number is claimed**'}; "
             f"{time.perf_counter() - start:.0f} s in all.", ""]
    for section, part in frame.groupby("section", sort=False):
        part = part.dropna(axis=1, how="all").drop(columns="section")
        lines += [f"## {section}", "", *runlib.markdown_table(list(part.columns), part.itertuples(index=False))]
        lines.append("")
    args.output.report(lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
