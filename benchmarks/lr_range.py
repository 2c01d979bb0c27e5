"""LR range test (Smith, 2017) for the learned codecs: the peak learning rate of the schedules.

One short run per (codec, estimator) with the learning rate rising exponentially from ``--lr-min``
to ``--lr-max`` over ``--steps`` Adam steps of commsim's own training step
(:func:`commsim.learned.training.train_step`), recording the bias-corrected exponential moving
average of the training reconstruction loss. It stops when the smoothed loss exceeds four times its
minimum (divergence). Reported per run: the rate at the minimum of the smoothed loss and the
suggested peak ``lr_min_loss / 10`` (the usual rule: a decade below the rate where the loss stops
falling). The rate of steepest descent, the other common rule, is useless here: the loss falls
fastest in the first steps at any rate (the untrained network's transient).

    python -m benchmarks.lr_range                  # necst st/gumbel/vimco and iabf st, eps 0.1
    python -m benchmarks.lr_range --quick --out /tmp/lr
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import torch

from benchmarks import runlib
from commsim.core.device import make_generator
from commsim.data import load_dataset
from commsim.learned.training import TrainConfig, make_objective, seed_streams, stream_seed, train_step
from commsim.learned.zoo import build_codec


def lr_range_test(codec_name: str, source, config: TrainConfig, lr_min: float = 1e-5, lr_max: float = 1.0,
                  steps: int = 400, smoothing: float = 0.98, diverge: float = 4.0, bits: int = 100) -> dict:
    """Run the range test; return the curve (``lrs``, ``losses``) and the rates it suggests."""
    codec = build_codec(codec_name, source, bits, seed=config.seed)
    objective = make_objective(codec, config)
    optimizer = torch.optim.Adam(codec.parameters(), lr=lr_min)
    streams = seed_streams(config.seed)
    generator = make_generator(stream_seed(streams["noise"]))
    data_generator = make_generator(stream_seed(streams["data"]))
    lrs, losses = [], []
    average, best = 0.0, math.inf
    codec.train()
    step = 0
    while step < steps:
        for x, _ in source.batches("train", config.batch_size, shuffle=True, generator=data_generator):
            lr = lr_min * (lr_max / lr_min) ** (step / max(steps - 1, 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = train_step(codec, objective, optimizer, x, config.eps, generator)["loss"]
            average = smoothing * average + (1 - smoothing) * loss
            smoothed = average / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            step += 1
            if step >= steps or not math.isfinite(smoothed) or smoothed > diverge * best:
                step = steps
                break
    lrs_a, losses_a = np.array(lrs), np.array(losses)
    finite = np.isfinite(losses_a)
    lr_min_loss = float(lrs_a[finite][np.argmin(losses_a[finite])])
    return {"lrs": lrs, "losses": losses, "lr_min_loss": lr_min_loss, "suggested": lr_min_loss / 10, "steps": len(lrs)}


RUNS = [("necst", "st"), ("necst", "gumbel"), ("necst", "vimco"), ("iabf", "st")]


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="necst st only, 40 steps")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=400)
    args = runlib.parse_args(parser, argv)
    runs, steps = (RUNS[:1], 40) if args.quick else (RUNS, args.steps)
    source = load_dataset("mnist")
    rows, curves = [], []
    for codec, estimator in runs:
        found, seconds, _ = runlib.timed(lambda: lr_range_test(codec, source, TrainConfig(eps=args.eps, estimator=estimator),
                                                               steps=steps))
        rows.append({"codec": codec, "estimator": estimator, "eps": args.eps, "steps": found["steps"],
                     "lr_min_loss": found["lr_min_loss"], "suggested_peak": found["suggested"], "min_smoothed_loss": min(found["losses"]), "seconds": seconds})
        curves += [{"codec": codec, "estimator": estimator, "lr": lr, "smoothed_loss": loss}
                   for lr, loss in zip(found["lrs"], found["losses"])]
        print(f"{codec} {estimator}: min loss at lr {found['lr_min_loss']:.2g}, suggested peak {found['suggested']:.2g} ({seconds:.0f} s)")
    args.output.csv(pd.DataFrame(rows))
    args.output.csv(pd.DataFrame(curves), "_curves")
    config = TrainConfig(eps=args.eps)
    lines = [f"# LR range test (MNIST, 100 bits, batch {config.batch_size}, eps {args.eps:g})", "",
             f"Batch: the default recipe's ({config.recipe}).", "",
             f"{steps} Adam steps, lr from 1e-5 to 1 (exponential), {args.threads} thread(s), {runlib.machine()}.", ""]
    lines += runlib.markdown_table(
        ["codec", "estimator", "lr at min loss", "suggested peak", "min smoothed loss", "seconds"],
        [[r["codec"], r["estimator"], f"{r['lr_min_loss']:.2g}", f"{r['suggested_peak']:.2g}", f"{r['min_smoothed_loss']:.2f}",
          f"{r['seconds']:.0f}"] for r in rows])
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
