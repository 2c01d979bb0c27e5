"""Figure 2 of the IABF paper (Song et al., AAAI 2020), measured: does NECST's validation distortion
overfit or swing while IABF's stays stable?

The paper shows, on CIFAR-10 with its constant-rate recipe, NECST's validation distortion "with obvious
instability and overfitting" and IABF's stable. Here: MNIST (the embedded digits), 100 bits, BSC, NECST and
IABF (lambda ``--lam``, Table 1's choice) at ``--eps`` (default 0.1 and 0.3), ``--seeds`` seeds, two recipes:

- ``paper``: the paper's (and the NECST code's) recipe: constant Adam 1e-3, batch 100, VIMCO (K = 5), no
  plateau stop, for ``--paper-epochs`` epochs (the NECST code's default is 500; the committed run's cap is
  in its report), validation with 1 channel draw per epoch (the recipe's);
- ``ours``: the library's default (onecycle250 + st, 600,000 images seen = 75 epochs, plateau stop),
  validation over 3 draws; the records of these runs are Table 1's when its runs folder has them.

Each epoch records the validation distortion (the recipe's draws; the curve the best epoch is chosen on)
and the test distortion of the current weights (one draw, test seed 0). Per run the report gives the best
validation epoch, the validation and test distortion at the best and at the last epoch (overfitting = last
minus best; the best epoch is what every commsim training keeps) and the epoch-to-epoch swing of the
validation curve over the second half of the run (median absolute change, in % of its level:
instability). Runs train as batched ensembles with ``--ensembles`` (each member keeps its own streams,
plateau stop and best epoch, ``runlib.run_specs``). Writes ``figure2.md``, ``figure2.csv`` (one row per run
and epoch), ``figure2_runs.csv`` (one row per run) and ``figure2.png``.

    python -m benchmarks.figure2 --ensembles --jobs 2 --paper-epochs 120 --deadline 05:30
    python -m benchmarks.figure2 --quick --out /tmp/f2
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import runlib
from benchmarks.runlib import run_specs, spec

CODECS = ("necst", "iabf")
RECIPE_STYLE = {"paper": "tab:red", "ours": "tab:blue"}
CODEC_STYLE = {"necst": "-", "iabf": "--"}


def plan(args) -> dict[str, list[dict]]:
    """The runs of each recipe: codecs x eps x seeds."""
    lam = lambda codec: {"lam": args.lam} if codec == "iabf" else {}
    grid = [(c, e, s) for c in CODECS for e in args.eps for s in range(args.seeds)]
    return {"paper": [spec(c, e, s, recipe="paper", estimator="vimco", epochs=args.paper_epochs, precision=args.precision, **lam(c))
                      for c, e, s in grid],
            "ours": [spec(c, e, s, epochs=args.our_epochs, precision=args.precision, **lam(c)) for c, e, s in grid]}


def instability(values: list[float]) -> float:
    """Median absolute epoch-to-epoch change of the second half of a curve, in % of the half's median."""
    half = np.asarray(values[len(values) // 2:], dtype=float)
    if half.size < 3:
        return float("nan")
    return float(np.median(np.abs(np.diff(half))) / np.median(half) * 100)


def run_summary(record: dict, recipe: str) -> dict:
    """One run: the best (validation) and last epochs, their validation and one-draw test distortion."""
    metric = record["metric"]
    hist = record["history"]
    val = [h[f"val_{metric}"] for h in hist]
    test = [h.get(f"test_{metric}", float("nan")) for h in hist]
    best = int(np.argmin(val))
    return {"recipe": recipe, "codec": record["codec"], "eps": record["eps"], "seed": record["seed"],
            "epochs_run": len(hist), "stop": record["stop"], "best_epoch": best + 1,
            "val_best": val[best], "val_last": val[-1], "val_overfit": val[-1] - val[best],
            "val_overfit_pct": (val[-1] - val[best]) / val[best] * 100,
            "test_at_best": test[best], "test_last": test[-1], "test_overfit": test[-1] - test[best],
            "test_min_epoch": int(np.nanargmin(test)) + 1 if not all(math.isnan(t) for t in test) else None,
            "val_swing_pct": instability(val), "test_final_3draws": record["test"],
            "train_seconds": record["train_seconds"], "ensemble": record.get("ensemble"), "end_slope": end_slope(val)}


def curves_frame(records: dict[str, list[dict]]) -> pd.DataFrame:
    rows = []
    for recipe, group in records.items():
        for r in group:
            per_epoch = r.get("train_images") or 8000
            for h in r["history"]:
                rows.append({"recipe": recipe, "codec": r["codec"], "eps": r["eps"], "seed": r["seed"], "epoch": h["epoch"],
                             "images_seen": h["epoch"] * per_epoch, "lr": h["lr"], "train_loss": h["train_loss"],
                             "val": h[f"val_{r['metric']}"], "test_single": h.get(f"test_{r['metric']}")})
    return pd.DataFrame(rows)


def figure(curves: pd.DataFrame, path: Path) -> None:
    plt = runlib.pyplot()
    eps_values = sorted(curves["eps"].unique()) if not curves.empty else []
    fig, axes = plt.subplots(max(len(eps_values), 1), 2, figsize=(11, 4.2 * max(len(eps_values), 1)), squeeze=False)
    for row, eps in enumerate(eps_values):
        part = curves[curves["eps"] == eps]
        for col, (column, title) in enumerate((("val", "validation l2 (the recipe's draws)"),
                                               ("test_single", "test l2 (1 draw, current weights)"))):
            ax = axes[row][col]
            for (recipe, codec), group in part.groupby(["recipe", "codec"], sort=False):
                for i, (_, run) in enumerate(group.groupby("seed")):
                    ax.plot(run["images_seen"] / 1e6, run[column], color=RECIPE_STYLE[recipe], ls=CODEC_STYLE[codec], lw=1,
                            alpha=0.8, label=f"{codec}, {recipe} recipe" if i == 0 else None)
            values = part[column].dropna()
            if not values.empty:
                low = values.quantile(0.01)
                ax.set_ylim(low * 0.97, low * 1.5)
            ax.set_title(f"eps {eps:g}: {title}")
            ax.set_xlabel("training images seen (millions)")
            ax.set_ylabel("l2 per image")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    runlib.save_figure(fig, path)


def mean_sd(values, digits: int = 2) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"


def verdict(summary: pd.DataFrame, recipe: str, codec: str) -> str:
    """How a codec's validation curve behaves under a recipe: where its best epoch lies and what it loses by the end."""
    part = summary[(summary["recipe"] == recipe) & (summary["codec"] == codec)]
    if part.empty:
        return "not run"
    late = (part["best_epoch"] >= 0.9 * part["epochs_run"]).mean()
    return (f"best epoch at {part['best_epoch'].mean():.0f} of {part['epochs_run'].mean():.0f} on average "
            f"({late * 100:.0f} % of runs in the last tenth); last minus best validation {part['val_overfit'].mean():+.2f} "
            f"(max {part['val_overfit'].max():+.2f}, {part['val_overfit_pct'].max():.1f} %); swing {part['val_swing_pct'].median():.2f} %")


def markdown(args, summary: pd.DataFrame, left: list[str]) -> list[str]:
    lines = ["# Figure 2 of the IABF paper, measured: validation distortion during training, NECST and IABF", "",
             f"Settings: --eps {' '.join(f'{e:g}' for e in args.eps)} --seeds {args.seeds} --lam {args.lam:g} "
             f"--paper-epochs {args.paper_epochs} --precision {args.precision}{' --ensembles' if args.ensembles else ''} --jobs {args.jobs}.",
             f"Machine: {runlib.machine()}; one torch thread per training process, {args.jobs} at a time.", "",
             f"MNIST (embedded digits, 8,000 training images), 100 bits, BSC at the training eps. Recipes: **paper** = constant "
             f"Adam 1e-3, batch 100, VIMCO K = 5, no plateau stop, {args.paper_epochs} epochs (the NECST code's default is 500: "
             f"see the slopes below for whether the curves were flat by then), 1 validation draw per epoch; **ours** = onecycle250 + st, "
             "75 epochs with the plateau stop, 3 validation draws. Test curve: one draw (test seed 0) of the current weights, "
             "for the figure only. The paper's Figure 2 is on CIFAR-10, whose files are not on this machine.", "",
             "![validation and test curves](figure2.png)", ""]
    if left:
        lines += [f"**Not run (deadline):** {', '.join(left)}.", ""]
    if summary.empty:
        return lines + ["No finished runs yet."]
    lines += ["## Per recipe, codec and eps (mean ± sd over seeds)", "",
              "`val best` / `val last`: validation l2 at the best and at the last epoch; `test at best` / `test last`: the one-draw "
              "test curve at those epochs; `swing`: median absolute epoch-to-epoch change of the validation curve over the "
              "second half of the run, in % of its level; `final test`: the kept (best-validation) weights over 3 test draws.", "",
              "| recipe | codec | eps | seeds | epochs run | best epoch | val best | val last | last - best | test at best | test last | swing % | final test |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (recipe, codec, eps), g in summary.groupby(["recipe", "codec", "eps"], sort=False):
        lines.append(f"| {recipe} | {codec} | {eps:g} | {len(g)} | {g['epochs_run'].mean():.0f} | {mean_sd(g['best_epoch'], 0)} | "
                     f"{mean_sd(g['val_best'])} | {mean_sd(g['val_last'])} | {mean_sd(g['val_overfit'])} | "
                     f"{mean_sd(g['test_at_best'])} | {mean_sd(g['test_last'])} | {mean_sd(g['val_swing_pct'])} | "
                     f"{mean_sd(g['test_final_3draws'])} |")
    lines += ["", "## Slope at the end (is the curve flat?)", "",
              "Change of the validation l2 over the last 10 % of the epochs run (mean over seeds; negative = still improving).", "",
              "| recipe | codec | eps | change over the last 10 % of epochs |", "|---|---|---|---|"]
    for (recipe, codec, eps), g in summary.groupby(["recipe", "codec", "eps"], sort=False):
        lines.append(f"| {recipe} | {codec} | {eps:g} | {g['end_slope'].mean():+.2f} |")
    lines += ["", "## Verdicts per recipe and codec", ""]
    for recipe in ("paper", "ours"):
        for codec in CODECS:
            lines.append(f"- {recipe} recipe, {codec}: {verdict(summary, recipe, codec)}.")
    return lines + [""]


def end_slope(val: list[float]) -> float:
    """Change of a validation curve over its last 10 % of epochs (negative: still improving)."""
    k = max(1, len(val) // 10)
    return float(val[-1] - val[-1 - k]) if len(val) > k else float("nan")


def main(argv=None) -> int:
    from commsim.core.device import resolve_precision
    from commsim.core.protocol import Budget
    from commsim.data import load_dataset

    parser = runlib.benchmark_parser(__file__, __doc__, quick="one eps, one seed, 2 epochs per recipe", threads=False)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lam", type=float, default=0.01, help="IABF's lambda (default 0.01, Table 1's choice at eps 0.1-0.3)")
    parser.add_argument("--paper-epochs", type=int, default=500, help="budget of the paper recipe (default 500, the NECST code's)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="training precision (default auto)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-threaded training processes")
    parser.add_argument("--deadline", default=None, help="HH:MM (UTC): start no training after it")
    parser.add_argument("--runs", type=Path, default=None, help="folder of per-training JSON records (resume)")
    parser.add_argument("--reuse", type=Path, nargs="*", default=None,
                        help="folders of records to reuse (default: Table 1's runs, for the 'ours' recipe)")
    runlib.add_executor_options(parser)
    args = runlib.parse_args(parser, argv)
    args.our_epochs = Budget().epochs_for(load_dataset("mnist").size("train"))
    if args.quick:
        args.eps, args.seeds, args.paper_epochs, args.our_epochs = [0.2], 1, 2, 2
    try:
        if not (1 <= args.paper_epochs <= 10_000 and 1 <= args.seeds <= 100 and 1 <= args.jobs <= 64):
            raise ValueError("--paper-epochs must be in [1, 10000], --seeds in [1, 100], --jobs in [1, 64]")
        if not all(0 < e <= 0.5 for e in args.eps) or not args.lam > 0:
            raise ValueError("eps values must be in (0, 0.5] and --lam positive")
        args.precision = resolve_precision(args.precision)
        deadline = runlib.parse_deadline(args.deadline)
        cluster = runlib.cluster_from_args(args)
    except ValueError as exc:
        return runlib.usage_error(exc)
    runs = args.runs or args.out / f"{args.output.name}_runs"
    runs.mkdir(parents=True, exist_ok=True)
    reuse = args.reuse if args.reuse is not None else ([] if args.quick else [args.out / "table1_runs_converged"])
    done = runlib.load_done(runs, *[f for f in reuse if Path(f).is_dir()])
    specs = plan(args)
    left = []
    for recipe in ("ours", "paper"):  # ours first: mostly reused, and the short runs
        left += run_specs(specs[recipe], runs, args.jobs, done, deadline, cluster, ensembles=args.ensembles)
    records = {recipe: [done[s["name"]] for s in group if s["name"] in done] for recipe, group in specs.items()}
    summary = pd.DataFrame([run_summary(r, recipe) for recipe, group in records.items() for r in group])
    curves = curves_frame(records)
    args.output.csv(curves)
    args.output.csv(summary, part="_runs")
    figure(curves, args.output.path(".png"))
    args.output.report(markdown(args, summary, left))
    return 0


if __name__ == "__main__":
    sys.exit(main())
