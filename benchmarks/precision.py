"""bf16 against fp32 on the converged grid: Table 1's MNIST grid trained twice, once per precision.

The grid is ``table1.py``'s (NECST / ABF / IABF x eps 0.1-0.4 x ``--seeds`` seeds, 100 bits, IABF's lambda
chosen on validation at seed 0, today's defaults: onecycle250, 600k images = 75 epochs, st), trained by
``table1.run_dataset`` with ``precision`` fp32 and bf16, the records of each in its own folder
(``--runs``/fp32, ``--runs``/bf16; a rerun reuses them). The same seeds give both precisions the same
initial weights, batch order, training draws and test draws, so each cell is compared paired: the
difference of the seed means, and whether it lies within the seed spread (the larger of the two
precisions' standard deviations over the seeds), with the paired per-image test of ``table1.paired``.
Each grid's wall time is measured when it trains here (the issue's target: the bf16 grid, with the
lambda selection, in at most 20 minutes on the 2-core machine) and compared with the committed
``table1.md`` (its MNIST seeds).

    python -m benchmarks.precision --ensembles --jobs 2        # both grids (about 10 + 25 min on 2 AMX cores)
    python -m benchmarks.precision --quick                     # one eps, one seed, one epoch
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks import runlib, table1

PRECISIONS = ("fp32", "bf16")


def grid(args, precision: str, source) -> tuple[dict, float | None, list[str]]:
    """Train (or reuse) one precision's grid: its records by role (``table1.run_dataset``'s ``main``,
    ``selection``, ``chosen``), the wall seconds (``None`` when nothing was trained here) and the names
    left untrained."""
    from commsim.core.protocol import Budget

    runs = args.runs / precision
    done = runlib.load_done(runs)
    before = len(done)
    train = {"dataset": "mnist", "bits": 100, "recipe": args.recipe, "estimator": args.estimator, "precision": precision,
             "epochs": Budget(epochs=args.epochs).epochs_for(source.size("train"))}
    start = time.perf_counter()
    parts, left = table1.run_dataset(args, train, args.seeds, runs, done, runlib.parse_deadline(args.deadline),
                                     runlib.cluster_from_args(args), ablations=False)
    seconds = time.perf_counter() - start if len(done) > before else None
    return parts, seconds, left


def cell_stats(records: list[dict]) -> dict:
    tests = [r["test"] for r in records]
    return {"n": len(tests), "mean": statistics.mean(tests) if tests else float("nan"),
            "sd": statistics.stdev(tests) if len(tests) > 1 else float("nan")}


def committed_table1(path: Path) -> dict:
    """``(codec, eps) -> (mean, sd, seeds)`` of the committed ``table1.csv``'s MNIST main rows, if there."""
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, comment="#")
    frame = frame[(frame["dataset"] == "mnist") & (frame["role"] == "main")]
    return {(c, float(e)): (g["test"].mean(), g["test"].std(), len(g)) for (c, e), g in frame.groupby(["codec", "eps"])}


def compare(main: dict, committed: dict) -> pd.DataFrame:
    """One row per codec x eps: both precisions' mean and sd over seeds, bf16 - fp32, the paired test and
    whether the difference is within the seed spread; the committed table's mean beside them."""
    rows = []
    for codec in table1.CODECS:
        for eps in sorted({r["eps"] for r in main["fp32"] + main["bf16"]}):
            cells = {p: [r for r in main[p] if r["codec"] == codec and r["eps"] == eps] for p in PRECISIONS}
            if not all(cells.values()):
                continue
            s32, s16 = cell_stats(cells["fp32"]), cell_stats(cells["bf16"])
            p = table1.paired(cells["bf16"], cells["fp32"])
            spread = max(s32["sd"], s16["sd"]) if s32["n"] > 1 and s16["n"] > 1 else float("nan")  # one seed: no spread
            diff = s16["mean"] - s32["mean"]
            old = committed.get((codec, float(eps)))
            rows.append({"codec": codec, "eps": eps, "seeds": s32["n"],
                         "lam_fp32": cells["fp32"][0].get("lam"), "lam_bf16": cells["bf16"][0].get("lam"),
                         "fp32_mean": s32["mean"], "fp32_sd": s32["sd"], "bf16_mean": s16["mean"], "bf16_sd": s16["sd"],
                         "diff": diff, "spread": spread, "within_spread": None if math.isnan(spread) else bool(abs(diff) <= spread),
                         "paired_low": p.get("low"), "paired_high": p.get("high"), "wilcoxon_p": p.get("wilcoxon_p"),
                         "t_seeds_p": p.get("t_seeds_p"),
                         "table1_mean": old[0] if old else None, "table1_sd": old[1] if old else None,
                         "table1_seeds": old[2] if old else None,
                         "bf16_vs_table1_within": bool(abs(s16["mean"] - old[0]) <= max(old[1], s16["sd"])) if old else None})
    return pd.DataFrame(rows)


def report(args, frame: pd.DataFrame, seconds: dict[str, list[dict]], parts: dict[str, dict], left: dict[str, list[str]],
           load: str) -> list[str]:
    """``parts``: per precision, :func:`grid`'s records by role; ``left``: per precision, the trainings
    its grid still lacks (a deadline stopped them)."""
    chosen = {p: parts[p]["chosen"] for p in PRECISIONS}
    f = table1.fmt
    lines = ["# bf16 against fp32 on the converged Table 1 grid (MNIST, 100 bits)", "",
             f"Machine: {runlib.machine()}; load average {load}. Recipe {args.recipe} + {args.estimator}, the 600k-image "
             f"budget, {args.seeds} seeds, IABF's lambda chosen on validation (seed 0) in each grid, "
             f"{'batched ensembles' if args.ensembles else 'single trainings'}, {args.jobs} worker(s) of one thread. "
             "Test l2 per image, 3 test draws (table1.py's score).", ""]
    lines += ["## Wall time of each grid (40 trainings: 8 lambda-selection runs, then the rest)", ""]
    for p in PRECISIONS:
        runs = seconds.get(p) or []
        total = sum(s["seconds"] for s in runs)
        machines = list(dict.fromkeys(s["machine"] for s in runs))
        if not runs:
            text = "not measured (its records were trained elsewhere)"
        elif len(machines) > 1:  # runs on different machines add up to no one grid's wall time
            text = (" + ".join(f"{s['seconds']:.0f} s on {s['machine']}" for s in runs)
                    + f" ({total / 60:.1f} min in all): trained on {len(machines)} machines, so no one machine's wall time")
        else:
            text = (f"{total / 60:.1f} min ({total:.0f} s) wall on {machines[0]}, measured by the run(s) that trained it"
                    + (" (" + " + ".join(f"{s['seconds']:.0f}" for s in runs) + " s: a deadline split it)" if len(runs) > 1 else ""))
        lines.append(f"- {p}: {text}" + (f"; **incomplete**: {len(left[p])} trainings not started" if left.get(p) else ""))
    lines += ["", "## Per cell", "",
              "Within spread: |bf16 - fp32| at most the larger of the two seed standard deviations. The paired "
              "interval is the per-image mean difference bf16 - fp32 over the seeds (95 %), its p the Wilcoxon test "
              "over images, t p the paired t-test over the seeds' means.", ""]
    header = ["codec", "eps", "lambda fp32 / bf16", "fp32", "bf16", "bf16 - fp32", "within spread", "paired 95 % CI",
              "Wilcoxon p", "t p (seeds)", "table1.md (committed)"]
    body = []
    for _, r in frame.iterrows():
        lam = f"{r['lam_fp32']:g} / {r['lam_bf16']:g}" if pd.notna(r["lam_fp32"]) else "–"
        old = (f"{f(r['table1_mean'])} ± {f(r['table1_sd'])} ({int(r['table1_seeds'])} seeds)"
               if pd.notna(r["table1_mean"]) else "–")
        body.append([r["codec"], f"{r['eps']:g}", lam, f"{f(r['fp32_mean'])} ± {f(r['fp32_sd'])}",
                     f"{f(r['bf16_mean'])} ± {f(r['bf16_sd'])}", f"{r['diff']:+.3f}",
                     "– (one seed)" if pd.isna(r["within_spread"]) else ("yes" if r["within_spread"] else "**no**"),
                     f"[{r['paired_low']:+.3f}, {r['paired_high']:+.3f}]", table1.pvalue(r["wilcoxon_p"]),
                     table1.pvalue(r["t_seeds_p"]), old])
    lines += runlib.markdown_table(header, body)
    if len(frame):
        decided = frame.dropna(subset=["within_spread"])
        within = int(decided["within_spread"].astype(bool).sum())
        lines += ["", f"**{within} of {len(decided)} cells** have bf16 within the seed spread of fp32"
                  + (f" ({len(frame) - len(decided)} more with one seed on a side: no spread to judge by)" if len(decided) < len(frame) else "")
                  + "; "
                  f"bf16 - fp32 ranges {frame['diff'].min():+.3f} to {frame['diff'].max():+.3f} "
                  f"(mean {frame['diff'].mean():+.3f}); the largest relative difference is "
                  f"{(frame['diff'].abs() / frame['fp32_mean']).max() * 100:.2f} %."]
        old = frame.dropna(subset=["table1_mean"])
        if len(old):
            lines.append(f"Against the committed `table1.md` (another machine's bf16 and seeds): "
                         f"{int(old['bf16_vs_table1_within'].sum())} of {len(old)} cells of this bf16 grid within the larger "
                         f"seed spread; differences {(old['bf16_mean'] - old['table1_mean']).min():+.3f} to "
                         f"{(old['bf16_mean'] - old['table1_mean']).max():+.3f}.")
    if any(chosen[p] != chosen["fp32"] for p in PRECISIONS):
        lines.append(f"The lambda choice differs between the precisions: fp32 {chosen['fp32']}, bf16 {chosen['bf16']}.")
        lines += same_lambda(parts, chosen)
    lines += stops_of_misses(frame, parts)
    for p in PRECISIONS:
        if left.get(p):
            lines += ["", f"Not trained in the {p} grid (deadline): {', '.join(left[p])}."]
    return lines


def same_lambda(parts: dict[str, dict], chosen: dict[str, dict]) -> list[str]:
    """Where the precisions chose different lambdas, the lambda-selection runs (seed 0) at each lambda,
    fp32 against bf16: how much of the cell's difference is the choice rather than the precision."""
    lines = []
    for eps in sorted(chosen["fp32"]):
        if chosen["bf16"].get(eps) == chosen["fp32"][eps]:
            continue
        runs = {(p, r["lam"]): r["test"] for p in PRECISIONS for r in parts[p]["selection"] if r["eps"] == eps}
        pairs = [f"lambda {lam:g}: fp32 {table1.fmt(runs[('fp32', lam)])}, bf16 {table1.fmt(runs[('bf16', lam)])}"
                 for lam in sorted({lam for _, lam in runs}, reverse=True) if ("fp32", lam) in runs and ("bf16", lam) in runs]
        if pairs:
            lines.append(f"At eps {eps:g}, seed 0 (the selection runs): " + "; ".join(pairs) + ".")
    return lines


def stops_of_misses(frame: pd.DataFrame, parts: dict[str, dict]) -> list[str]:
    """For each cell not within the seed spread, how each seed's training ended on each side (best
    epoch / epochs run, plateau or budget): an early plateau stop is a cause a precision does not explain."""
    lines = []
    for _, r in frame[frame["within_spread"].eq(False)].iterrows():
        sides = []
        for p in PRECISIONS:
            runs = sorted((x for x in parts[p]["main"] if x["codec"] == r["codec"] and x["eps"] == r["eps"]), key=lambda x: x["seed"])
            sides.append(f"{p} " + ", ".join(f"s{x['seed']} {table1.fmt(x['test'])} (best {x['best_epoch']}/{x['epochs_run']} "
                                             f"{x['stop']})" for x in runs))
        lines.append(f"{r['codec']} at eps {r['eps']:g}, not within spread: " + "; ".join(sides) + ".")
    return ["", *lines] if lines else []


def main(argv=None) -> int:
    from commsim.learned.training import DEFAULT_ESTIMATOR, DEFAULT_RECIPE

    parser = runlib.benchmark_parser(__file__, __doc__, quick="one eps, one seed, one epoch", threads=False)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="budget per model (default: the 600k-image budget)")
    parser.add_argument("--eps", type=float, nargs="+", default=table1.PAPER_EPS)
    parser.add_argument("--lambdas", type=float, nargs="+", default=table1.LAMBDAS)
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-threaded training processes")
    parser.add_argument("--deadline", default=None, help="HH:MM (UTC): start no training after it")
    parser.add_argument("--runs", type=Path, default=None, help="folder of the records, one subfolder per precision")
    parser.add_argument("--table1", type=Path, default=Path(__file__).parent / "results" / "table1.csv",
                        help="the Table 1 CSV to set beside (default: the committed one)")
    runlib.add_executor_options(parser)
    args = runlib.parse_args(parser, argv)
    args.recipe, args.estimator = DEFAULT_RECIPE, DEFAULT_ESTIMATOR
    if args.quick:
        args.epochs, args.seeds, args.eps, args.lambdas = 1, 1, [0.2], [0.01]
    if not (1 <= args.seeds <= 100 and 1 <= args.jobs <= 64 and all(0 < e <= 0.5 for e in args.eps)):
        return runlib.usage_error(ValueError("--seeds must be in [1, 100], --jobs in [1, 64], eps in (0, 0.5]"))
    from commsim.data import load_dataset

    source = load_dataset("mnist")
    args.runs = args.runs or args.out / ("precision_runs_quick" if args.quick else "precision_runs")
    load_before = runlib.load_average()
    parts, seconds, left = {}, {}, {}
    for precision in ("bf16", "fp32"):  # bf16 first: the issue's timed grid
        parts[precision], seconds[precision], left[precision] = grid(args, precision, source)
    frame = compare({p: parts[p]["main"] for p in PRECISIONS}, committed_table1(args.table1))
    timing = args.runs / "timing.json"  # each grid's wall time, kept from the run that trained it
    # precision -> [{"seconds": wall seconds, "machine": runlib.machine()}] of each run that trained some of it
    spans = json.loads(timing.read_text()) if timing.is_file() else {}
    for p, s in seconds.items():
        if s is not None:
            spans[p] = [*spans.get(p, []), {"seconds": s, "machine": runlib.machine()}]
    args.runs.mkdir(parents=True, exist_ok=True)
    timing.write_text(json.dumps(spans))
    args.output.csv(frame)
    args.output.report(report(args, frame, spans, parts, left, f"{load_before} before, {runlib.load_average()} after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
