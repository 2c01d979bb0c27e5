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

    python benchmarks/estimators.py --epochs 10
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from commsim.channels import BSC  # noqa: E402
from commsim.learned.estimators import bernoulli_draws  # noqa: E402
from commsim.learned.necst import NECSTObjective, noisy_probs  # noqa: E402
from commsim.learned.training import TrainConfig, train_codec  # noqa: E402
from commsim.learned.zoo import build_codec  # noqa: E402
from commsim.data import load_dataset  # noqa: E402
from commsim.pipeline import Pipeline  # noqa: E402


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
    start = time.perf_counter()
    result = train_codec(codec, source, config, progress=False)
    seconds = time.perf_counter() - start
    test = Pipeline(source, codec, BSC()).evaluate("test", seed=0, eps=eps).metrics["l2_per_image"]
    return {"form": form, "temperature": temperature if "gumbel" in form else "", "epochs": epochs,
            "best_epoch": result.best_epoch, "val": result.val_value, "test": test.mean, "test_low": test.low,
            "test_high": test.high, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--forms", default="st,st_sent,soft,gumbel:0.5,gumbel:1,gumbel_soft:0.5,vimco")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 epoch of st and gumbel (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.forms = 1, "st,gumbel:1"
    torch.set_num_threads(args.threads)
    source = load_dataset("mnist")
    rows = []
    for item in args.forms.split(","):
        form, _, temp = item.partition(":")
        rows.append(run(source, form, args.epochs, args.eps, float(temp or 1.0)))
        r = rows[-1]
        print(f"{form:12s} T={r['temperature']!s:4s} test l2 {r['test']:.2f} [{r['test_low']:.2f}, {r['test_high']:.2f}] "
              f"val {r['val']:.2f} best epoch {r['best_epoch']} ({r['seconds']:.0f} s)", flush=True)
    lines = [f"# Pathwise estimator forms (NECST, MNIST, 100 bits, eps {args.eps:g})", "",
             f"Command: `python benchmarks/estimators.py{' --quick' if args.quick else ''} --epochs {args.epochs} --forms {args.forms}`; recipe onecycle (peak 3e-3), "
             f"{args.threads} thread(s), {platform.processor() or platform.machine()}; test l2_per_image with one BSC "
             "draw per test image (1000 images), 95 % CI.", "",
             "| form | temperature | test l2 | 95 % CI | val l2 (3 draws) | best epoch | seconds |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['form']} | {r['temperature']} | {r['test']:.2f} | [{r['test_low']:.2f}, {r['test_high']:.2f}] | "
              f"{r['val']:.2f} | {r['best_epoch']}/{r['epochs']} | {r['seconds']:.0f} |" for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    name = "estimators_quick" if args.quick else "estimators"
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
