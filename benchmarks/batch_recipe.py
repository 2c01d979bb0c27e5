"""Larger-batch training recipes chosen by measured time-to-quality (issue 17, item 4).

Question: which (batch size, peak lr, epochs) of the onecycle recipe reaches today's test quality
(batch 100, peak 3e-3, 100 epochs) in the least training time? On the CPU a NECST-size step is much
more efficient at larger batches, so fewer, larger steps may buy the same quality for less time.

Three stages, each a list of runs trained one after the other with ``runlib.run_specs`` (one JSON
record per training under ``--runs``, resumable; ``--deadline`` starts none after it):

1. the grid on NECST, ``--eps`` (0.1), seed 0: ``--batches`` x ``--lrs`` (plus ``--largest-batch-lrs``
   for the largest batch) x ``--epochs`` (or the ``--cells`` given, in their order), the batch-100 anchor
   (the library's defaults) first, then the other batches (:func:`grid`);
2. the ``--transfer`` best settings with a batch other than the default (by the ranking below) and the
   anchor on each of ``--transfer-to`` (default IABF at eps 0.2, the README's command, and NECST at eps 0.3);
3. seeds 1 .. ``--seeds``-1 of the one pick and of the anchor (NECST, the first eps).

``--reuse FOLDER`` takes the records found there instead of training them (e.g. Table 1's anchors at
other seeds and eps: the same names); their seconds were measured under another load (marked ``*``).

Quality: the test ``l2_per_image`` of the best-validation weights, mean over 3 test draws (``runlib``).
The target of a (codec, eps, seed) is its anchor's test l2 plus ``--tolerance`` (2 %). A run's cost is
its training seconds (the per-epoch training steps, ``history.train_seconds``; validation, 3 draws per
epoch, costs the same at every batch size and is reported apart), measured here, and estimated as
images seen / images per second of :data:`RATES` (the lead's one-thread measurements of a NECST-size
step, fp32 and bf16 autocast; log-linear in the batch size between them): on a shared machine the
measured seconds are noisy, the images seen are exact. The ranking: runs that meet the target first,
by estimated bf16 seconds; then the others, by test l2 (over every NECST grid record in ``--runs``,
of this call or an earlier one). The pick: the setting that meets the target
on the most (codec, eps) of stages 1-2 and, among those, costs the least estimated bf16 seconds summed.

Writes ``batch_recipe.md`` (every run, the verdict per (codec, eps, seed), the recommendation) and
``batch_recipe.csv`` (one row per run). About 45-60 min on one thread (the defaults). The committed
results: the second command (one line), with all 14 cells of its grid (``batch_recipe.md``).

    python -m benchmarks.batch_recipe --threads 1 --deadline 02:40
    python -m benchmarks.batch_recipe --threads 1 --transfer 2 --reuse benchmarks/results/table1_runs_converged
        --cells 500:0.01:100 100:0.006:50 250:0.01:50 --grid-deadline 02:12 --deadline 02:33
    python -m benchmarks.batch_recipe --quick --out /tmp/batch
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import runlib

RATES = {"fp32": {100: 7.9e3, 1000: 10.8e3}, "bf16": {100: 11.1e3, 1000: 20.3e3}}
"""Images per second of a NECST-size training step, one thread (the lead's measurements, issue 17)."""
TRANSFER_TO = ("iabf:0.2", "necst:0.3")



BASE_RECIPE = "onecycle"
"""The schedule studied (the default before this study, batch 100, peak 3e-3): its anchor is 100 epochs."""
ANCHOR_EPOCHS = 100

def rate(batch: int, precision: str) -> float:
    """Images/s of :data:`RATES` at ``batch``: interpolated in log(batch), constant outside the measured sizes."""
    sizes = sorted(RATES[precision])
    return float(np.interp(math.log(batch), [math.log(b) for b in sizes], [RATES[precision][b] for b in sizes]))


def parse_target(text: str) -> tuple[str, float]:
    """``"iabf:0.2"`` -> ``("iabf", 0.2)``."""
    try:
        codec, eps = text.split(":")
        return codec, float(eps)
    except ValueError:
        raise ValueError(f"--transfer-to takes CODEC:EPS (e.g. iabf:0.2), got {text!r}") from None


def setting(r: dict) -> tuple[int, float, int]:
    """``(batch, peak lr, epochs)`` of a spec or record (defaults resolved)."""
    from commsim.learned.training import RECIPES

    return (r.get("batch_size") or RECIPES[r["recipe"]].batch_size, r.get("lr") or RECIPES[r["recipe"]].lr, r["epochs"])  # records from before these fields: no batch_size


def describe(s: tuple[int, float, int]) -> str:
    return f"batch {s[0]}, peak lr {s[1]:g}, {s[2]} epochs"


def run(codec: str, eps: float, seed: int, s: tuple[int, float, int]) -> dict:
    """The spec of ``setting`` ``s`` (at the defaults: the anchor's name)."""
    return runlib.spec(codec, eps, seed, recipe=BASE_RECIPE, batch_size=s[0], lr=s[1], epochs=s[2])


def parse_cell(text: str) -> tuple[int, float, int]:
    """``"500:0.01:100"`` -> ``(500, 0.01, 100)`` (batch, peak lr, epochs)."""
    try:
        batch, lr, epochs = text.split(":")
        cell = (int(batch), float(lr), int(epochs))
    except ValueError:
        raise ValueError(f"--cells takes BATCH:LR:EPOCHS (e.g. 500:0.01:100), got {text!r}") from None
    if cell[0] < 1 or not cell[1] > 0 or cell[2] < 1:
        raise ValueError(f"--cells needs a batch >= 1, a positive rate and epochs >= 1, got {text!r}")
    return cell


def grid(args) -> list[tuple[int, float, int]]:
    """Stage 1's settings in run order, the most informative first: the anchor; the batches other than the
    anchor's, the largest budget first, the smallest batch first, the highest rate first; then the anchor's
    batch at the other rates, shorter budgets first (their cost is the anchor's or less: they tell only
    whether another rate or budget keeps the quality at the same batch)."""
    largest = max(args.batches)
    cells = [(b, lr, e) for e in args.epochs for b in args.batches
             for lr in {*args.lrs, *(args.largest_batch_lrs if b == largest else [])}]
    if args.cells:  # given: in their order
        cells = [parse_cell(c) for c in args.cells]
        return [args.anchor, *[c for c in dict.fromkeys(cells) if c != args.anchor]]
    same = lambda c: c[0] == args.anchor[0]  # noqa: E731
    cells.sort(key=lambda c: (same(c), c[2] if same(c) else -c[2], c[0], -c[1]))
    return [args.anchor, *[c for c in dict.fromkeys(cells) if c != args.anchor]]


def row(r: dict, anchor: dict | None, tolerance: float) -> dict:
    """One run's numbers (``anchor``: the record of its (codec, eps, seed) at the default setting)."""
    batch, lr, epochs = setting(r)
    images = r["epochs_run"] * r.get("train_images", 8000)
    train_s = sum(h["train_seconds"] for h in r["history"])
    target = anchor["test"] * (1 + tolerance) if anchor else None
    curve = None
    if anchor:  # first epoch whose one-draw test l2 (current weights) is within the tolerance of the anchor's one draw
        reach = [h["epoch"] for h in r["history"] if h.get("test_l2_per_image", math.inf) <= anchor["test_single"] * (1 + tolerance)]
        curve = reach[0] if reach else None
    return {"codec": r["codec"], "eps": r["eps"], "seed": r["seed"], "batch": batch, "lr": lr, "epochs": epochs,
            "epochs_run": r["epochs_run"], "best_epoch": r["best_epoch"], "stop": r["stop"], "test": r["test"],
            "test_single": r["test_single"], "vs_anchor_pct": 100 * (r["test"] / anchor["test"] - 1) if anchor else None,
            "meets": bool(target is not None and r["test"] <= target), "curve_epoch": curve, "images": images,
            "train_s": train_s, "val_s": sum(h["val_seconds"] for h in r["history"]), "images_per_s": images / train_s,
            "est_fp32_s": images / rate(batch, "fp32"), "est_bf16_s": images / rate(batch, "bf16"),
            "load_before": r["load_before"], "name": r["name"]}


def table(done: dict, specs: list[dict], args) -> pd.DataFrame:
    """The rows of the ``specs`` that have a record, each against its anchor."""
    rows = []
    for s in dict((s["name"], s) for s in specs).values():
        if s["name"] in done:
            anchor = done.get(run(s["codec"], s["eps"], s["seed"], args.anchor)["name"])
            rows.append(row(done[s["name"]], anchor, args.tolerance))
    return pd.DataFrame(rows)


def ranked(frame: pd.DataFrame, anchor: tuple) -> list[tuple[int, float, int]]:
    """Settings with a batch other than the anchor's: those that meet the target by estimated bf16 seconds, then by test l2."""
    rest = frame[frame["batch"] != anchor[0]]
    order = sorted(rest.itertuples(), key=lambda r: (not r.meets, r.est_bf16_s if r.meets else r.test, r.test))
    return [(int(r.batch), float(r.lr), int(r.epochs)) for r in order]


def pick(frame: pd.DataFrame, candidates: list[tuple]) -> tuple | None:
    """The candidate meeting the target on the most (codec, eps) at seed 0, then the least bf16 seconds summed."""
    seed0 = frame[frame["seed"] == 0]
    scores = []
    for c in candidates:
        rows = seed0[(seed0["batch"] == c[0]) & (seed0["lr"] == c[1]) & (seed0["epochs"] == c[2])]
        if len(rows):
            scores.append((-int(rows["meets"].sum()), float(rows["est_bf16_s"].sum()) / len(rows), c))
    return min(scores)[2] if scores else None


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1-epoch runs, batches 100 and 500, two rates, NECST only")
    parser.add_argument("--eps", type=float, default=0.1, help="training eps of the grid (NECST; default 0.1)")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 6e-3, 1e-2], help="peak learning rates")
    parser.add_argument("--largest-batch-lrs", type=float, nargs="*", default=[2e-2], help="more rates for the largest batch")
    parser.add_argument("--epochs", type=int, nargs="+", default=[50, 100], help="budgets (epochs)")
    parser.add_argument("--cells", nargs="*", default=[],
                        help="BATCH:LR:EPOCHS settings of the grid in run order (instead of the product of the three above)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="within this fraction of the anchor's test l2 (default 0.02)")
    parser.add_argument("--transfer", type=int, default=3, help="how many of the best settings go to --transfer-to (default 3)")
    parser.add_argument("--transfer-to", nargs="*", default=list(TRANSFER_TO), help="CODEC:EPS (default iabf:0.2 necst:0.3)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the pick and the anchor at the first stage (default 3)")
    parser.add_argument("--runs", type=Path, default=None, help="records folder (default OUT/batch_recipe_runs[_quick])")
    parser.add_argument("--reuse", type=Path, nargs="*", default=[],
                        help="folders of records used instead of training (e.g. Table 1's anchors of other seeds); "
                             "their seconds were measured under other loads")
    parser.add_argument("--deadline", default=None, help="HH:MM (UTC): start no training after it")
    parser.add_argument("--grid-deadline", default=None, help="HH:MM (UTC): start no grid (stage 1) training after it")
    try:
        args = runlib.parse_args(parser, argv)
        if args.quick:
            args.batches, args.lrs, args.largest_batch_lrs, args.epochs = [100, 500], [3e-3, 1e-2], [], [1]
            args.transfer, args.transfer_to, args.seeds, args.cells = 1, ["necst:0.3"], 2, []
        transfer_to = [parse_target(t) for t in args.transfer_to]
        for cell in args.cells:
            parse_cell(cell)
        deadline = runlib.parse_deadline(args.deadline)
        grid_deadline = runlib.parse_deadline(args.grid_deadline) or deadline
        if deadline is not None:
            grid_deadline = min(grid_deadline, deadline)
        if min(args.batches) < 1 or min(args.epochs) < 1 or min([*args.lrs, *args.largest_batch_lrs]) <= 0:
            raise ValueError("--batches and --epochs take positive integers, --lrs positive rates")
        if not 0 <= args.tolerance < 1 or args.transfer < 0 or args.seeds < 1:
            raise ValueError("--tolerance takes a fraction in [0, 1), --transfer a count >= 0, --seeds a count >= 1")
    except ValueError as exc:
        return runlib.usage_error(exc)
    from commsim.learned.training import RECIPES

    args.anchor = (RECIPES[BASE_RECIPE].batch_size, RECIPES[BASE_RECIPE].lr, ANCHOR_EPOCHS if not args.quick else 1)
    runs = args.runs or Path(args.out) / f"{args.output.name}_runs"
    here = runlib.load_done(runs)
    done = runlib.load_done(runs, *args.reuse)  # this folder's record wins a name found twice
    reused = {name for name in done if name not in here}
    local = {"jobs": 1, "done": done, "deadline": deadline}  # one training at a time: the timings are the point

    stage1 = [run("necst", args.eps, 0, s) for s in grid(args)]
    left = runlib.run_specs(stage1, runs, **{**local, "deadline": grid_deadline})
    grid_records = [r for r in [*stage1, *runlib.load_done(runs).values()]  # every grid run, of this call or an earlier one
                    if (r["codec"], r["eps"], r["seed"]) == ("necst", args.eps, 0)]
    candidates = ranked(table(done, grid_records, args), args.anchor)[:args.transfer]
    stage2 = [run(codec, eps, 0, s) for codec, eps in transfer_to for s in [args.anchor, *candidates]]
    left += runlib.run_specs(stage2, runs, **local)
    chosen = pick(table(done, stage1 + stage2, args), candidates)
    stage3 = [run("necst", args.eps, seed, s) for seed in range(1, args.seeds) for s in ([chosen, args.anchor] if chosen else [])]
    left += runlib.run_specs(stage3, runs, **local)

    frame = table(done, [*stage1, *stage2, *stage3, *runlib.load_done(runs).values()], args)
    if len(frame):
        frame["record"] = ["reused" if n in reused else "here" for n in frame["name"]]
        frame = frame.sort_values(["codec", "eps", "seed", "batch", "lr", "epochs"], kind="stable", ignore_index=True)
    args.output.csv(frame.drop(columns=["name"]) if len(frame) else frame)
    args.output.report(report(frame, args, chosen, left, runs))
    return 0


def report(frame: pd.DataFrame, args, chosen: tuple | None, left: list[str], runs: Path) -> list[str]:
    """The report's lines: the setting, every run, the verdict per (codec, eps, seed), the recommendation."""
    tol = f"{100 * args.tolerance:g} %"
    lines = ["# Larger-batch onecycle recipes: time to today's quality", "",
             f"Machine: {runlib.machine()}, one torch thread, fp32, one training at a time; load average now {runlib.load_average()}. "
             f"Records: `{runs.name}/` ({int((frame['record'] == 'here').sum()) if len(frame) else 0} runs; "
             "every record there is reported, whichever call of this script trained it: the command above is the last). "
             f"Anchor: {describe(args.anchor)} (today's defaults). Target: the anchor's test "
             f"l2 (3 draws) of the same codec, eps and seed + {tol}. Estimated seconds: images seen / the lead's "
             "one-thread images/s of a NECST-size step (fp32 7.9k at batch 100, 10.8k at 1000; bf16 11.1k, 20.3k; "
             "log-linear between); for IABF they count its encoder-decoder work only (its critic adds more per image), "
             "so read them as relative costs. 'train s': the training steps measured here (validation apart: 'val s', "
             "the same at every batch). 'curve': the first epoch whose one-draw test l2 (current weights, the "
             f"schedule not finished) is within {tol} of the anchor's one draw. A * marks a record reused from "
             f"{', '.join(f'`{f.name}/`' for f in args.reuse) or 'another folder'} (measured under another load).", ""]
    if not len(frame):
        return [*lines, "No records yet."]
    header = ["codec", "eps", "seed", "batch", "peak lr", "epochs run / budget", "best epoch", "test l2 (3 draws)",
              "vs anchor", f"within {tol}", "train s", "val s", "images/s", "est. fp32 s", "est. bf16 s", "curve"]
    body = [[r.codec, f"{r.eps:g}", r.seed, r.batch, f"{r.lr:g}", f"{r.epochs_run} / {r.epochs}", r.best_epoch, f"{r.test:.2f}",
             "" if pd.isna(r.vs_anchor_pct) else f"{r.vs_anchor_pct:+.1f} %", "yes" if r.meets else "no",
             f"{r.train_s:.0f}" + ("*" if r.record == "reused" else ""),
             f"{r.val_s:.0f}", f"{r.images_per_s / 1e3:.1f}k", f"{r.est_fp32_s:.0f}", f"{r.est_bf16_s:.0f}",
             "" if pd.isna(r.curve_epoch) else int(r.curve_epoch)] for r in frame.itertuples()]
    lines += ["## Every run", "", *runlib.markdown_table(header, body), ""]

    verdict = []
    for (codec, eps, seed), group in frame.groupby(["codec", "eps", "seed"], sort=False):
        base = group[(group["batch"] == args.anchor[0]) & (group["lr"] == args.anchor[1]) & (group["epochs"] == args.anchor[2])]
        if not len(base):
            continue
        base = base.iloc[0]
        meet = group[group["meets"]]

        def fastest(column):
            if not len(meet):
                return "none"
            r = meet.loc[meet[column].idxmin()]
            return (f"{r.batch}, {r.lr:g}, {r.epochs} ep: {r.test:.2f} in {r[column]:.0f} s "
                    f"(x{base[column] / r[column]:.2f})")

        verdict.append([codec, f"{eps:g}", seed, f"{base.test:.2f} -> {base.test * (1 + args.tolerance):.2f}",
                        f"{base.train_s:.0f} s / {base.est_bf16_s:.0f} s", f"{len(meet)} / {len(group)}",
                        fastest("train_s"), fastest("est_bf16_s")])
    lines += ["## Time to quality", "",
              f"Per codec, eps and seed: the anchor's test l2 and target, its cost (measured train s / estimated bf16 s), "
              f"how many runs meet the target, and the fastest of them by measured and by estimated bf16 seconds "
              "(batch, peak lr, epochs: test l2 in seconds, speed-up over the anchor).", "",
              *runlib.markdown_table(["codec", "eps", "seed", "anchor -> target", "anchor cost", "meet",
                                      "fastest, measured", "fastest, est. bf16"], verdict), ""]
    lines += ["## Recommendation", ""]
    if chosen is None:
        lines.append("No setting other than the anchor was trained.")
    else:
        rows = frame[(frame["batch"] == chosen[0]) & (frame["lr"] == chosen[1]) & (frame["epochs"] == chosen[2])]
        lines.append(f"Pick (the rule in the docstring): **{describe(chosen)}** ({chosen[2] * 8000:,} images at 8,000 "
                     f"training digits). Against the anchor of each codec, eps and seed:")
        lines.append("")
        anchors = frame[(frame["batch"] == args.anchor[0]) & (frame["lr"] == args.anchor[1]) & (frame["epochs"] == args.anchor[2])]
        for r in rows.itertuples():
            a = anchors[(anchors["codec"] == r.codec) & (anchors["eps"] == r.eps) & (anchors["seed"] == r.seed)]
            if len(a):
                a = a.iloc[0]
                lines.append(f"- {r.codec} eps {r.eps:g} seed {r.seed}: test {r.test:.2f} vs {a.test:.2f} ({r.vs_anchor_pct:+.1f} %, "
                             f"{'meets' if r.meets else 'misses'} the target); train {r.train_s:.0f} s vs {a.train_s:.0f} s measured "
                             f"(x{a.train_s / r.train_s:.2f}), {r.est_bf16_s:.0f} s vs {a.est_bf16_s:.0f} s est. bf16 "
                             f"(x{a.est_bf16_s / r.est_bf16_s:.2f}).")
        first = lambda f: f[(f["codec"] == "necst") & (f["eps"] == args.eps)].set_index("seed")  # noqa: E731
        mine, theirs = first(rows), first(anchors)
        seeds = sorted(set(mine.index) & set(theirs.index))
        if len(seeds) > 1:
            m, a = mine.loc[seeds], theirs.loc[seeds]
            lines += ["", f"Over seeds {', '.join(map(str, seeds))} (NECST eps {args.eps:g}): test {m['test'].mean():.2f} ± "
                      f"{m['test'].std():.2f} vs {a['test'].mean():.2f} ± {a['test'].std():.2f} "
                      f"({100 * (m['test'].mean() / a['test'].mean() - 1):+.1f} %), {int(m['meets'].sum())} of {len(seeds)} "
                      f"seeds within {tol} of their anchor; train {m['train_s'].mean():.0f} s vs {a['train_s'].mean():.0f} s "
                      f"measured (x{a['train_s'].mean() / m['train_s'].mean():.2f}), est. bf16 x"
                      f"{a['est_bf16_s'].mean() / m['est_bf16_s'].mean():.2f}, est. fp32 x{a['est_fp32_s'].mean() / m['est_fp32_s'].mean():.2f}."]
    unstable = frame[(frame["stop"] == "plateau") & (frame["best_epoch"] < 0.3 * frame["epochs"])]
    if len(unstable):
        lines += ["", "Unstable (plateau stop with the best epoch in the warm-up, before 30 % of the budget): "
                  + "; ".join(f"{r.codec} eps {r.eps:g}: {describe((r.batch, r.lr, r.epochs))} (test {r.test:.2f})"
                              for r in unstable.itertuples()) + "."]
    same = frame[frame["meets"] & (frame["batch"] == args.anchor[0]) & (frame["epochs"] < args.anchor[2])]
    if len(same):
        lines += ["", "At the anchor's batch, fewer epochs that meet the target: "
                  + "; ".join(f"{r.codec} eps {r.eps:g} seed {r.seed}: {describe((r.batch, r.lr, r.epochs))} (test {r.test:.2f}, "
                              f"{r.est_bf16_s:.0f} s est. bf16)" for r in same.itertuples()) + "."]
    if left:
        lines += ["", f"**Not run (deadline):** {', '.join(left)}."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
