"""12 trainings the way a sweep makes them: one at a time in ``--jobs 2`` worker processes (today's fastest way)
against stacked ensembles (:func:`commsim.sweep.prepare` groups a codec's trainings, one ensemble per worker).

The trainings: NECST, 100 bits, every eps of ``--eps`` (default 0.1, 0.2, 0.3, 0.4) x every seed of ``--seeds``
(default 0, 1, 2), ``--epochs`` epochs each (default 3: the ratio, not the scores, is the point), into a fresh
cache per side. Sides, one after the other in this run (2 cores):

- ``jobs2 fp32 onecycle``: the earlier defaults (batch 100, fp32), each training alone (no grouping), 2 workers;
- ``ensemble fp32 onecycle``: the same configurations, grouped: 2 ensembles of 6, one per worker;
- ``ensemble auto onecycle250``: today's defaults (batch 250; bf16 where the CPU has bf16 units), grouped;
- ``jobs2 auto onecycle250``: today's defaults, each training alone, 2 workers.

Writes ``ensemble_jobs.md`` / ``.csv``: wall seconds per side and the ratios.

    python -m benchmarks.ensemble_jobs
    python -m benchmarks.ensemble_jobs --quick      # 2 eps x 1 seed, 1 epoch
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from unittest import mock

import pandas as pd

from benchmarks import runlib
from commsim.codecs import entry
from commsim.core.protocol import Budget, Request
from commsim.data import load_dataset
from commsim.learned.entry import Training
from commsim.sweep import LocalExecutor, prepare


def side(eps: list[float], seeds: list[int], epochs: int, precision: str, recipe: str, grouped: bool) -> float:
    """Wall seconds to make the trainings into a fresh cache with ``--jobs 2``."""
    source = load_dataset("mnist")
    with tempfile.TemporaryDirectory() as home, mock.patch.dict(os.environ, {"COMMSIM_HOME": home}):
        needs = [entry("necst").requirement(Request("mnist", 100, "bsc", {"eps": e}, budget=Budget(
            epochs=epochs, seed=s, precision=precision, recipe=recipe)), source) for e in eps for s in seeds]
        alone = mock.patch.object(Training, "together", property(lambda self: None)) if not grouped else mock.MagicMock()
        with alone:
            start = time.perf_counter()
            prepare(needs, LocalExecutor(2), progress=False)
            seconds = time.perf_counter() - start
        assert all(n.find() is not None for n in needs)
    return seconds


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="2 eps x 1 seed, 1 epoch", threads=False)
    parser.add_argument("--eps", default="0.1,0.2,0.3,0.4")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3)
    args = runlib.parse_args(parser, argv)
    eps, seeds = [float(e) for e in args.eps.split(",")], [int(s) for s in args.seeds.split(",")]
    if args.quick:
        eps, seeds, args.epochs = eps[:2], seeds[:1], 1
    load, rows = runlib.load_average(), []
    for name, precision, recipe, grouped in (("jobs2 fp32 onecycle", "fp32", "onecycle", False),
                                             ("ensemble fp32 onecycle", "fp32", "onecycle", True),
                                             ("ensemble auto onecycle250", "auto", "onecycle250", True),
                                             ("jobs2 auto onecycle250", "auto", "onecycle250", False)):
        seconds = side(eps, seeds, args.epochs, precision, recipe, grouped)
        rows.append({"side": name, "trainings": len(eps) * len(seeds), "epochs": args.epochs, "seconds": seconds})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    base = frame["seconds"].iloc[0]
    frame["speed_vs_jobs2_fp32"] = base / frame["seconds"]
    args.output.csv(frame, stamp=True)
    table = [[r.side, r.trainings, r.epochs, f"{r.seconds:.1f}", f"{r.speed_vs_jobs2_fp32:.2f}x"] for r in frame.itertuples()]
    lines = ["# Trainings of a sweep: --jobs 2 against stacked ensembles", "",
             f"Machine: {runlib.machine()}; load average {load} before, {runlib.load_average()} after. NECST, 100 bits, "
             f"eps {args.eps}, seeds {args.seeds}, {args.epochs} epochs each, fresh cache per side, 2 worker processes "
             "of one thread each (commsim.sweep.prepare with LocalExecutor(2)).", "",
             *runlib.markdown_table(["side", "trainings", "epochs", "wall s", "speed vs jobs2 fp32 onecycle"], table)]
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
