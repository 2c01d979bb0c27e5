"""Figure 3 of the IABF paper (Song et al., AAAI 2020), in numbers: Markov-chain samples of NECST and IABF.

The claim: IABF's chain samples have "better sample quality and diversity" than NECST's, whose
chains show "severe model collapse" because its code information concentrates on a few bits.

The chain (:func:`commsim.sampling.markov_chain`, eq. 32; what ``commsim sample`` draws): x -> the
sampled code -> the BSC at the model's training eps -> the decoder's mean image -> x, repeated. The
models: NECST and IABF (lambda 0.01) at eps 0.1 and 0.3, ``--seeds`` seeds, the very models of
``downstream.py`` (the same cache entries, :func:`benchmarks.downstream.trained_models`). Each model
runs ``--chains`` chains (default 100) from the first test images for ``--steps`` steps (default
200), the chain draws from generator seed :data:`CHAIN_SEED` (the same for every model).

Measures (per model; the tables give the mean over seeds and the seeds' spread):

- labels: every chain state is labelled by the linear pixel classifier of ``downstream.py``
  (:func:`benchmarks.downstream.pixel_classifier`, its test accuracy reported); the start class is
  the classifier's label of the start image;
- diversity (:func:`chain_stats`): the class distribution the chains visit (steps 1..T, all chains):
  per-class counts, its entropy in bits (log2 10 = 3.32 is uniform), the classes holding >= 1 % of
  the visits, the distinct classes per chain, the entropy of the last step's classes; how long a
  chain stays in its start class (the median first step with another label, censored chains count
  as never; the fraction that never leave); the mean squared pixel change per step;
- quality proxy: the classifier's softmax confidence in its label (mean, and the fraction of states
  at >= 0.9); a collapsed chain can be confident, a chain of blobs cannot;
- information over bits (:func:`bit_information`, exact under the test images' empirical
  distribution, from the encoder's bit probabilities ``p(x)``): per bit, the entropy of its marginal
  ``H(E[p])``, its mutual information with the image ``I(b; x) = H(E[p]) - E[H(p)]`` and with the class
  label; how many of the most informative bits hold 90 % of the summed ``I(b; x)``, the share of the
  top 10 bits, live (marginal entropy > 0.5 bit) and dead (< 0.05 bit) bits.

Writes ``chains.md``, ``chains.csv`` (one row per model), ``chains_bits.csv`` (one row per model and
bit) and ``chains.png`` (chain samples of seed 0, and the sorted per-bit information profiles).

    python -m benchmarks.chains               # the full run (the models train once, shared with downstream.py)
    python -m benchmarks.chains --quick       # 1-epoch models at eps 0.1, seed 0, 10 chains of 20 steps
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import special, stats

from benchmarks import downstream, runlib

CODECS = ("necst", "iabf")
CHAIN_SEED = 0
"""The chains' generator seed (encoder sampling, channel, decoder draws), the same for every model."""
CONFIDENT = 0.9
"""A state counts as confidently labelled at this softmax probability or above."""
SHOWN = 10
"""Chains drawn in the figure (the first ones)."""


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(``p``), elementwise (0 at p = 0 or 1)."""
    return (special.entr(p) + special.entr(1 - p)) / np.log(2)


def bit_information(probs: np.ndarray, labels: np.ndarray, classes: int = 10) -> dict[str, np.ndarray]:
    """Per-bit information of a code from its bit probabilities ``probs [n, m]`` (``sigmoid(logits)`` of
    ``n`` images) and the images' class ``labels [n]``, all in bits, each ``[m]``: ``h_marginal`` (the
    entropy of the bit's marginal over the images), ``mi_image`` (``I(b; x)``: the marginal's entropy
    less the mean sampling entropy of the bit) and ``mi_class`` (``I(b; y)``)."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    h_marginal = binary_entropy(probs.mean(0))
    present = [c for c in range(classes) if np.any(labels == c)]
    weights = np.array([np.mean(labels == c) for c in present])
    h_given_class = sum(w * binary_entropy(probs[labels == c].mean(0)) for w, c in zip(weights, present))
    return {"h_marginal": h_marginal, "mi_image": h_marginal - binary_entropy(probs).mean(0),
            "mi_class": h_marginal - h_given_class}


def spread(info: dict[str, np.ndarray], share: float = 0.9, top: int = 10) -> dict[str, float]:
    """How the information of :func:`bit_information` spreads over the bits: ``bits_90`` (the fewest bits
    holding ``share`` of the summed ``mi_image``), ``top10_share`` (the share of the ``top`` most
    informative bits), ``live_bits`` / ``dead_bits`` (marginal entropy > 0.5 / < 0.05 bit), the sums of
    ``mi_image`` and ``mi_class`` and the mean marginal entropy."""
    mi = np.sort(np.clip(info["mi_image"], 0, None))[::-1]
    total = mi.sum()
    cumulative = np.cumsum(mi) / total if total > 0 else np.ones_like(mi)
    return {"bits_90": int(np.searchsorted(cumulative, share - 1e-12) + 1), "top10_share": float(mi[:top].sum() / total)
            if total > 0 else float("nan"), "live_bits": int(np.sum(info["h_marginal"] > 0.5)),
            "dead_bits": int(np.sum(info["h_marginal"] < 0.05)), "mi_image_sum": float(total),
            "mi_class_sum": float(np.clip(info["mi_class"], 0, None).sum()), "h_marginal_mean": float(info["h_marginal"].mean())}


def chain_stats(labels: np.ndarray, confidence: np.ndarray, classes: int = 10) -> dict:
    """Diversity and quality of chains from the labels ``[T + 1, n]`` (int) and the label confidences
    ``[T + 1, n]`` of their states (row 0: the start images; ``n`` chains of ``T`` steps): see the module
    doc. ``median_leave`` is ``inf`` when half the chains or more never leave their start class."""
    labels, confidence = np.asarray(labels), np.asarray(confidence)
    if labels.ndim != 2 or labels.shape[0] < 2 or labels.shape != confidence.shape:
        raise ValueError(f"give labels and confidences [steps + 1, chains] with at least one step, got "
                         f"{labels.shape} and {confidence.shape}")
    steps = labels.shape[0] - 1
    counts = np.bincount(labels[1:].ravel(), minlength=classes)
    share = counts / counts.sum()
    left = labels[1:] != labels[0]
    first = np.where(left.any(0), left.argmax(0) + 1, np.inf)
    distinct = np.eye(classes, dtype=bool)[labels].any(0).sum(1)
    return {"steps": steps, "chains": labels.shape[1], "visit_entropy": float(stats.entropy(share, base=2)),
            "classes_1pct": int(np.sum(share >= 0.01)), "classes_visited": int(np.sum(counts > 0)),
            "distinct_per_chain": float(distinct.mean()),
            "final_entropy": float(stats.entropy(np.bincount(labels[-1], minlength=classes), base=2)),
            "median_leave": float(np.median(first)), "never_leave": float(np.mean(np.isinf(first))),
            "confidence": float(confidence[1:].mean()), "confident": float(np.mean(confidence[1:] >= CONFIDENT)),
            **{f"count_{c}": int(counts[c]) for c in range(classes)}}


@torch.no_grad()
def run_chains(model, eps: float, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """The chain states ``[steps + 1, n, C, H, W]`` from ``x0 [n, C, H, W]`` over the BSC at ``eps``."""
    from commsim.channels import get_channel
    from commsim.sampling import markov_chain

    generator = torch.Generator().manual_seed(CHAIN_SEED)
    return torch.stack(markov_chain(model, get_channel("bsc"), x0, steps, 1, generator, eps=eps))


@torch.no_grad()
def measure(model, eps: float, x0: torch.Tensor, steps: int, labeller, test: tuple[torch.Tensor, torch.Tensor]):
    """``(row of chain and bit statistics, per-bit information, the chain states)`` of one model."""
    states = run_chains(model, eps, x0, steps)
    labels, conf = labeller.confidence(states.flatten(0, 1))
    row = chain_stats(labels.reshape(steps + 1, -1).numpy(), conf.reshape(steps + 1, -1).numpy())
    row["step_l2"] = float((states[1:] - states[:-1]).pow(2).flatten(2).sum(2).mean())
    info = bit_information(torch.sigmoid(model.logits(test[0])).numpy(), test[1].numpy())
    return {**row, **spread(info)}, info, states


def summary_table(frame: pd.DataFrame, columns: list[tuple[str, str, str]]) -> list[str]:
    """A Markdown table per (eps, codec): each ``(column, heading, format)`` as mean over the seeds, with the
    seeds' min-max when there are several."""
    rows = []
    for (eps, codec), g in frame.groupby(["eps", "codec"]):
        cells = [f"{eps:g}", codec, str(len(g))]
        for column, _, fmt in columns:
            values = g[column].to_numpy(dtype=float)
            text = format(values.mean(), fmt)
            if len(values) > 1:
                text += f" ({format(values.min(), fmt)}–{format(values.max(), fmt)})"
            cells.append(text)
        rows.append(cells)
    rows.sort(key=lambda r: (float(r[0]), CODECS.index(r[1]) if r[1] in CODECS else 9))
    return runlib.markdown_table(["eps", "codec", "seeds", *(h for _, h, _ in columns)], rows)


CHAIN_COLUMNS = [("visit_entropy", "visit entropy (bits)", ".3f"), ("classes_1pct", "classes >= 1 %", ".1f"),
                 ("distinct_per_chain", "classes per chain", ".2f"), ("final_entropy", "last-step entropy", ".3f"),
                 ("median_leave", "median steps to leave", ".1f"), ("never_leave", "never leave", ".2f"),
                 ("confidence", "confidence", ".3f"), ("confident", f"share >= {CONFIDENT:g}", ".3f"),
                 ("step_l2", "pixel change / step", ".2f")]
BIT_COLUMNS = [("mi_image_sum", "sum I(b;x)", ".1f"), ("mi_class_sum", "sum I(b;y)", ".2f"),
               ("bits_90", "bits for 90 %", ".1f"), ("top10_share", "top-10 share", ".3f"),
               ("live_bits", "live bits", ".1f"), ("dead_bits", "dead bits", ".1f"),
               ("h_marginal_mean", "mean H(marginal)", ".3f")]


def verdict(frame: pd.DataFrame) -> list[str]:
    """Per eps: IABF against NECST seed by seed on the visit entropy (diversity), the never-leave fraction,
    the confidence (quality) and bits_90 (spread); "less mode collapse" is supported at an eps when IABF's
    chains visit a more diverse class distribution in every seed, contradicted when in none."""
    lines = []
    calls = []
    for eps in sorted(frame["eps"].unique()):
        part = frame[frame["eps"] == eps]
        necst, iabf = (part[part["codec"] == c].set_index("seed") for c in ("necst", "iabf"))
        seeds = sorted(set(necst.index) & set(iabf.index))
        if not seeds:
            continue
        def better(column, higher=True):
            d = iabf.loc[seeds, column] - necst.loc[seeds, column]
            return int(np.sum(d > 0 if higher else d < 0))
        more_diverse = better("visit_entropy")
        call = "supported" if more_diverse == len(seeds) else "contradicted" if more_diverse == 0 else "inconclusive"
        calls.append(call)
        mean = lambda f, c: float(f.loc[seeds, c].mean())
        lines.append(
            f"  - eps {eps:g}: visit entropy IABF {mean(iabf, 'visit_entropy'):.3f} vs NECST {mean(necst, 'visit_entropy'):.3f} bits "
            f"(IABF higher in {more_diverse}/{len(seeds)} seeds); classes >= 1 % {mean(iabf, 'classes_1pct'):.1f} vs "
            f"{mean(necst, 'classes_1pct'):.1f}; classes per chain {mean(iabf, 'distinct_per_chain'):.2f} vs "
            f"{mean(necst, 'distinct_per_chain'):.2f}; median steps to leave the start class {mean(iabf, 'median_leave'):.1f} vs "
            f"{mean(necst, 'median_leave'):.1f}, never leave {mean(iabf, 'never_leave'):.2f} "
            f"vs {mean(necst, 'never_leave'):.2f}; confidence {mean(iabf, 'confidence'):.3f} vs {mean(necst, 'confidence'):.3f} "
            f"(IABF higher in {better('confidence')}/{len(seeds)}); bits for 90 % of I(b;x) {mean(iabf, 'bits_90'):.1f} vs "
            f"{mean(necst, 'bits_90'):.1f}, top-10 share {mean(iabf, 'top10_share'):.3f} vs {mean(necst, 'top10_share'):.3f}, dead bits "
            f"{mean(iabf, 'dead_bits'):.1f} vs {mean(necst, 'dead_bits'):.1f}: "
            f"less mode collapse {call}")
    if calls:
        overall = calls[0] if len(set(calls)) == 1 else "mixed (" + ", ".join(calls) + " by eps)"
        lines.insert(0, f"- **Verdict on \"less mode collapse\" (IABF vs NECST, seed-paired visit entropy): {overall}.**")
    return lines


def figure(shown: dict, infos: dict, path: Path, steps: int) -> None:
    """Chain samples (seed 0: the first :data:`SHOWN` chains, one column each, rows at a few steps) and per
    eps the sorted per-bit ``I(b; x)`` and marginal-entropy profiles of every model."""
    from commsim.core.images import grid_array

    plt = runlib.pyplot()

    eps_values = sorted({e for _, e in shown})
    keep = [t for t in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= steps]
    columns = len(shown)  # one panel of samples per model, the eps in order
    fig = plt.figure(figsize=(4.2 * columns, 4.2 + 0.4 * len(keep)))
    grid = fig.add_gridspec(2, columns, height_ratios=[0.5 * len(keep), 4])
    for i, ((codec, eps), states) in enumerate(sorted(shown.items(), key=lambda kv: (kv[0][1], CODECS.index(kv[0][0])))):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(grid_array([states[t, :SHOWN] for t in keep]))
        ax.set_yticks([(states.shape[-2] + 2) * r + 2 + states.shape[-2] // 2 for r in range(len(keep))],
                      [f"step {t}" for t in keep], fontsize=7)
        ax.set_xticks([])
        ax.set_title(f"{codec.upper()}, eps {eps:g} (seed 0)", fontsize=9)
    per_eps = columns // len(eps_values)
    for j, eps in enumerate(eps_values):
        ax = fig.add_subplot(grid[1, j * per_eps:(j + 1) * per_eps])
        for (codec, e, seed), info in sorted(infos.items()):
            if e != eps:
                continue
            color = {"necst": "tab:red", "iabf": "tab:blue"}.get(codec, "grey")
            first = seed == min(s for (c, x, s) in infos if c == codec and x == eps)
            ax.plot(np.sort(info["mi_image"])[::-1], color=color, lw=1.2, alpha=0.8, label=f"{codec} I(b;x)" if first else None)
            ax.plot(np.sort(info["h_marginal"])[::-1], color=color, lw=0.8, ls="--", alpha=0.6,
                    label=f"{codec} H(marginal)" if first else None)
        ax.set_title(f"eps {eps:g}: per-bit information, sorted (each seed a line)", fontsize=9)
        ax.set_xlabel("bit rank")
        ax.set_ylabel("bits")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    runlib.save_figure(fig, path)


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1-epoch models at eps 0.1, seed 0, 10 chains of 20 steps, one weight decay")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per codec and eps (default 3)")
    parser.add_argument("--eps", type=float, nargs="+", default=list(downstream.EPS), help="training eps values (default 0.1 0.3)")
    parser.add_argument("--chains", type=int, default=100, help="chains per model, from the first test images (default 100)")
    parser.add_argument("--steps", type=int, default=200, help="steps per chain (default 200)")
    args = runlib.parse_args(parser, argv)
    try:
        downstream.check_grid(args.seeds, args.eps)
        if not (1 <= args.chains <= 1000 and 1 <= args.steps <= 2000):
            raise ValueError("--chains must be in [1, 1000] and --steps in [1, 2000]")
    except ValueError as exc:
        return runlib.usage_error(exc)
    epochs, seeds, eps_values = (1, [0], [0.1]) if args.quick else (None, list(range(args.seeds)), args.eps)
    chains, steps = (10, 20) if args.quick else (args.chains, args.steps)
    from commsim.data import load_dataset

    source = load_dataset("mnist")
    models = downstream.trained_models(source, downstream.model_keys(CODECS, eps_values, seeds), epochs)
    labeller = downstream.pixel_classifier(source, downstream.QUICK_DECAYS if args.quick else downstream.DECAYS)
    test = source.tensors("test")
    labeller_acc = downstream.accuracy_row((labeller.predict(test[0]) == test[1]).numpy())
    x0 = test[0][:chains]
    start = np.bincount(labeller.predict(x0).numpy(), minlength=10)
    rows, bit_rows, infos, shown = [], [], {}, {}
    for (codec, eps, seed), model in sorted(models.items()):
        row, info, states = measure(model, eps, x0, steps, labeller, test)
        rows.append({"codec": codec, "eps": eps, "seed": seed, **row})
        infos[codec, eps, seed] = info
        bit_rows += [{"codec": codec, "eps": eps, "seed": seed, "bit": b, **{k: float(v[b]) for k, v in info.items()}}
                     for b in range(len(info["mi_image"]))]
        if seed == seeds[0]:
            shown[codec, eps] = states
        print(f"{codec} eps {eps:g} seed {seed}: visit entropy {row['visit_entropy']:.3f}, never leave {row['never_leave']:.2f}, "
              f"confidence {row['confidence']:.3f}, bits_90 {row['bits_90']}", flush=True)
    frame = pd.DataFrame(rows)
    args.output.csv(frame)
    args.output.csv(pd.DataFrame(bit_rows), part="_bits")
    png = args.output.path(".png")
    figure(shown, infos, png, steps)
    args.output.report(report(frame, labeller, labeller_acc, start, seeds, chains, steps, epochs, png.name))
    return 0


def report(frame: pd.DataFrame, labeller, labeller_acc: dict, start: np.ndarray, seeds: list[int], chains: int,
           steps: int, epochs: int | None, png: str) -> list[str]:
    """The Markdown report lines."""
    lines = ["# Markov-chain samples: NECST vs IABF (IABF paper, Figure 3)", "",
             f"MNIST (embedded), {downstream.BITS} bits, BSC at the training eps; NECST and IABF (lambda {downstream.LAM:g}), "
             f"seeds {', '.join(map(str, seeds))}, {downstream.epoch_note(epochs)}; the models of `downstream.py`. "
             f"{chains} chains per model from the first {chains} test images, {steps} steps, chain seed {CHAIN_SEED}. "
             f"Labeller: the linear pixel classifier of `downstream.py` (L2 penalty {labeller.decay:g} chosen on validation), "
             f"test accuracy {labeller_acc['accuracy']:.4f} [{labeller_acc['low']:.4f}, {labeller_acc['high']:.4f}] "
             f"(Clopper-Pearson 95 %). Machine: {runlib.machine()}, load {runlib.load_average()}.", "",
             "## Verdict", "", *verdict(frame), "",
             "Caveats: the labeller is linear (about 1 in 10 test digits mislabelled; chain states are decoder means, "
             "blurrier than test digits), so visit entropy counts label changes, and confidence is a proxy of quality, "
             "not a sample-quality score such as a classifier-based FID.", "",
             "## Chains (mean over seeds, the seeds' min–max in parentheses)", "", *summary_table(frame, CHAIN_COLUMNS), "",
             "## Classes visited (steps 1..T, all chains, summed over seeds)", "",
             f"Start classes (labeller on the {chains} start images): " + ", ".join(f"{c}: {n}" for c, n in enumerate(start)), ""]
    counts = [f"count_{c}" for c in range(10)]
    rows = []
    for (eps, codec), g in frame.groupby(["eps", "codec"]):
        total = g[counts].sum()
        rows.append([f"{eps:g}", codec, *(f"{100 * v / total.sum():.1f}" for v in total)])
    rows.sort(key=lambda r: (float(r[0]), CODECS.index(r[1])))
    lines += runlib.markdown_table(["eps", "codec", *(f"{c} (%)" for c in range(10))], rows)
    lines += ["", "## Information over the bits (test images; exact under their empirical distribution)", "",
              "I(b;x) = H(E[p]) - E[H(p)] per bit, from the encoder's bit probabilities p(x); I(b;y) the same with the "
              "class label; bits for 90 %: the fewest bits holding 90 % of the summed I(b;x) (90 when every bit carries an equal share, fewer when the information concentrates on some bits); live / dead: marginal "
              "entropy > 0.5 / < 0.05 bit. Per-bit values in `chains_bits.csv`.", "", *summary_table(frame, BIT_COLUMNS),
              "", f"Figure: [{png}]({png}) (top: the first {SHOWN} chains of seed 0, one per column; bottom: sorted per-bit "
              "I(b;x), solid, and marginal entropy, dashed)."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
