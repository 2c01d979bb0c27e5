"""Training recipes side by side: test distortion and time for (recipe, estimator) pairs.

One model per pair (same seed, same budget), MNIST, ``--bits`` bits, BSC at ``--eps``; test
``l2_per_image`` with one BSC draw per test image. Writes ``recipes.md`` and ``recipes.csv``
(one row per run, with the per-epoch validation history in ``recipes_history.csv``); ``--quick``
writes ``recipes_quick.*`` instead.

    python -m benchmarks.recipes --epochs 70 --runs onecycle:st,paper:vimco          # quick check
    python -m benchmarks.recipes --epochs 200 --eps 0.1,0.2,0.3,0.4 --runs onecycle:st,onecycle:gumbel,paper:vimco
    python -m benchmarks.recipes --quick --out /tmp/recipes                          # smoke test
"""
from __future__ import annotations

import sys

import pandas as pd

from benchmarks import runlib
from commsim.channels import BSC
from commsim.data import load_dataset
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec
from commsim.pipeline import Pipeline, distortion_metric


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="2 epochs, 16 bits")
    parser.add_argument("--codec", default="necst")
    parser.add_argument("--epochs", type=int, default=70)
    parser.add_argument("--eps", default="0.1", help="comma-separated training (= test) eps")
    parser.add_argument("--bits", type=int, default=100)
    parser.add_argument("--runs", default="onecycle:st,paper:vimco", help="comma-separated RECIPE:ESTIMATOR")
    parser.add_argument("--seed", type=int, default=0)
    args = runlib.parse_args(parser, argv)
    if args.quick:
        args.epochs, args.bits = 2, 16
    source = load_dataset("mnist")
    metric = distortion_metric(source)
    rows, history = [], []
    load_before = runlib.load_average()
    for eps in [float(e) for e in args.eps.split(",")]:
        for run in args.runs.split(","):
            recipe, _, estimator = run.partition(":")
            config = TrainConfig(eps=eps, epochs=args.epochs, seed=args.seed, recipe=recipe, estimator=estimator)
            codec = build_codec(args.codec, source, args.bits, seed=args.seed)
            result, seconds, _ = runlib.timed(lambda: train_codec(codec, source, config, progress=False))
            test = Pipeline(source, codec, BSC()).evaluate("test", seed=args.seed, eps=eps).metrics[metric]
            rows.append({"codec": args.codec, "eps": eps, "recipe": recipe, "estimator": estimator, "epochs": args.epochs,
                         "epochs_run": len(result.history), "best_epoch": result.best_epoch, "stop": result.stop,
                         "lr": config.lr, "val": result.val_value, "test": test.mean, "test_low": test.low,
                         "test_high": test.high, "seconds": seconds})
            history += [{"eps": eps, "recipe": recipe, "estimator": estimator, **h} for h in result.history]
            r = rows[-1]
            print(f"{args.codec} eps {eps:g} {recipe}/{estimator}: test {metric} {r['test']:.2f} [{r['test_low']:.2f}, "
                  f"{r['test_high']:.2f}], best epoch {r['best_epoch']}/{r['epochs_run']} ({r['stop']}), {seconds:.0f} s",
                  flush=True)
    load_after = runlib.load_average()
    args.output.csv(pd.DataFrame(rows))
    args.output.csv(pd.DataFrame(history), "_history")
    lines = [f"# Training recipes ({args.codec}, MNIST, {args.bits} bits, budget {args.epochs} epochs)", "",
             f"Settings: --codec {args.codec} --epochs {args.epochs} --eps {args.eps} "
             f"--runs {args.runs} --threads {args.threads}; {runlib.machine()}, "
             f"load average {load_before} before / {load_after} after (a shared machine: seconds are indicative).",
             f"Test {metric}: one BSC draw per test image (1000 images), 95 % CI.", ""]
    lines += runlib.markdown_table(
        ["eps", "recipe", "estimator", "peak lr", f"test {metric}", "95 % CI", "best epoch / run", "stop", "seconds"],
        [[f"{r['eps']:g}", r["recipe"], r["estimator"], f"{r['lr']:g}", f"{r['test']:.2f}",
          f"[{r['test_low']:.2f}, {r['test_high']:.2f}]", f"{r['best_epoch']}/{r['epochs_run']}", r["stop"],
          f"{r['seconds']:.0f}"] for r in rows])
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
