"""Soft-input vs hard-decision learned decoder over AWGN, at the same training budget.

For each Eb/N0 point, two NECST codecs are trained over AWGN at that point with the same seed,
recipe, estimator and budget, differing only in ``decoder_input`` (``"hard"``: the decoder reads the
decided bits; ``"soft"``: it reads ``sigmoid(llr)``). Both are tested over AWGN at the training point on
the 1000 test images, one channel draw per image from the same evaluation seed: test ``l2_per_image``
with its 95 % CI, and the paired per-image difference soft - hard with its 95 % CI (negative = soft
better). Writes ``soft_decoder.md`` and ``soft_decoder.csv`` (``--quick``: ``soft_decoder_quick.*``).

    python -m benchmarks.soft_decoder                       # 100 bits, 35 epochs, Eb/N0 -2 and 2 dB
    python -m benchmarks.soft_decoder --quick               # smoke test: 16 bits, 2 epochs, one point
"""
from __future__ import annotations

import sys

import pandas as pd
import torch

from benchmarks import runlib
from commsim.channels import AWGN
from commsim.core import metrics as M
from commsim.data import load_dataset
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec


@torch.no_grad()
def test_l2(codec, source, ebno_db: float, seed: int) -> torch.Tensor:
    """Per-image ``l2_per_image`` ``[N]`` over the test split through AWGN at ``ebno_db`` (one draw each)."""
    codec.eval()
    generator = torch.Generator().manual_seed(seed)
    channel, values = AWGN(), []
    for x, _ in source.batches("test", 500, generator=torch.Generator().manual_seed(seed)):
        llr = channel(codec.encode(x, generator), generator, ebno_db=ebno_db)
        values.append(M.l2_per_image(x, torch.sigmoid(codec.decode_logits(llr))))
    return torch.cat(values)


def verdict(row: dict) -> str:
    """``"at 2 dB the soft input is better by 0.36 (l2, 3 %)"`` from a soft row's paired difference."""
    where = f"at {row['ebno_db']:g} dB"
    if row["diff_low"] <= 0 <= row["diff_high"]:
        return f"{where} no significant difference (soft - hard {row['soft_minus_hard']:+.2f})"
    hard = row["test"] - row["soft_minus_hard"]
    better = "better" if row["soft_minus_hard"] < 0 else "worse"
    return f"{where} the soft input is {better} by {abs(row['soft_minus_hard']):.2f} l2 ({abs(row['soft_minus_hard']) / hard:.0%} of hard's {hard:.2f})"


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="2 epochs, 16 bits, first point only")
    parser.add_argument("--ebno-db", default="-2,2", help="comma-separated Eb/N0 points in dB (training = test)")
    parser.add_argument("--epochs", type=int, default=35)
    parser.add_argument("--bits", type=int, default=100)
    parser.add_argument("--recipe", default="onecycle")
    parser.add_argument("--estimator", default="st")
    parser.add_argument("--seed", type=int, default=0)
    args = runlib.parse_args(parser, argv)
    points = [float(v) for v in args.ebno_db.split(",")]
    if args.quick:
        args.epochs, args.bits, points = 2, 16, points[:1]
    source = load_dataset("mnist")
    rows = []
    load_before = runlib.load_average()
    for ebno_db in points:
        per_image = {}
        for mode in ("hard", "soft"):
            config = TrainConfig(epochs=args.epochs, seed=args.seed, recipe=args.recipe, estimator=args.estimator,
                                 channel="awgn", channel_params={"ebno_db": ebno_db}, decoder_input=mode)
            codec = build_codec("necst", source, args.bits, seed=args.seed, decoder_input=mode)
            result, seconds, _ = runlib.timed(lambda: train_codec(codec, source, config, progress=False))
            per_image[mode] = test_l2(codec, source, ebno_db, args.seed)
            test = M.mean_ci(per_image[mode])
            rows.append({"ebno_db": ebno_db, "decoder_input": mode, "bits": args.bits, "epochs": args.epochs,
                         "recipe": args.recipe, "estimator": args.estimator, "seed": args.seed,
                         "best_epoch": result.best_epoch, "epochs_run": len(result.history), "val": result.val_value,
                         "test": test.mean, "test_low": test.low, "test_high": test.high, "test_count": test.count,
                         "seconds": seconds})
            print(f"Eb/N0 {ebno_db:g} dB, {mode}: test l2 {test.mean:.2f} [{test.low:.2f}, {test.high:.2f}], "
                  f"best epoch {result.best_epoch}/{len(result.history)}, {seconds:.0f} s", flush=True)
        diff = M.mean_ci(per_image["soft"] - per_image["hard"])
        for row in rows[-2:]:
            row.update({"soft_minus_hard": diff.mean, "diff_low": diff.low, "diff_high": diff.high})
        print(f"Eb/N0 {ebno_db:g} dB: soft - hard {diff.mean:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]", flush=True)
    load_after = runlib.load_average()
    args.output.csv(pd.DataFrame(rows))
    lines = [f"# Soft-input vs hard-decision learned decoder over AWGN (NECST, MNIST, {args.bits} bits)", "",
             f"Settings: --ebno-db {args.ebno_db} "
             f"--epochs {args.epochs} --bits {args.bits} --recipe {args.recipe} --estimator {args.estimator} "
             f"--seed {args.seed} --threads {args.threads}; {runlib.machine()}, load average "
             f"{load_before} before / {load_after} after (a shared machine: seconds are indicative).",
             "Both codecs of a point: trained over AWGN at that Eb/N0 (rate 1), same seed and budget; tested over AWGN "
             "at the same Eb/N0, one channel draw per test image (1000 images, same evaluation seed). "
             "`soft - hard`: mean paired per-image difference of l2 (negative = soft input better), 95 % CI.", "",
             "| Eb/N0 (dB) | decoder input | test l2_per_image | 95 % CI | best epoch / run | seconds | soft - hard | 95 % CI |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['ebno_db']:g} | {r['decoder_input']} | {r['test']:.2f} | [{r['test_low']:.2f}, {r['test_high']:.2f}] | "
              f"{r['best_epoch']}/{r['epochs_run']} | {r['seconds']:.0f} | "
              + (f"{r['soft_minus_hard']:+.2f} | [{r['diff_low']:+.2f}, {r['diff_high']:+.2f}] |" if r["decoder_input"] == "soft" else " | |")
              for r in rows]
    lines += ["", "Reading: " + "; ".join(verdict(r) for r in rows if r["decoder_input"] == "soft") + ". The intervals cover "
              "the test images and channel draws, not the training seed (one trained codec per cell)."]
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
