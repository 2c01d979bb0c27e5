"""The repository README's sweep of learned and separated codecs over the BSC, with today's defaults.

Runs the command line as a user would (``python -m commsim.cli``, so every training setting is the CLI's
default: recipe, budget, estimator, precision, IABF's lambda):

    commsim sweep --codec necst,iabf,vq+ldpc,pca+ldpc,vq+ideal --channel bsc --eps 0.05:0.4:0.05 \\
        --bits 100 --seeds 2 --jobs 2 --out OUT
    commsim plot OUT/results.csv

and writes ``OUT/sweep_bsc.md``: the commands, the training settings the rows record (the CSV's ``sweep``
column), the wall time and a table of the mean ``l2_per_image`` over the evaluation seeds per codec and eps.
``OUT`` (``--out``, default ``benchmarks/results/sweep_bsc``) then holds ``results.csv`` (one row per point,
1,000 test images each), ``curves.csv`` and ``distortion_vs_eps.png/.pdf`` (``commsim plot``) and
``recon_necst.png`` / ``recon_iabf.png`` (test digits and their reconstructions). The learned codecs train
on demand into the cache (``COMMSIM_HOME``; a fresh one makes every training here): one model per eps,
seed 0, trained at the test eps, the trainings of one codec as batched ensembles. A rerun resumes the CSV.
``vq+ideal`` is a reference (a capacity-achieving genie code), not a scheme; the strongest separated
schemes (polar CA-SCL, 5G NR LDPC, best-of) are in ``learned_vs_separated.py``.

    COMMSIM_HOME=$(mktemp -d) python -m benchmarks.sweep_bsc
    python -m benchmarks.sweep_bsc --quick     # necst and vq+ideal at eps 0.1, 0.3, 1 epoch, 50 images
"""
from __future__ import annotations

import shlex
import subprocess
import sys

import pandas as pd

from benchmarks import runlib
from commsim.core.device import resolve_precision
from commsim.learned.training import DEFAULT_ESTIMATOR, DEFAULT_RECIPE

CODECS = "necst,iabf,vq+ldpc,pca+ldpc,vq+ideal"
EPS = "0.05:0.4:0.05"
QUICK = ["--codec", "necst,vq+ideal", "--eps", "0.1,0.3", "--seeds", "1", "--epochs", "1", "--limit", "50"]


def commands(folder, quick: bool, jobs: int, resume: bool) -> list[list[str]]:
    """The ``commsim`` argument lists: the sweep into ``folder`` and its plot."""
    sweep = ["sweep", *(QUICK if quick else ["--codec", CODECS, "--eps", EPS, "--seeds", "2"]), "--channel", "bsc",
             "--bits", "100", "--jobs", str(jobs), "--out", str(folder), *(["--resume"] if resume else [])]
    return [sweep, ["plot", str(folder / "results.csv")]]


def mean_table(frame: pd.DataFrame) -> list[str]:
    """Report lines: mean ``l2_per_image`` over the evaluation seeds, one row per eps, one column per codec."""
    means = frame.groupby(["value", "codec"])["l2_per_image"].mean().unstack("codec")
    codecs = [c for c in frame["codec"].drop_duplicates() if c in means.columns]
    return runlib.markdown_table(["eps", *codecs], [[f"{eps:g}", *("–" if pd.isna(row[c]) else f"{row[c]:.2f}" for c in codecs)]
                                                    for eps, row in means.iterrows()])


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="necst and vq+ideal, 2 eps, 1 epoch, 50 test images")
    parser.set_defaults(out=runlib.RESULTS / "sweep_bsc")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes of the sweep (default 2)")
    args = runlib.parse_args(parser, argv)
    if not 1 <= args.jobs <= 64:
        return runlib.usage_error(ValueError(f"--jobs must be in [1, 64], got {args.jobs}"))
    folder = args.out / "quick" if args.quick else args.out
    csv = folder / "results.csv"
    cli = [sys.executable, "-m", "commsim.cli"]
    todo = commands(folder, args.quick, args.jobs, resume=csv.exists())
    before = runlib.load_average()
    for command in todo:
        done, wall, _ = runlib.timed(lambda: subprocess.run([*cli, *command]))
        if done.returncode:
            print(f"Error: commsim {command[0]} failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
        command.append(f"# {wall / 60:.1f} min")
    frame = pd.read_csv(csv)
    settings = sorted(set(frame.loc[frame["checkpoint"].notna(), "sweep"].dropna()))
    lines = ["# Sweep: distortion vs BSC eps, 100 bits, embedded MNIST, today's defaults", "",
             f"Machine: {runlib.machine()}; load average {before} before, {runlib.load_average()} after. The commands "
             "(wall time after each; a rerun resumes the CSV, so a resumed run's time is the missing points' only):", "",
             "```bash", *(f"commsim {shlex.join(c[:-1])}  {c[-1]}" for c in todo), "```", "",
             "Training settings of the learned codecs' rows (the CSV's `sweep` column): "
             + ("; ".join(f"`{s}`" for s in settings) or "none") + f"; an empty field is the library's default: recipe "
             f"{DEFAULT_RECIPE}, estimator {DEFAULT_ESTIMATOR}, precision auto = {resolve_precision('auto')} on this machine; "
             "IABF's lambda: its default, 0.01. Checkpoints: "
             + ", ".join(f"`{c}`" for c in sorted(frame["checkpoint"].dropna().unique())) + ".", "",
             f"Mean `l2_per_image` over {frame['seed'].nunique()} evaluation seed(s), "
             f"{int(frame['l2_per_image_count'].iloc[0])} test images each (lower is better; 53.04 = the mean image, "
             "no information). `vq+ideal`: a capacity-achieving genie code carrying floor(100 C(eps)) bits of a "
             "k-means index error-free (a reference, not a scheme).", "",
             *mean_table(frame), "",
             "Files here: `results.csv` (one row per point), `curves.csv` and `distortion_vs_eps.png/.pdf` "
             "(`commsim plot`: mean over seeds, band = 95 % interval), `recon_*.png` (test digits, top row, and "
             "their reconstructions)."]
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
