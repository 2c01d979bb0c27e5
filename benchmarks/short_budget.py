"""NECST under short budgets: how few seconds of training reach the 200-epoch quality (issue 17's target).

The target: NECST at eps 0.1 (MNIST, 100 bits, BSC) at test l2 <= ``--anchor`` (16.45, the old recipe's
200-epoch score, ``convergence.md``) within ``--seconds`` (10) of training wall time on all the machine's
cores, for each of ``--seeds`` seeds. Each budget of ``--epochs`` trains today's default recipe (the
one-cycle schedule fits itself to the budget) one training at a time, in this process, on ``--threads``
threads (default: every core), in ``--precision`` (default ``auto``: bf16 where the CPU has bf16 matrix
units, else fp32). A training's wall seconds are measured around ``train_and_save`` (``runlib.train_record``
without the per-epoch curve: its steps, its validation, its checkpoint; not the data loading nor the
evaluation after it); its score is the test l2 of its best-validation weights over 3 channel draws
(Table 1's score).

Records go to ``--runs`` (one JSON per training, resumable: a rerun reuses them; their seconds are the
run's that trained them). Writes ``short_budget.md`` / ``.csv`` (one row per budget).

    python -m benchmarks.short_budget                     # 10, 15, 20, 30 epochs x 3 seeds (~3-5 min on 2 cores)
    python -m benchmarks.short_budget --quick             # 1 epoch, 1 seed, 100 training images
"""
from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import pandas as pd

from benchmarks import runlib


def summarize(records: list[dict], budgets: list[int], anchor: float, seconds: float) -> pd.DataFrame:
    """One row per budget: the seeds' test l2 and wall seconds, and whether every seed meets the anchor
    and the seconds."""
    rows = []
    for epochs in budgets:
        runs = sorted((r for r in records if r["epochs"] == epochs), key=lambda r: r["seed"])
        if not runs:
            continue
        tests, walls = [r["test"] for r in runs], [r["wall_seconds"] for r in runs]
        rows.append({"epochs": epochs, "images": epochs * runs[0]["train_images"], "seeds": len(runs),
                     "precision": runs[0]["precision"], "threads": runs[0]["threads"],
                     "tests": " ".join(f"{t:.2f}" for t in tests), "test_mean": statistics.mean(tests),
                     "test_sd": statistics.stdev(tests) if len(tests) > 1 else float("nan"), "test_max": max(tests),
                     "wall_mean": statistics.mean(walls), "wall_max": max(walls),
                     "val_seconds": statistics.mean(sum(h.get("val_seconds", 0.0) for h in r["history"]) for r in runs),
                     "meets_anchor": max(tests) <= anchor, "within_seconds": max(walls) <= seconds})
    return pd.DataFrame(rows)


def report(args, frame: pd.DataFrame, load: str) -> list[str]:
    lines = [f"# NECST at eps {args.eps:g} under short budgets: time to test l2 {args.anchor:g}", "",
             f"Machine: {runlib.machine()}; load average {load}. Today's default recipe ({runlib.DEFAULTS['recipe']} + "
             f"{runlib.DEFAULTS['estimator']}, the one-cycle schedule fitted to each budget), {args.precision} resolved "
             f"to {frame['precision'].iloc[0] if len(frame) else '?'}, {args.threads} thread(s), one training at a time; "
             f"seeds 0-{args.seeds - 1}. Wall: seconds around `train_and_save` (steps, validation, checkpoint). "
             "Test: l2 per image of the best-validation weights, 3 channel draws. Target: every seed at most "
             f"{args.anchor:g} within {args.seconds:g} s.", ""]
    header = ["epochs", "images", "test l2 per seed", "mean ± sd", "wall s (mean / max)", "of which validation s",
              f"all seeds <= {args.anchor:g}", f"all within {args.seconds:g} s"]
    body = [[str(r["epochs"]), f"{r['images']:,}", r["tests"], f"{r['test_mean']:.2f} ± {r['test_sd']:.2f}",
             f"{r['wall_mean']:.1f} / {r['wall_max']:.1f}", f"{r['val_seconds']:.1f}",
             "yes" if r["meets_anchor"] else "**no**", "yes" if r["within_seconds"] else "**no**"]
            for _, r in frame.iterrows()]
    lines += runlib.markdown_table(header, body)
    met = frame[frame["meets_anchor"]] if len(frame) else frame
    if len(met):
        best = met.sort_values("wall_max").iloc[0]
        lines += ["", f"Fastest budget with every seed at most {args.anchor:g}: **{int(best['epochs'])} epochs**, "
                  f"{best['wall_mean']:.1f} s mean ({best['wall_max']:.1f} s max) of training, test l2 {best['test_mean']:.2f}: "
                  f"the target of {args.seconds:g} s is **{'met' if best['within_seconds'] else 'not met'}** on this machine."]
    elif len(frame):
        lines += ["", f"No budget here brings every seed to {args.anchor:g}: the target is **not met**."]
    return lines


def main(argv=None) -> int:
    from commsim.core.device import resolve_precision
    from commsim.core.threads import available_cores

    parser = runlib.benchmark_parser(__file__, __doc__, quick="1 epoch, 1 seed, 100 training images", threads=False)
    parser.add_argument("--eps", type=float, default=0.1, help="training and test eps (default 0.1)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 15, 20, 30], help="budgets in epochs")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per budget (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default 0: every core)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--anchor", type=float, default=16.45, help="test l2 to reach (default 16.45)")
    parser.add_argument("--seconds", type=float, default=10.0, help="training seconds to reach it in (default 10)")
    parser.add_argument("--runs", type=Path, default=None, help="records folder (default OUT/short_budget_runs[_quick])")
    args = runlib.parse_args(parser, argv)
    args.threads = args.threads or os.cpu_count() or 1
    if not (1 <= args.seeds <= 20 and 1 <= args.threads <= 256 and 0 < args.eps <= 0.5 and all(e >= 1 for e in args.epochs)):
        return runlib.usage_error(ValueError("--seeds must be in [1, 20], --threads in [1, 256], --eps in (0, 0.5], "
                                             "--epochs at least 1"))
    if args.threads > available_cores():
        print(f"note: {args.threads} threads on {available_cores()} free cores: the seconds measure a shared machine",
              file=sys.stderr)
    precision = resolve_precision(args.precision)
    fields = {"train_size": 100} if args.quick else {}
    if args.quick:
        args.epochs, args.seeds = [1], 1
    args.runs = args.runs or args.out / ("short_budget_runs_quick" if args.quick else "short_budget_runs")
    done = runlib.load_done(args.runs)
    load_before = runlib.load_average()
    specs = [runlib.spec("necst", args.eps, seed, epochs=epochs, threads=args.threads, precision=precision, **fields)
             for epochs in args.epochs for seed in range(args.seeds)]
    for task in (s for s in specs if s["name"] not in done):
        args.runs.mkdir(parents=True, exist_ok=True)
        record = done[task["name"]] = runlib.save_record(runlib.train_record(task, curve=False), args.runs)
        print(f"{task['name']}: test {record['test']:.3f}, {record['wall_seconds']:.1f} s", flush=True)
    frame = summarize([done[s["name"]] for s in specs], args.epochs, args.anchor, args.seconds)
    args.output.csv(frame)
    args.output.report(report(args, frame, f"{load_before} before, {runlib.load_average()} after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
