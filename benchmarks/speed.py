"""Training speed on this machine: images/s per training step for precision x batch x members x threads.

NECST-size MLP (784-500-100 / 100-500-500-784), the BSC at eps 0.1 folded into the sampling, the
straight-through estimator, Adam; the embedded 8,000 training digits. For each (precision, batch,
threads) the script times, in this one process and one after the other:

- ``commsim``: :func:`commsim.learned.training.train_codec` (NECST, and IABF for the README's codec), the
  training seconds of its epochs (its validation is reported apart, in ``val s/epoch``);
- ``minimal``: the independent minimal loop of ``benchmarks/train_loop.py`` (no commsim code; the same
  model, bf16 by ``torch.autocast`` on the forward passes), over the same number of images;
- ``ensemble``: ``--members`` NECST members trained as one stacked model (:func:`benchmarks.runlib.ensemble_share`),
  images/s summed over the members.

Every timing is the second of two passes (the first warms oneDNN's kernels up), denormals flushed for
both loops (commsim's training does so). Ratios are within one run (the machine is shared); the
load average before and after is printed in the report.

    python -m benchmarks.speed                      # the full grid (about 8 min on 2 cores)
    python -m benchmarks.speed --quick              # batch 100 and 500, one thread, a fraction of an epoch
"""
from __future__ import annotations

import sys

import pandas as pd
import torch

from benchmarks import runlib
from benchmarks.train_loop import minimal_epochs
from commsim.core.device import denormals_flushed, has_bf16_units
from commsim.data import load_dataset
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec


def commsim_rate(source, codec: str, batch: int, precision: str, epochs: int = 2) -> tuple[float, float]:
    """``(training images/s of the last epoch, validation seconds per epoch)`` of ``train_codec``."""
    model = build_codec(codec, source, 100)
    config = TrainConfig(eps=0.1, epochs=epochs, batch_size=batch, precision=precision, patience=0)
    history = train_codec(model, source, config, progress=False).history
    return source.size("train") / history[-1]["train_seconds"], history[-1]["val_seconds"]


def write_report(output: runlib.Output, frame: pd.DataFrame, members: int, load: str) -> None:
    """``speed.md`` from the measured ``frame`` (one row per threads x precision x batch)."""
    fastest = frame.loc[frame["necst"].idxmax()]
    base = frame[(frame.precision == "fp32") & (frame.batch == 100) & (frame.threads == 1)]["necst"]
    column = f"ensemble_{members}"
    header = ["threads", "precision", "batch", "minimal img/s", "commsim necst img/s", "necst / minimal", "commsim iabf img/s",
              "val s/epoch"] + ([f"ensemble of {members} img/s"] if members else [])
    table = [[r["threads"], r["precision"], r["batch"], f"{r['minimal']:,.0f}", f"{r['necst']:,.0f}", f"{r['necst'] / r['minimal']:.2f}",
              f"{r['iabf']:,.0f}", f"{r['val_seconds']:.3f}"]
             + ([f"{r[column]:,.0f}" if pd.notna(r[column]) else "n/a"] if members else [])
             for _, r in frame.iterrows()]
    lines = ["# Training speed (images/s per training step)", "",
             f"Machine: {runlib.machine()}; bf16 matrix units: {has_bf16_units('cpu')}; load average {load} "
             "(a shared machine: compare within this table).", "",
             *runlib.markdown_table(header, table), ""]
    if len(base):
        lines.append(f"Fastest NECST step: {fastest.precision}, batch {fastest.batch}, {fastest.threads} thread(s): "
                     f"{fastest.necst:,.0f} images/s, {fastest.necst / base.iloc[0]:.1f}x the fp32 batch-100 one-thread step.")
    output.report(lines)


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="batch 100 and 500, one thread, no ensemble", threads=False)
    parser.add_argument("--batches", default="100,250,500")
    parser.add_argument("--thread-counts", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--members", type=int, default=12, help="ensemble size (0: no ensemble rows)")
    args = runlib.parse_args(parser, argv)
    batches, threads = [int(b) for b in args.batches.split(",")], [int(t) for t in args.thread_counts.split(",")]
    if args.quick:
        batches, threads, args.members = [100, 500], [1], 0
    source = load_dataset("mnist")
    images = source.served("train").flatten(1)
    precisions = ["fp32", "bf16"]
    load, rows = runlib.load_average(), []
    with denormals_flushed():
        for count in threads:
            torch.set_num_threads(count)
            for precision in precisions:
                for batch in batches:
                    row = {"threads": count, "precision": precision, "batch": batch}
                    share = 0.25 if args.quick else 1.0
                    row["minimal"] = share * len(images) / minimal_epochs(images, share, "st", batch_size=batch,
                                                                       bf16=precision == "bf16") / share
                    row["necst"], row["val_seconds"] = commsim_rate(source, "necst", batch, precision)
                    row["iabf"], _ = commsim_rate(source, "iabf", batch, precision)
                    if args.members:
                        share = runlib.ensemble_share(source, args.members, epochs=2, batch_size=batch, precision=precision)
                        row[f"ensemble_{args.members}"] = source.size("train") / share
                    rows.append(row)
                    print({k: round(v) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    frame = pd.DataFrame(rows)
    args.output.csv(frame, stamp=True)
    write_report(args.output, frame, args.members, f"{load} before, {runlib.load_average()} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
