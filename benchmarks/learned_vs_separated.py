"""The best learned code against the separated `vq+ldpc` and the old-recipe NECST, eps 0.05 to 0.4.

Issue 10's target: the best learned codec (NECST with the new recipe, onecycle + st, 100 epochs: the
Table 1 configuration) is below the separated ``vq+ldpc`` at 100 bits at every eps in 0.05..0.4 on the
embedded digits, and below NECST with the old recipe at every eps.

- NECST (new recipe): the JSON records of ``table1.py`` / ``runlib.py`` (``--runs``, by default Table 1's
  folder), trained at the test eps; the ones missing are trained here (``--seeds`` seeds, resumable).
  Test ``l2_per_image`` of the best-validation weights over 3 channel draws.
- ``vq+ldpc`` and the old-recipe NECST (constant Adam 1e-3 + VIMCO, 30 epochs, trained at the test
  eps): the committed sweep ``results/sweep_bsc/results.csv`` (2 evaluation seeds, 1,000 test images
  each). The old recipe's 200-epoch score is known at eps 0.1 only (16.45, the anchor of
  ``convergence.md``).

    python benchmarks/learned_vs_separated.py --jobs 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from runlib import add_executor_options, cluster_from_args, load_done, parse_deadline, run_specs, spec, write_report  # noqa: E402

EPS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
OLD_200_EPOCHS = {0.1: 16.45}


def verdict(below: bool, value: float) -> str:
    return "–" if pd.isna(value) else "yes" if below else "no"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1, help="NECST seeds per eps to train where missing (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-threaded training processes")
    parser.add_argument("--deadline", default=None, help="HH:MM (UTC): start no training after it")
    parser.add_argument("--runs", type=Path, default=HERE / "results" / "table1_runs_converged")
    parser.add_argument("--sweep", type=Path, default=HERE / "results" / "sweep_bsc" / "results.csv")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    add_executor_options(parser)
    args = parser.parse_args(argv)
    try:
        if not 1 <= args.seeds <= 100 or not 1 <= args.jobs <= 64:
            raise ValueError("--seeds must be in [1, 100] and --jobs in [1, 64]")
        if not args.sweep.is_file():
            raise ValueError(f"no sweep CSV at {args.sweep}; give --sweep")
        deadline = parse_deadline(args.deadline)
        cluster = cluster_from_args(args)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    sweep = pd.read_csv(args.sweep)
    done = load_done(args.runs)
    specs = [spec("necst", e, s) for e in EPS for s in range(args.seeds)]
    left = run_specs(specs, args.runs, args.jobs, done, deadline, cluster)

    def swept(codec: str, eps: float) -> float:
        rows = sweep[(sweep["codec"] == codec) & ((sweep["value"] - eps).abs() < 1e-9)]
        return float(rows["l2_per_image"].mean()) if len(rows) else float("nan")

    rows = []
    for e in EPS:
        records = [r for name, r in done.items() if r["codec"] == "necst" and abs(r["eps"] - e) < 1e-9
                   and name == spec("necst", e, r["seed"])["name"]]
        new = sum(r["test"] for r in records) / len(records) if records else float("nan")
        rows.append({"eps": e, "necst_new": new, "necst_new_seeds": len(records), "vq_ldpc": swept("vq+ldpc", e),
                     "necst_old_30": swept("necst", e), "necst_old_200": OLD_200_EPOCHS.get(e, float("nan"))})
    frame = pd.DataFrame(rows)
    frame["below_vq_ldpc"] = frame["necst_new"] < frame["vq_ldpc"]
    frame["below_old"] = (frame["necst_new"] < frame["necst_old_30"]) & ~(frame["necst_new"] >= frame["necst_old_200"])
    frame.to_csv(args.out / "learned_vs_separated.csv", index=False)

    measured = frame.dropna(subset=["necst_new"])
    lines = ["# The best learned code against vq+ldpc and the old-recipe NECST (MNIST, 100 bits, BSC)", "",
             "`python benchmarks/learned_vs_separated.py` (see its docstring). NECST, new recipe: onecycle + st, "
             "100 epochs, trained at the test eps, test over 3 channel draws (mean over its seeds). vq+ldpc and "
             "NECST with the old recipe (30 epochs): the committed sweep `sweep_bsc/results.csv` (2 evaluation "
             "seeds). Lower is better.", ""]
    if left:
        lines += [f"**Not run (deadline):** {', '.join(left)}.", ""]
    lines += ["| eps | NECST new recipe (seeds) | vq+ldpc | NECST old recipe, 30 epochs | old recipe, 200 epochs | "
              "below vq+ldpc | below old recipe |", "|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        def num(v):
            return "–" if pd.isna(v) else f"{v:.2f}"
        lines.append(f"| {r.eps:g} | {num(r.necst_new)} ({r.necst_new_seeds}) | {num(r.vq_ldpc)} | {num(r.necst_old_30)} | "
                     f"{num(r.necst_old_200)} | {verdict(r.below_vq_ldpc, r.necst_new)} | {verdict(r.below_old, r.necst_new)} |")
    complete = len(measured) == len(EPS)
    lines += ["", "Target (below vq+ldpc and below the old recipe at every eps in 0.05-0.4): "
              + ("**met**" if complete and frame["below_vq_ldpc"].all() and frame["below_old"].all() else
                 "**not met**" if complete else f"**not decided**: {len(EPS) - len(measured)} eps not measured") + ".",
              "", "The old recipe's scores are after 30 epochs; trained longer it gets better (at eps 0.1, the only "
              "eps where we have it, 16.45 after 200 epochs, still above the new recipe)."]
    write_report(args.out, "learned_vs_separated", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
