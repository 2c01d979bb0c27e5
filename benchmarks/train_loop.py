"""Training throughput: commsim's ``train_codec`` against a minimal PyTorch loop of the same model.

The minimal loop is written here from scratch (no commsim code but the data set's images): NECST's
MLP (784 -> 500 -> 100 logits; 100 -> 500 -> 500 -> 784, leaky ReLU 0.2, no decoder biases), the BSC
folded into the sampling, batch 100, Adam, L2 1e-4 on the encoder weights, and either VIMCO with
K = 5 (eq. 31's form) or the straight-through estimator (one draw). It runs the same number of
epochs as commsim's ``train_codec`` (``recipe="paper"``, i.e. a constant rate, so no scheduler work
on either side), one thread each, one after the other in this process. Printed per estimator:
seconds per epoch of both, commsim's split into its training and its validation (3 channel draws
for the new recipes, 1 for "paper"), and the ratio commsim / minimal (target: at most 1.2). The
minimal loop uses torch's default Adam; commsim uses the fused one where torch has it
(:func:`commsim.core.device.make_adam`), which is most of why commsim comes out faster.

    python -m benchmarks.train_loop --epochs 3
    python -m benchmarks.train_loop --quick       # 1 epoch of st
"""
from __future__ import annotations

import math
import sys

import torch
from torch import nn

from benchmarks import runlib
from commsim.data import load_dataset
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import build_codec


def minimal_epochs(images: torch.Tensor, epochs: float, estimator: str, eps: float = 0.1, bits: int = 100,
                   samples: int = 5, seed: int = 0, batch_size: int = 100, bf16: bool = False) -> float:
    """Train the minimal loop for ``epochs`` (a fraction: that share of the first epoch's batches) on
    ``images [N, 784]``, the forward passes under ``torch.autocast`` to bfloat16 with ``bf16`` (losses in
    float32); return seconds per epoch."""
    gen = torch.Generator().manual_seed(seed)
    act = nn.LeakyReLU(0.2)
    encoder = nn.Sequential(nn.Linear(784, 500), act, nn.Linear(500, bits, bias=False))
    decoder = nn.Sequential(nn.Linear(bits, 500, bias=False), act, nn.Linear(500, 500, bias=False), act,
                            nn.Linear(500, 784, bias=False))
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)

    def epoch(share: float = 1.0) -> None:
        batches = torch.randperm(len(images), generator=gen).split(batch_size)
        for idx in batches[:max(1, round(share * len(batches)))]:
            x = images[idx]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                q = torch.sigmoid(encoder(x).float()) * (1 - 2 * eps) + eps
                k = samples if estimator == "vimco" else 1
                y = (torch.rand(k, *q.shape, generator=gen) < q.detach()).float()
                if estimator == "st":
                    y = y + q - q.detach()
                pixels = decoder(y).float()
            losses = (torch.sigmoid(pixels) - x).pow(2).sum(-1)  # [K, B]
            if estimator == "vimco":
                neg = -losses.detach()
                bound = torch.logsumexp(neg, 0) - math.log(k)
                loo_mean = (neg.sum(0, keepdim=True) - neg) / (k - 1)
                loo = torch.stack([torch.logsumexp(torch.cat([neg[:j], loo_mean[j:j + 1], neg[j + 1:]]), 0)
                                   for j in range(k)]) - math.log(k)
                signal = -(bound - loo)
                qc = q.clamp(1e-7, 1 - 1e-7)
                log_q = (y * qc.log() + (1 - y) * (-qc).log1p()).sum(-1)
                loss = ((signal * log_q).sum(0) + (torch.softmax(neg, 0) * losses).sum(0)).mean()
            else:
                loss = losses.mean()
            loss = loss + 1e-4 * sum(p.pow(2).sum() for p in encoder.parameters() if p.dim() > 1) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    whole, share = int(epochs), epochs - int(epochs)
    _, seconds, _ = runlib.timed(lambda: [epoch() for _ in range(whole)] + ([epoch(share)] if share else []))
    return seconds / epochs


def commsim_epochs(source, epochs: int, estimator: str) -> dict:
    codec = build_codec("necst", source, 100)
    result = train_codec(codec, source, TrainConfig(eps=0.1, epochs=epochs, recipe="paper", estimator=estimator),
                         progress=False)
    train = sum(h["train_seconds"] for h in result.history) / epochs
    val = sum(h["val_seconds"] for h in result.history) / epochs
    return {"total": result.seconds / epochs, "train": train, "val": val}


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1 epoch of st", out=False)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--estimators", default="vimco,st")
    args = runlib.parse_args(parser, argv)
    if args.quick:
        args.epochs, args.estimators = 1, "st"
    source = load_dataset("mnist")
    images = source.tensors("train")[0].flatten(1)
    load = runlib.load_average()
    for estimator in args.estimators.split(","):
        minimal = minimal_epochs(images, args.epochs, estimator)
        ours = commsim_epochs(source, args.epochs, estimator)
        print(f"{estimator:6s} minimal {minimal:.2f} s/epoch | commsim {ours['total']:.2f} s/epoch "
              f"(train {ours['train']:.2f} + val {ours['val']:.2f}) | ratio {ours['total'] / minimal:.2f} "
              f"(train only {ours['train'] / minimal:.2f})", flush=True)
    print(f"{args.epochs} epochs each, {torch.get_num_threads()} thread(s); load average {load} before, "
          f"{runlib.load_average()} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
