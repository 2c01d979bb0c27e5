"""Which pathwise estimator: a short side-by-side of the forms tried for ``commsim.learned.estimators``.

NECST, MNIST, 100 bits, eps 0.1, the ``onecycle`` recipe for ``--epochs`` epochs each (same seed),
test ``l2_per_image`` with one BSC draw per test image. Forms:

- ``st``: commsim's straight-through on the received bit, ``y ~ Bern(q)`` forward, ``dy/dq = 1``;
- ``st_sent``: straight-through on the *sent* bit, ``b ~ Bern(p)``, ``dy/dp = 1``, then the sampled
  flips ``y = b (1 - 2 f) + f`` (the gradient's sign follows each flip);
- ``soft``: the decoder is fed the soft received codeword ``q`` itself (deterministic, no draws);
- ``gumbel``: commsim's straight-through Gumbel-sigmoid (hard forward) at ``temperature``;
- ``gumbel_soft``: the relaxed sample itself in the forward pass (decoder trains on values in (0, 1));
- ``vimco``: the score-function baseline (K = 5).

Only ``st``, ``gumbel`` and ``vimco`` are in the package; the others are defined here.

    python -m benchmarks.estimators --epochs 10
    python -m benchmarks.estimators --quick --out /tmp/est
"""
from __future__ import annotations

import sys

import torch

from benchmarks import runlib
from commsim.channels import BSC
from commsim.data import load_dataset
from commsim.learned.estimators import bernoulli_draws
from commsim.learned.necst import NECSTObjective, noisy_probs
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec
from commsim.pipeline import Pipeline


class VariantObjective(NECSTObjective):
    """NECST's loss with one of the dropped pathwise forms."""

    variant = "st_sent"

    def code_loss(self, codec, x, logits, eps, generator):
        if self.variant == "st_sent":
            p = torch.sigmoid(logits)
            b = bernoulli_draws(p, self.samples, generator) + (p - p.detach())
            flips = bernoulli_draws(torch.as_tensor(eps, dtype=p.dtype).expand_as(p), self.samples, generator)
            y = b * (1 - 2 * flips) + flips
        elif self.variant == "soft":
            y = noisy_probs(logits, eps).unsqueeze(0)
        elif self.variant == "gumbel_soft":
            q = noisy_probs(logits, eps).clamp(1e-7, 1 - 1e-7)
            u = torch.rand((self.samples, *q.shape), generator=generator).clamp(1e-7, 1 - 1e-7)
            y = torch.sigmoid((torch.log(q) - torch.log1p(-q) + torch.log(u) - torch.log1p(-u)) / self.temperature)
        else:
            raise ValueError(self.variant)
        loss = codec.reconstruction_loss(x, codec.pixel_logits(y)).mean()
        return loss, {"loss": float(loss.detach())}


def run(source, form: str, epochs: int, eps: float, temperature: float) -> dict:
    codec = build_codec("necst", source, 100)
    estimator = form if form in ("st", "gumbel", "vimco") else "st"
    if form not in ("st", "gumbel", "vimco"):
        codec.objective_class = type(f"{form}Objective", (VariantObjective,), {"variant": form})
        if form == "gumbel_soft":
            estimator = "gumbel"
    config = TrainConfig(eps=eps, epochs=epochs, recipe="onecycle", estimator=estimator, temperature=temperature)
    result, seconds, _ = runlib.timed(lambda: train_codec(codec, source, config, progress=False))
    test = Pipeline(source, codec, BSC()).evaluate("test", seed=0, eps=eps).metrics["l2_per_image"]
    return {"form": form, "temperature": temperature if "gumbel" in form else "", "epochs": epochs,
            "best_epoch": result.best_epoch, "val": result.val_value, "test": test.mean, "test_low": test.low,
            "test_high": test.high, "seconds": seconds}


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1 epoch of st and gumbel")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--forms", default="st,st_sent,soft,gumbel:0.5,gumbel:1,gumbel_soft:0.5,vimco")
    args = runlib.parse_args(parser, argv)
    if args.quick:
        args.epochs, args.forms = 1, "st,gumbel:1"
    source = load_dataset("mnist")
    rows = []
    for item in args.forms.split(","):
        form, _, temp = item.partition(":")
        rows.append(run(source, form, args.epochs, args.eps, float(temp or 1.0)))
        r = rows[-1]
        print(f"{form:12s} T={r['temperature']!s:4s} test l2 {r['test']:.2f} [{r['test_low']:.2f}, {r['test_high']:.2f}] "
              f"val {r['val']:.2f} best epoch {r['best_epoch']} ({r['seconds']:.0f} s)", flush=True)
    lines = [f"# Pathwise estimator forms (NECST, MNIST, 100 bits, eps {args.eps:g})", "",
             f"Settings: --epochs {args.epochs} --forms {args.forms}; recipe onecycle (peak 3e-3), "
             f"{args.threads} thread(s), {runlib.machine()}; test l2_per_image with one BSC "
             "draw per test image (1000 images), 95 % CI.", ""]
    lines += runlib.markdown_table(
        ["form", "temperature", "test l2", "95 % CI", "val l2 (3 draws)", "best epoch", "seconds"],
        [[r["form"], r["temperature"], f"{r['test']:.2f}", f"[{r['test_low']:.2f}, {r['test_high']:.2f}]", f"{r['val']:.2f}",
          f"{r['best_epoch']}/{r['epochs']}", f"{r['seconds']:.0f}"] for r in rows])
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
