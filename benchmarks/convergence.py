"""Convergence of NECST training: validation and test distortion against training seconds.

NECST, MNIST, 100 bits, BSC at ``--eps`` (train = test eps), ``--seeds`` seeds per series:

- ``paper+vimco``: the old recipe (constant Adam 1e-3, VIMCO K = 5), capped at ``--old-epochs``;
- ``onecycle+st`` / ``onecycle+gumbel``: the new recipe, ``--epochs`` epochs (default 100, the
  ``TrainConfig`` default: patience 20), with the pathwise estimators;
- ``onecycle+vimco``: the new recipe with VIMCO, ``--vimco-epochs`` (about the same seconds as the others);
- ``onecycle+st, 2 threads``: the first eps, seed 0, torch using both cores (run alone);
- ``onecycle+st, reference``: ``--reference-epochs`` epochs at each eps, seed 0 (the converged score).

Each epoch records wall and CPU seconds (``time.process_time()`` of the training process: training +
validation; with one torch thread on an uncontended core the two agree, on a shared machine CPU seconds
are the fairer clock) and the test distortion of the current weights (one draw). At the end, the
best-validation weights are tested over 3 channel draws (and the first draw alone). Runs are the JSON
records of ``runlib.py`` under ``--runs``; records of the same configuration in ``--reuse`` folders
(by default Table 1's) are used instead of training again. Writes ``convergence.md``, ``convergence.csv``
(one row per run and epoch) and ``convergence.png``; ``--quick`` writes ``convergence_quick.*`` in under a minute.

    python -m benchmarks.convergence --jobs 2 --deadline 13:10
    python -m benchmarks.convergence --quick --out /tmp/conv
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import runlib
from benchmarks.runlib import run_specs, spec

ANCHOR = 16.45
"""Test l2 of NECST after 200 epochs of the old recipe at eps 0.1 (786 s on one thread; table1_previous_30epochs.md)."""
TARGET_SECONDS = 120.0
SERIES_STYLE = {"paper+vimco": "tab:red", "onecycle+st": "tab:blue", "onecycle+gumbel": "tab:green",
                "onecycle+vimco": "tab:orange", "onecycle+st, 2 threads": "tab:purple", "onecycle+st, reference": "black"}


def series_of(r: dict, epochs: int) -> str:
    """The series of a run (``epochs``: the budget of the onecycle+st series; another is the reference)."""
    name = f"{r['recipe']}+{r['estimator']}"
    if r["threads"] != 1:
        return f"{name}, {r['threads']} threads"
    return f"{name}, reference" if name == "onecycle+st" and r["epochs"] != epochs else name


def plan(args) -> list[list[dict]]:
    """The runs in priority order, as groups run one after the other (a 2-thread run alone)."""
    def series(eps, seeds):
        out = []
        for seed in seeds:
            out += [spec("necst", eps, seed, recipe="paper", estimator="vimco", epochs=args.old_epochs),
                    spec("necst", eps, seed, recipe="onecycle", estimator="vimco", epochs=args.vimco_epochs),
                    spec("necst", eps, seed, recipe="onecycle", estimator="gumbel", epochs=args.epochs),
                    spec("necst", eps, seed, recipe="onecycle", estimator="st", epochs=args.epochs)]
        return out

    first, rest = args.eps[0], args.eps[1:]
    # one pool for seed 0 of the first eps, the references, then the other seeds (priority order, no idle
    # worker between them); the 2-thread run alone; then the other eps
    groups = [series(first, [0]) + [spec("necst", e, 0, recipe="onecycle", estimator="st", epochs=args.reference_epochs)
                                    for e in args.eps] + series(first, range(1, args.seeds))]
    groups.append([spec("necst", first, 0, recipe="onecycle", estimator="st", epochs=args.epochs, threads=2)])
    for e in rest:
        groups.append(series(e, [0]) + series(e, range(1, args.seeds)))
    return groups


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="2 epochs, one seed, one eps", threads=False)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100, help="budget of onecycle+st/gumbel (default 100)")
    parser.add_argument("--vimco-epochs", type=int, default=40, help="budget of onecycle+vimco (default 40)")
    parser.add_argument("--old-epochs", type=int, default=50, help="cap of the old recipe paper+vimco (default 50)")
    parser.add_argument("--reference-epochs", type=int, default=300, help="budget of the converged reference (seed 0)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-threaded training processes")
    parser.add_argument("--deadline", default=None, help="HH:MM (UTC): start no training after it")
    parser.add_argument("--runs", type=Path, default=None, help="folder of per-run JSON records (resume)")
    parser.add_argument("--reuse", type=Path, nargs="*", default=None,
                        help="other runs folders whose records of the same configuration count (default: Table 1's)")
    runlib.add_executor_options(parser)
    args = runlib.parse_args(parser, argv)
    if args.quick:
        args.eps, args.seeds, args.epochs, args.vimco_epochs, args.old_epochs, args.reference_epochs = [0.1], 1, 2, 1, 1, 3
    try:
        if not (all(0 < e <= 0.5 for e in args.eps) and 1 <= args.seeds <= 100 and 1 <= args.jobs <= 64
                and all(1 <= v <= 10_000 for v in (args.epochs, args.vimco_epochs, args.old_epochs, args.reference_epochs))):
            raise ValueError("eps must be in (0, 0.5], --seeds in [1, 100], --jobs in [1, 64], epochs in [1, 10000]")
        deadline = runlib.parse_deadline(args.deadline)
        cluster = runlib.cluster_from_args(args)
    except ValueError as exc:
        return runlib.usage_error(exc)
    output = args.output
    runs = args.runs or args.out / f"{output.name}_runs"
    reuse = args.reuse if args.reuse is not None else ([] if args.quick else [args.out / "table1_runs_converged"])
    args.reuse_folders = [f for f in reuse if Path(f).is_dir()]
    runs.mkdir(parents=True, exist_ok=True)
    done = runlib.load_done(runs, *reuse)
    groups = plan(args)
    left = []
    for group in groups:
        jobs = 1 if any(s["threads"] > 1 for s in group) else args.jobs
        left += run_specs(group, runs, jobs, done, deadline, cluster, ensembles=args.ensembles)
    records = [done[s["name"]] for group in groups for s in group if s["name"] in done]
    curves = curves_frame(records, args.epochs)
    output.csv(curves)
    summary = summary_frame(records, args.epochs)
    output.csv(summary, "_summary")
    figure(curves, output.path(".png"))
    output.report(markdown(args, summary, curves, left, output.name))
    return 0


def curves_frame(records: list[dict], epochs: int) -> pd.DataFrame:
    rows = []
    for r in records:
        wall = np.cumsum([h["train_seconds"] + h["val_seconds"] for h in r["history"]])
        cpu = np.cumsum([h["cpu_seconds"] for h in r["history"]])
        for h, w, c in zip(r["history"], wall, cpu):
            rows.append({"series": series_of(r, epochs), "eps": r["eps"], "seed": r["seed"], "epochs": r["epochs"],
                         "threads": r["threads"], "epoch": h["epoch"], "wall_seconds": w, "cpu_seconds": c,
                         "lr": h["lr"], "train_loss": h["train_loss"], "val_l2": h["val_l2_per_image"],
                         "test_l2_single": h["test_l2_per_image"]})
    return pd.DataFrame(rows)


def summary_frame(records: list[dict], epochs: int) -> pd.DataFrame:
    rows = []
    for r in records:
        hist = r["history"]
        reach = next((sum(h["cpu_seconds"] for h in hist[:i + 1]) for i, h in enumerate(hist)
                      if h["test_l2_per_image"] <= ANCHOR), float("nan"))
        rows.append({"series": series_of(r, epochs), "eps": r["eps"], "seed": r["seed"], "epochs": r["epochs"],
                     "threads": r["threads"], "epochs_run": r["epochs_run"], "best_epoch": r["best_epoch"], "stop": r["stop"],
                     "cpu_seconds": r["train_cpu_seconds"], "wall_seconds": r["train_seconds"], "val": r["val"],
                     "test": r["test"], "test_single": r["test_single"], "cpu_seconds_to_anchor": reach,
                     "started_utc": r["started_utc"], "load_before": r["load_before"], "load_after": r["load_after"]})
    return pd.DataFrame(rows)


def figure(curves: pd.DataFrame, path: Path) -> None:
    plt = runlib.pyplot()
    eps_values = sorted(curves["eps"].unique()) if not curves.empty else []
    fig, axes = plt.subplots(max(len(eps_values), 1), 2, figsize=(11, 4.2 * max(len(eps_values), 1)), squeeze=False)
    for row, eps in enumerate(eps_values):
        part = curves[curves["eps"] == eps]
        for col, (column, title) in enumerate((("val_l2", "validation l2 (3 draws)"), ("test_l2_single", "test l2 (1 draw, current weights)"))):
            ax = axes[row][col]
            for series, group in part.groupby("series", sort=False):
                clock = "wall_seconds" if "threads" in series else "cpu_seconds"
                for i, (_, run) in enumerate(group.groupby("seed")):
                    ax.plot(run[clock], run[column], color=SERIES_STYLE.get(series, "grey"), lw=1, alpha=0.8,
                            ls="--" if "threads" in series else "-",
                            label=(series + (" (x: wall s)" if "threads" in series else "")) if i == 0 else None)
            if eps == 0.1:
                ax.axhline(ANCHOR, color="grey", ls=":", lw=1, label=f"old recipe, 200 epochs: {ANCHOR}")
                ax.axvline(TARGET_SECONDS, color="grey", ls="-.", lw=0.8, label=f"{TARGET_SECONDS:.0f} s")
            low = part[column].quantile(0.02) if not part.empty else 0
            ax.set_ylim(low * 0.97, low * 1.6)
            ax.set_title(f"NECST, eps {eps:g}: {title}")
            ax.set_xlabel("training CPU seconds (this process: training + validation)")
            ax.set_ylabel("l2 per image")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    runlib.save_figure(fig, path)


def mean_std(values) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def markdown(args, summary: pd.DataFrame, curves: pd.DataFrame, left: list[str], name: str) -> list[str]:
    loads = list(summary["load_before"]) + list(summary["load_after"]) if not summary.empty else [0.0]
    lines = [
        "# Convergence of NECST training (MNIST, 100 bits): distortion against training seconds", "",
        f"Settings: --eps {' '.join(f'{e:g}' for e in args.eps)} "
        f"--seeds {args.seeds} --epochs {args.epochs} --vimco-epochs {args.vimco_epochs} --old-epochs {args.old_epochs} "
        f"--reference-epochs {args.reference_epochs} --jobs {args.jobs}; {runlib.machine()}, one torch thread per training and {args.jobs} at a time (the 2-thread run alone); load "
        f"average {min(loads):.1f} to {max(loads):.1f} at the starts and ends of the trainings.",
        "",
        f"Old recipe (`paper` + `vimco`: constant Adam 1e-3, VIMCO K = 5) capped at {args.old_epochs} epochs "
        f"(its 200-epoch score at eps 0.1, {ANCHOR}, is the dotted line). New recipe: `onecycle`, {args.epochs} epochs "
        f"with st / gumbel, {args.vimco_epochs} with vimco (about the same seconds), plateau stop after 20 epochs. "
        "Seconds are this process's CPU seconds of training + validation (`time.process_time()`); the test curve "
        "(current weights, one draw) is not counted. Final test: best-validation weights, mean over 3 channel draws "
        "(test seeds 0-2) and the seed-0 draw alone ('single').",
        f"Figure: [{name}.png]({name}.png); per-epoch data: `{name}.csv`; per-run: `{name}_summary.csv`.", "",
    ]
    if left:
        lines += [f"**Not run (deadline):** {', '.join(left)}.", ""]
    lines += ["| eps | series | budget | seeds | best epoch / run | CPU s | wall s | test (3 draws) | single draw | "
              f"CPU s to test <= {ANCHOR} |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (eps, series, epochs), g in summary.groupby(["eps", "series", "epochs"], sort=False):
        lines.append(f"| {eps:g} | {series} | {epochs} | {len(g)} | {g['best_epoch'].mean():.0f} / {g['epochs_run'].mean():.0f} | "
                     f"{g['cpu_seconds'].mean():.0f} | {g['wall_seconds'].mean():.0f} | {mean_std(g['test'])} | "
                     f"{mean_std(g['test_single'])} | {mean_std(g['cpu_seconds_to_anchor']) if eps == 0.1 else '–'} |")
    lines += ["", "## Targets", ""]
    first = summary[(summary["eps"] == 0.1) & (summary["threads"] == 1) & (summary["epochs"] == args.epochs)
                    & summary["series"].isin(["onecycle+st", "onecycle+gumbel"])]
    for series, g in first.groupby("series"):
        ok = (g["test"] <= ANCHOR) & (g["cpu_seconds"] <= TARGET_SECONDS)
        lines.append(f"- NECST eps 0.1, {series}, {len(g)} seeds: test (3 draws) "
                     + ", ".join(f"{t:.2f} (single draw {t1:.2f}) in {c:.0f} CPU s / {w:.0f} wall s"
                                 for t, t1, c, w in zip(g["test"], g["test_single"], g["cpu_seconds"], g["wall_seconds"]))
                     + f": target (<= {ANCHOR} in <= {TARGET_SECONDS:.0f} CPU s) {'met' if ok.all() else 'NOT met'} "
                     f"(met by {int(ok.sum())} of {len(g)} seeds).")
    for eps in args.eps:
        default = summary[(summary["eps"] == eps) & (summary["series"] == "onecycle+st") & (summary["epochs"] == args.epochs)
                          & (summary["threads"] == 1)]
        ref = summary[(summary["eps"] == eps) & (summary["series"] == "onecycle+st, reference")]
        if default.empty or ref.empty:
            continue
        conv = float(ref["test"].iloc[0])
        d0 = default[default["seed"] == 0]["test"]
        gaps = (default["test"] - conv) / conv * 100
        lines.append(f"- Default budget (onecycle+st, {args.epochs} epochs, patience 20) at eps {eps:g}: seed 0 "
                     f"{float(d0.iloc[0]) if not d0.empty else float('nan'):.2f}, seeds {mean_std(default['test'])}, against "
                     f"{conv:.2f} after {int(ref['epochs_run'].iloc[0])} of {int(ref['epochs'].iloc[0])} epochs (seed 0, best epoch "
                     f"{int(ref['best_epoch'].iloc[0])}): gap " + ", ".join(f"{g:+.1f} %" for g in gaps)
                     + f" -> {'within' if (gaps.abs() <= 5).all() else 'NOT within'} 5 %.")
    if not args.quick:
        reused = ("The onecycle+st runs found in " + ", ".join(f"`{Path(f).name}`" for f in args.reuse_folders)
                  + " (same configuration) were reused, not retrained." if args.reuse_folders else
                  "Every run was trained for this report (no records reused).")
        lines += ["", "## Notes", "",
                  f"- Caps chosen for time: the old recipe at {args.old_epochs} epochs (past the {TARGET_SECONDS:.0f} s mark), "
                  f"onecycle+vimco at {args.vimco_epochs}, the converged reference at {args.reference_epochs} epochs "
                  f"(seed 0). {reused}",
                  "- Training flushes denormal floats to zero (`commsim.core.device.denormals_flushed`, since 26 Nov "
                  "2026). Before, CPU seconds per NECST epoch grew from about 0.8 to 1.25 after the first ~15 epochs "
                  "and the same onecycle+st runs at eps 0.1 took 110-120 CPU s, with the same test scores (14.37 / "
                  "14.31 / 14.24; that report is in git history, commit e0c25ee).",
                  "- Reading (26 Nov 2026 rerun, idle machine but for its own 2 trainings; this line is not "
                  "regenerated): every new-recipe pathwise run reaches 14.2-14.4 (3 draws) at eps 0.1 in 74-83 CPU s, "
                  "and its current weights pass 16.45 after 32 (st) and 34 (gumbel) CPU s on average; the old recipe is at 18.2 after 50 epochs "
                  "(100 s) and onecycle+vimco at 17.8 after 40 (85 s). gumbel and st end within 0.05 of each other at "
                  "both eps. Both cores (2 threads) take the same run from 77 to 46 wall s (91 CPU s). The default "
                  "budget is within 1.6 % (eps 0.1) and 2.1 % (eps 0.3) of a 300-epoch run, whose best epochs (288, "
                  "290) are again near its end: with a one-cycle schedule the best epoch sits where the rate has "
                  "annealed, so the budget, not a plateau stop, ends these runs."]
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
