"""Batched ensembles against single trainings: seconds per epoch of N NECST members trained as one stacked model
(:func:`commsim.learned.ensemble.train_ensemble`) and of the same N configurations trained one after another with
``train_codec``, in this process, at ``--threads`` torch threads.

The members: every training eps of ``--eps`` (default 0.05, 0.1, 0.2, 0.3) with every seed of ``--seeds`` (default
0, 1, 2): 12 NECST codes of ``--bits`` 100 bits, straight-through estimator, batch 100, the onecycle recipe, for
``--epochs`` epochs (default 2) on the embedded MNIST (8000 training digits), validated on the whole validation
split (1000 digits, 3 channel draws) after each epoch. Both sides draw the same numbers (the ensemble's members are
the single trainings' up to float rounding), so the comparison is of the same work. Per side: seconds per epoch
in all, its training part and its validation part (the members' validations run one by one on both sides, so
the ensemble gains in training only), and the ratio single / ensemble, the fastest of ``--repeats`` (default 2) runs
per side, the sides alternating, after an untimed warm-up of both. The report ``ensemble_tN.md`` (N: the
thread count) also gives the process's CPU seconds per epoch, the validation distortions of both sides (mean
over members), the machine and its load average before and after (the machine may be shared: the seconds are
indicative).

    python -m benchmarks.ensemble                  # 12 members, 2 epochs, 1 thread
    python -m benchmarks.ensemble --threads 2
    python -m benchmarks.ensemble --quick          # 2 members of 16 bits, 1 epoch on 1000 digits
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from benchmarks import runlib
from commsim.data import load_dataset
from commsim.data.sources import ImageSource, split_in_order
from commsim.learned.ensemble import train_ensemble
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def measure(source: ImageSource, bits: int, configs: list[TrainConfig], val_limit: int | None, repeats: int = 1) -> list[dict]:
    """One row per side: seconds per epoch (wall: all, training, validation; this process's CPU) and the mean
    validation distortion, from the fastest of ``repeats`` runs (the sides alternate: single, ensemble, single, ...)."""
    epochs = configs[0].epochs

    def single():
        codecs = [build_codec("necst", source, bits, seed=c.seed) for c in configs]
        return [train_codec(codec, source, c, progress=False, val_limit=val_limit) for codec, c in zip(codecs, configs)]

    def ensemble():
        codecs = [build_codec("necst", source, bits, seed=c.seed) for c in configs]
        return train_ensemble(codecs, source, configs, progress=False, val_limit=val_limit)

    best = {}
    for _ in range(repeats):
        for side, run in (("single", single), ("ensemble", ensemble)):
            results, wall, cpu = runlib.timed(run)
            if side not in best or wall < best[side]["seconds_per_epoch"] * epochs:
                best[side] = {"side": side, "members": len(configs), "seconds_per_epoch": wall / epochs,
                              "train_per_epoch": sum(h["train_seconds"] for r in results for h in r.history) / epochs,
                              "val_per_epoch": sum(h["val_seconds"] for r in results for h in r.history) / epochs,
                              "cpu_per_epoch": cpu / epochs, "val_mean": float(np.mean([r.val_value for r in results]))}
    return [best["single"], best["ensemble"]]


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="2 members of 16 bits, 1 epoch on 1000 digits")
    parser.add_argument("--eps", default="0.05,0.1,0.2,0.3", help="training eps values (comma-separated)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (comma-separated)")
    parser.add_argument("--bits", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating; the fastest counts (default 2)")
    args = runlib.parse_args(parser, argv)
    try:
        eps_values, seeds = floats(args.eps), [int(s) for s in floats(args.seeds)]
        if not eps_values or not seeds or args.epochs < 1 or args.repeats < 1:
            raise ValueError("give at least one eps, one seed, --epochs >= 1 and --repeats >= 1")
    except ValueError as exc:
        return runlib.usage_error(exc)
    source, val_limit = load_dataset("mnist"), None
    if args.quick:
        eps_values, seeds, args.bits, args.epochs, args.repeats, val_limit = [0.1, 0.2], [0], 16, 1, 1, 100
        source = ImageSource("mnist", source.images[:1200], source.labels[:1200], split_in_order(1200, 1000, 100, 100))
    configs = [TrainConfig(eps=e, seed=s, epochs=args.epochs, estimator="st", batch_size=100) for e in eps_values for s in seeds]
    few = ImageSource("mnist", source.images[:300], source.labels[:300], split_in_order(300, 100, 100, 100))
    measure(few, 16, [TrainConfig(eps=0.1, epochs=1)], 50)  # warm-up, untimed: the first training's one-off set-up
    load = runlib.load_average()
    rows = measure(source, args.bits, configs, val_limit, args.repeats)
    single, ensemble = rows
    ratio = single["seconds_per_epoch"] / ensemble["seconds_per_epoch"]
    cpu_ratio = single["cpu_per_epoch"] / ensemble["cpu_per_epoch"]
    train_ratio = single["train_per_epoch"] / ensemble["train_per_epoch"]
    threads = torch.get_num_threads()
    table = runlib.markdown_table(
        ["side", "members", "s/epoch (all members)", "training", "validation", "CPU s/epoch", "val distortion (mean)"],
        [[r["side"], r["members"], f"{r['seconds_per_epoch']:.2f}", f"{r['train_per_epoch']:.2f}", f"{r['val_per_epoch']:.2f}",
          f"{r['cpu_per_epoch']:.2f}", f"{r['val_mean']:.3f}"] for r in rows])
    lines = ["# Batched ensemble against single trainings", "",
             f"{len(configs)} NECST members (eps {', '.join(f'{e:g}' for e in eps_values)} x seeds "
             f"{', '.join(map(str, seeds))}), {args.bits} bits, st, batch 100, onecycle, {args.epochs} epoch(s) on "
             f"{source.size('train')} training digits, validation on {val_limit or source.size('val')} digits; {threads} thread(s); the fastest of {args.repeats} alternating run(s) per side.",
             "", *table, "",
             f"Single / ensemble: {ratio:.2f}x in all (wall), {train_ratio:.2f}x in training alone, {cpu_ratio:.2f}x in CPU time.", "",
             f"Machine: {runlib.machine()}; load average {load} before, {runlib.load_average()} after."]
    print("\n".join(lines), flush=True)
    args.output.report(lines, part=f"_t{threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
