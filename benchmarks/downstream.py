"""The IABF paper's claim that its codes are "useful representations for downstream tasks" (Song et
al., AAAI 2020), measured: a linear classifier on the 100-bit codes of NECST, ABF and IABF.

MNIST (the embedded digits: 8,000 train / 1,000 validation / 1,000 test), 100 bits, BSC. The models:
NECST, ABF and IABF (lambda 0.01) trained at eps 0.1 and 0.3 with the library's defaults
(:class:`commsim.learned.training.TrainConfig`: onecycle250, 75 epochs, st) in the precision ``auto``
resolves to on this machine (bf16 where the CPU has bf16 units), ``--seeds`` seeds (default 3; ABF,
a reference beside the claim's IABF-NECST pair, ``--abf-seeds``, default 1: seed 0, to keep the
training of the 14 models near 15 CPU-minutes). They
come from the checkpoint cache (:func:`commsim.learned.zoo.cached_or_trained`); the missing ones train
as one batched ensemble per codec (:func:`commsim.learned.zoo.train_and_save_many`) into the same
cache entries, so ``chains.py`` uses the same models and a rerun trains nothing.

Features (one row of each per image):

- ``sampled``: the bits as the codec sends them at evaluation (``LearnedCodec.encode``, as
  :class:`commsim.pipeline.Pipeline` calls it): *sampled*, ``Bernoulli(sigmoid(logits))``, one seeded
  draw per split; no channel;
- ``sampled+bsc``: those bits through the BSC at the model's training eps (the hard decisions the
  decoder reads), seeded draws;
- ``thresholded``: ``sigmoid(logits) > 0.5`` (deterministic; not what the codec sends, a reference).

The classifier (:func:`fit_classifier`): multinomial logistic regression in torch, full-batch L-BFGS
from zero weights, an L2 penalty ``decay / 2 * |W|^2`` on the weights chosen from :data:`DECAYS` by
validation accuracy, trained on the training split's features of the same kind (the train, validation
and test draws are independent). Reference: the same classifier on the raw pixels. Test accuracy over
the 1,000 test images with its Clopper-Pearson 95 % interval (:func:`commsim.core.metrics.binomial_ci`);
paired comparisons IABF - NECST and ABF - NECST on the same test images (:func:`paired_accuracy`): the
difference of the per-image correctness averaged over the seeds, its 95 % paired-bootstrap interval
over the images, and an exact McNemar test per seed.

Writes ``downstream.md``, ``downstream.csv`` (one row per model and feature kind, and the pixels) and
``downstream_paired.csv``.

    python -m benchmarks.downstream               # full: 14 models (about 15 CPU-min of training when none is cached)
    python -m benchmarks.downstream --quick       # 1-epoch models at eps 0.1, seed 0, one weight decay (a smoke test)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats

from benchmarks import runlib

CODECS = ("necst", "abf", "iabf")
EPS = (0.1, 0.3)
LAM = 0.01
"""IABF's lambda at eps 0.1-0.3 (chosen on validation in Table 1)."""
BITS = 100
DECAYS = (1e-5, 1e-4, 1e-3, 1e-2)
"""The classifier's L2 penalty grid, chosen on the validation split."""
QUICK_DECAYS = (1e-3,)
"""``--quick``'s grid (one fit per classifier: a smoke test)."""
FEATURES = ("sampled", "sampled+bsc", "thresholded")
SPLITS = ("train", "val", "test")
BOOTSTRAP = 2000
"""Paired-bootstrap resamples of the test images."""


# -- the models: shared with chains.py ------------------------------------------------------------

def train_config(codec: str, eps: float, seed: int, epochs: int | None = None):
    """The :class:`TrainConfig` of a model here: the defaults but ``eps``, ``seed``, IABF's lambda
    (:data:`LAM`), the precision ``auto`` resolves to on the CPU and (``--quick``) ``epochs``."""
    from commsim.core.device import resolve_precision
    from commsim.learned.training import TrainConfig

    options = {"epochs": epochs} if epochs is not None else {}
    return TrainConfig(eps=eps, seed=seed, objective={"lam": LAM} if codec == "iabf" else {},
                       precision=resolve_precision("auto", "cpu"), **options)


def model_keys(codecs, eps_values, seeds, abf_seeds=None) -> list[tuple[str, float, int]]:
    """The models ``(codec, eps, seed)`` of a grid: every codec at every eps for ``seeds``, ABF for
    ``abf_seeds`` if given (a reference beside the claim's IABF-NECST pair: fewer seeds save its training)."""
    return [(codec, float(eps), int(seed)) for codec in codecs for eps in eps_values
            for seed in (abf_seeds if codec == "abf" and abf_seeds is not None else seeds)]


def trained_models(source, keys, epochs: int | None = None) -> dict:
    """``{(codec, eps, seed): trained LearnedCodec}`` (eval mode, CPU) for the ``keys`` (:func:`model_keys`)
    from the checkpoint cache; the missing ones are trained now, one batched ensemble per codec, into
    their cache entries."""
    from commsim.learned.checkpoints import CheckpointError
    from commsim.learned.zoo import cached_or_trained, train_and_save_many

    models, missing = {}, {}
    for codec, eps, seed in keys:
        config = train_config(codec, eps, seed, epochs)
        try:
            models[codec, eps, seed] = cached_or_trained(codec, source.name, BITS, config, source, device="cpu",
                                                         train_if_missing=False)[0]
        except CheckpointError:
            missing.setdefault(codec, []).append(((codec, eps, seed), config))
    for codec, items in missing.items():
        print(f"training {len(items)} {codec} models as one ensemble: {', '.join(f'eps {k[1]:g} seed {k[2]}' for k, _ in items)}",
              flush=True)
        trained = train_and_save_many(codec, source, BITS, [config for _, config in items], device="cpu", progress=False,
                                      notify=print)
        for (key, _), (model, result, _) in zip(items, trained):
            models[key] = model.eval()
            print(f"  {codec} eps {key[1]:g} seed {key[2]}: val {result.val_value:.3f}, {result.seconds:.0f} s", flush=True)
    return models


def train_seconds(model) -> float:
    """The training seconds its checkpoint records (a member of an ensemble: its share)."""
    return float(model.metadata.get("train_seconds", float("nan")))


# -- the classifier: shared with chains.py --------------------------------------------------------

@dataclass
class Classifier:
    """Multinomial logistic regression ``x [n, d] -> logits x @ weight + bias`` (``weight [d, k]``,
    ``bias [k]``), with the L2 penalty it was fitted with and its validation accuracy per penalty tried."""

    weight: torch.Tensor
    bias: torch.Tensor
    decay: float
    val_accuracy: dict

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float() @ self.weight + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Labels ``[n]``."""
        return self.logits(x).argmax(1)

    def confidence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(labels [n], the softmax probability of each label [n])``."""
        probs = torch.softmax(self.logits(x), 1)
        conf, labels = probs.max(1)
        return labels, conf


def fit_logistic(x: torch.Tensor, y: torch.Tensor, decay: float, classes: int = 10,
                 max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [d, classes], bias [classes])`` minimising the mean cross-entropy of ``x [n, d]``
    against labels ``y [n]`` plus ``decay / 2 * |weight|^2``: full-batch L-BFGS (strong Wolfe line
    search, at most ``max_iter`` iterations: on the pixels, 100 score what 200 do on validation) from
    zero weights, so the same data give the same weights."""
    x = x.flatten(1).float()
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6,
                                  tolerance_change=1e-9, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + decay / 2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def fit_classifier(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                   decays=DECAYS, classes: int = 10) -> Classifier:
    """The logistic regression of :func:`fit_logistic` fitted on ``train = (x [n, d], y [n])`` at each
    penalty of ``decays``, the one with the best accuracy on ``val`` kept (ties: the larger penalty)."""
    if not decays:
        raise ValueError("give at least one weight decay to choose from")
    best, scores = None, {}
    for decay in sorted(decays, reverse=True):
        weight, bias = fit_logistic(*train, decay, classes)
        model = Classifier(weight, bias, decay, scores)
        scores[decay] = float((model.predict(val[0]) == val[1]).float().mean())
        if best is None or scores[decay] > scores[best.decay]:
            best = model
    return best


def pixel_classifier(source, decays=DECAYS) -> Classifier:
    """The linear classifier on the raw pixels of ``source``'s training split, its penalty chosen on validation."""
    return fit_classifier(source.tensors("train"), source.tensors("val"), decays)


# -- features ------------------------------------------------------------------------------------

def feature_seed(*keys: int) -> int:
    """A generator seed for one draw of features, from integer keys (model seed, split, kind)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


@torch.no_grad()
def code_features(model, x: torch.Tensor, kind: str, eps: float, seed: int) -> torch.Tensor:
    """The 100-bit features ``[n, m]`` in {0, 1} of images ``x [n, C, H, W]`` (kinds: :data:`FEATURES`),
    drawn from ``seed``."""
    from commsim.channels import get_channel
    from commsim.channels.base import hard_decisions

    if kind == "thresholded":
        return (model.logits(x) > 0).float()
    generator = torch.Generator().manual_seed(seed)
    bits = model.encode(x, generator)
    if kind == "sampled":
        return bits
    if kind == "sampled+bsc":
        return hard_decisions(get_channel("bsc")(bits, generator, eps=eps))
    raise ValueError(f"unknown feature kind {kind!r}; give one of {', '.join(FEATURES)}")


# -- statistics ------------------------------------------------------------------------------------

def accuracy_row(correct: np.ndarray) -> dict:
    """``accuracy``, its Clopper-Pearson 95 % ``low`` / ``high`` and ``images`` from per-image correctness ``[n]``."""
    from commsim.core.metrics import binomial_ci

    est = binomial_ci(float(np.sum(correct)), len(correct))
    return {"accuracy": est.mean, "low": est.low, "high": est.high, "images": est.count}


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact (binomial) McNemar p-value of two classifiers' per-image correctness ``[n]`` (bool) on the same images."""
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_accuracy(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP) -> dict:
    """``a`` minus ``b``: per-image correctness ``[seeds, n]`` (bool) of two codecs on the same test images,
    seed ``s`` of one paired with seed ``s`` of the other. ``diff``: the mean over seeds and images of the
    difference, with its 95 % paired-bootstrap interval over the images (``seed``: the resampling's);
    ``mcnemar_p``: the exact McNemar p-value per seed; ``seeds_better``: seeds where ``a`` is more accurate."""
    a, b = np.atleast_2d(a).astype(bool), np.atleast_2d(b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison of different shapes {a.shape} and {b.shape}")
    per_image = a.mean(0) - b.mean(0)
    rng = np.random.default_rng(seed)
    means = per_image[rng.integers(0, len(per_image), (resamples, len(per_image)))].mean(1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"diff": float(per_image.mean()), "diff_low": float(low), "diff_high": float(high),
            "mcnemar_p": [mcnemar_p(x, y) for x, y in zip(a, b)],
            "seeds_better": int(np.sum(a.mean(1) > b.mean(1))), "seeds": len(a)}


# -- the benchmark ---------------------------------------------------------------------------------

def evaluate(source, models: dict, decays=DECAYS) -> tuple[list[dict], dict]:
    """Rows (one per model and feature kind, and one for the pixels) and the per-image test correctness
    ``{(codec, eps, seed, kind): bool [n]}``; each classifier's penalty chosen from ``decays``."""
    data = {split: source.tensors(split) for split in SPLITS}
    rows, correct = [], {}
    pixels = pixel_classifier(source, decays)
    hit = (pixels.predict(data["test"][0]) == data["test"][1]).numpy()
    rows.append({"codec": "pixels", "eps": None, "seed": None, "features": "pixels", "decay": pixels.decay,
                 "val_accuracy": pixels.val_accuracy[pixels.decay], **accuracy_row(hit), "train_seconds": None})
    for (codec, eps, seed), model in sorted(models.items()):
        for k, kind in enumerate(FEATURES):
            feats = {split: (code_features(model, data[split][0], kind, eps, feature_seed(seed, i, k)), data[split][1])
                     for i, split in enumerate(SPLITS)}
            clf = fit_classifier(feats["train"], feats["val"], decays)
            hit = (clf.predict(feats["test"][0]) == feats["test"][1]).numpy()
            correct[codec, eps, seed, kind] = hit
            rows.append({"codec": codec, "eps": eps, "seed": seed, "features": kind, "decay": clf.decay,
                         "val_accuracy": clf.val_accuracy[clf.decay], **accuracy_row(hit),
                         "train_seconds": train_seconds(model)})
        print(f"{codec} eps {eps:g} seed {seed}: " + ", ".join(
            f"{r['features']} {r['accuracy']:.3f}" for r in rows[-len(FEATURES):]), flush=True)
    return rows, correct


def comparisons(correct: dict, pairs=(("iabf", "necst"), ("abf", "necst"))) -> list[dict]:
    """:func:`paired_accuracy` of each pair of codecs at each eps and feature kind, over the seeds both have."""
    out = []
    keys = {(e, k) for (_, e, _, k) in correct}
    for a, b in pairs:
        for eps, kind in sorted(keys):
            seeds = sorted(s for (c, e, s, k) in correct if c == a and e == eps and k == kind
                           and (b, e, s, k) in correct)
            if not seeds:
                continue
            result = paired_accuracy(np.stack([correct[a, eps, s, kind] for s in seeds]),
                                     np.stack([correct[b, eps, s, kind] for s in seeds]))
            out.append({"comparison": f"{a} - {b}", "eps": eps, "features": kind, **result,
                        "mcnemar_p": ";".join(f"{p:.3g}" for p in result["mcnemar_p"])})
    return out


def verdict(paired_rows: list[dict], frame: pd.DataFrame) -> list[str]:
    """The verdict lines: are the codes useful (far above chance, how far from the pixels), and is IABF's
    better than NECST's (the paired interval of IABF - NECST on the sampled and sampled+bsc features)."""
    codes = frame[frame["codec"] != "pixels"]
    pixels = float(frame.loc[frame["codec"] == "pixels", "accuracy"].iloc[0])
    sent = codes[codes["features"].isin(["sampled", "sampled+bsc"])]
    lines = [f"- Useful representations: the linear probe on the codes the codecs send scores "
             f"{sent['accuracy'].min():.3f} to {sent['accuracy'].max():.3f} (chance 0.1; raw pixels {pixels:.3f})."]
    calls = []
    for r in paired_rows:
        if r["comparison"] != "iabf - necst" or r["features"] == "thresholded":
            continue
        side = "better" if r["diff_low"] > 0 else "worse" if r["diff_high"] < 0 else "no different"
        calls.append(side)
        lines.append(f"  - eps {r['eps']:g}, {r['features']}: IABF - NECST {r['diff']:+.4f} "
                     f"[{r['diff_low']:+.4f}, {r['diff_high']:+.4f}] ({r['seeds_better']}/{r['seeds']} seeds better; "
                     f"McNemar p per seed {r['mcnemar_p']}): IABF {side}")
    if calls:
        if all(c == "better" for c in calls):
            summary = "supported: IABF's codes are more useful than NECST's at every eps and feature kind measured"
        elif "better" in calls and "worse" not in calls:
            summary = "partly supported: IABF's codes are more useful than NECST's in some settings and no different in the others"
        elif "worse" in calls and "better" not in calls:
            summary = "not supported: IABF's codes are less useful than NECST's where they differ"
        elif "better" not in calls:
            summary = "not supported: IABF's codes are no more useful than NECST's (no difference beyond the intervals)"
        else:
            summary = "mixed: IABF's codes are more useful in some settings and less in others"
        lines.insert(1, f"- **Verdict (IABF vs NECST, linear probe): {summary}.**")
    return lines


def report(frame: pd.DataFrame, paired_rows: list[dict], seeds: dict[str, list[int]], epochs_note: str,
           decays=DECAYS) -> list[str]:
    """The Markdown report lines (``seeds``: the seeds of each group of codecs, in words)."""
    eps_text = ", ".join(f"{e:g}" for e in sorted(set(frame["eps"].dropna())))
    seed_text = "; ".join(f"{who} seed{'s' if len(s) > 1 else ''} " + ", ".join(map(str, s)) for who, s in seeds.items())
    lines = ["# Downstream classification on the codes (IABF paper's claim)", "",
             f"MNIST (embedded: 8,000 / 1,000 / 1,000), {BITS} bits, BSC; NECST, ABF, IABF (lambda {LAM:g}) trained at "
             f"eps {eps_text}, {seed_text}; "
             f"{epochs_note}. Linear probe: multinomial logistic regression (torch, full-batch L-BFGS), L2 penalty from "
             f"{', '.join(f'{d:g}' for d in decays)} chosen on validation accuracy. Features: `sampled` = the bits the codec "
             "sends (sampled from Bernoulli(sigmoid(logits)), as `Pipeline` encodes), `sampled+bsc` = those through the BSC "
             "at the training eps, `thresholded` = sigmoid(logits) > 0.5 (a reference, not what is sent); independent "
             "seeded draws for the train, validation and test splits. Accuracy on the 1,000 test images, Clopper-Pearson "
             f"95 % interval. Machine: {runlib.machine()}, load {runlib.load_average()}.", "", "## Verdict", "",
             *verdict(paired_rows, frame), "", "## Test accuracy (mean over seeds; the interval: the seeds' range of "
             "the per-seed 95 % intervals)", ""]
    table = []
    for (codec, eps, kind), g in frame[frame["codec"] != "pixels"].groupby(["codec", "eps", "features"], sort=False):
        table.append([f"{eps:g}", kind, codec, f"{g['accuracy'].mean():.4f}", f"[{g['low'].min():.4f}, {g['high'].max():.4f}]",
                      " ".join(f"{a:.4f}" for a in g["accuracy"]), " ".join(f"{d:g}" for d in g["decay"])])
    table.sort(key=lambda r: (r[0], FEATURES.index(r[1]), CODECS.index(r[2]) if r[2] in CODECS else 9))
    pix = frame[frame["codec"] == "pixels"].iloc[0]
    table.append(["–", "pixels (784)", "reference", f"{pix['accuracy']:.4f}", f"[{pix['low']:.4f}, {pix['high']:.4f}]",
                  f"{pix['accuracy']:.4f}", f"{pix['decay']:g}"])
    lines += runlib.markdown_table(["eps", "features", "codec", "accuracy", "95 % CI", "per seed", "decay per seed"], table)
    lines += ["", "## Paired comparisons on the same test images", "",
              "diff: per-image correctness averaged over the seeds, a minus b; 95 % paired bootstrap over the 1,000 images "
              f"({BOOTSTRAP} resamples, seed 0); exact McNemar p per seed.", ""]
    lines += runlib.markdown_table(
        ["comparison", "eps", "features", "diff", "95 % CI", "seeds a better", "McNemar p per seed"],
        [[r["comparison"], f"{r['eps']:g}", r["features"], f"{r['diff']:+.4f}", f"[{r['diff_low']:+.4f}, {r['diff_high']:+.4f}]",
          f"{r['seeds_better']}/{r['seeds']}", r["mcnemar_p"]] for r in paired_rows])
    seconds = frame.drop_duplicates(["codec", "eps", "seed"])["train_seconds"].dropna()
    lines += ["", f"Training: {len(seconds)} models, {seconds.sum() / 60:.1f} min of wall time summed as their checkpoints "
              "record it (a member of an ensemble: its share of the ensemble's wall time; cached models: the time when they "
              "were trained; on a shared machine, indicative only)."]
    return lines


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1-epoch models at eps 0.1, seed 0, one weight decay")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds of NECST and IABF per eps (default 3)")
    parser.add_argument("--abf-seeds", type=int, default=1, help="training seeds of ABF per eps (default 1: seed 0)")
    parser.add_argument("--eps", type=float, nargs="+", default=list(EPS), help="training eps values (default 0.1 0.3)")
    args = runlib.parse_args(parser, argv)
    try:
        check_grid(args.seeds, args.eps)
        check_grid(args.abf_seeds, args.eps, "--abf-seeds")
    except ValueError as exc:
        return runlib.usage_error(exc)
    epochs, seeds, eps_values = (1, [0], [0.1]) if args.quick else (None, list(range(args.seeds)), args.eps)
    abf_seeds = [0] if args.quick else list(range(args.abf_seeds))
    decays = QUICK_DECAYS if args.quick else DECAYS
    from commsim.data import load_dataset

    source = load_dataset("mnist")
    models = trained_models(source, model_keys(CODECS, eps_values, seeds, abf_seeds), epochs)
    rows, correct = evaluate(source, models, decays)
    frame = pd.DataFrame(rows)
    paired_rows = comparisons(correct)
    args.output.csv(frame)
    args.output.csv(pd.DataFrame(paired_rows), part="_paired")
    args.output.report(report(frame, paired_rows, {"NECST and IABF": seeds, "ABF": abf_seeds}, epoch_note(epochs), decays))
    return 0


def epoch_note(epochs: int | None) -> str:
    """How long the models trained, in words."""
    from commsim.core.protocol import DEFAULT_EPOCHS

    return (f"{epochs} epoch{'s' if epochs != 1 else ''} (--quick)" if epochs is not None else
            f"the default recipe (onecycle250, {DEFAULT_EPOCHS} epochs, estimator st, precision auto)")


def check_grid(seeds: int, eps_values, option: str = "--seeds") -> None:
    """``ValueError`` unless 1 <= seeds <= 10 and every eps is a training eps in (0, 0.5]."""
    if not 1 <= seeds <= 10:
        raise ValueError(f"{option} must be in [1, 10], got {seeds}")
    if not eps_values or not all(0 < e <= 0.5 for e in eps_values):
        raise ValueError("--eps values must be in (0, 0.5]")


if __name__ == "__main__":
    sys.exit(main())
