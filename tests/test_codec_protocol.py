"""A new kind of codec, defined here and registered at run time, runs through ``run``, ``sweep`` and
``plot`` (and, in test_ray_executor.py, a Ray sweep) without any of them knowing it: the codec protocol
of :mod:`commsim.core.protocol` is all they ask.

The toy kind needs a fitted file before it is built (the mean training image, as a safetensors file in
the cache: a :class:`~commsim.core.protocol.Requirement`), sends no information, and decodes every frame
to that mean image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from commsim.cli import cli
from commsim.core.codec import Codec
from commsim.core.files import atomic_path, cache_dir, file_sha256
from commsim.core.protocol import Request, TrainsNothing
from commsim.core.registry import CODECS
from commsim.data import load_dataset

NAME = "toy-mean"


@dataclass(frozen=True)
class MeanFit:
    """The toy's requirement: the mean training image of a data set, fitted once into the cache."""

    dataset: str
    data_path: str | None
    key: str

    def describe(self) -> str:
        return f"fitting the mean image of {self.dataset}"

    def cache_path(self) -> Path:
        return cache_dir() / "checkpoints" / self.key

    def find(self) -> Path | None:
        return self.cache_path() if self.cache_path().is_file() else None

    def make(self, out=None, progress=False, notify=None):
        path = Path(out) if out is not None else self.cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        images = load_dataset(self.dataset, self.data_path).tensors("train")[0]
        with atomic_path(path) as tmp:
            save_file({"mean": images.mean(0).contiguous()}, str(tmp))
        return path, True

    def seconds(self) -> float:
        return 0.1


class MeanCodec(Codec):
    """Sends zeros; decodes to the fitted mean image ``[B, C, H, W]``."""

    name = NAME

    def __init__(self, bits, image_shape, mean: torch.Tensor, path: Path):
        super().__init__(bits, image_shape)
        self.register_buffer("mean", mean)
        self.path = path

    def encode(self, x, generator=None):
        return torch.zeros(self.check_images(x).shape[0], self.bits, device=x.device)

    def decode(self, llr, *, x=None, generator=None):
        return self.mean.expand(self.check_llr(llr).shape[0], *self.image_shape).clone(), self.no_failures(llr)

    def row_fields(self):
        return {"checkpoint": self.path.name, "checkpoint_sha256": file_sha256(self.path)}


class ToyEntry(TrainsNothing):
    """A toy codec kind: the mean training image, whatever is sent."""

    name = NAME
    what = "a toy"

    def check_bits(self, bits):
        return int(bits)

    def check(self, request: Request):
        return []  # its file may be given as a checkpoint (plot does)

    def requirement(self, request: Request, source=None):
        return MeanFit(request.dataset, request.data_path, f"{NAME}-{request.dataset}.safetensors")

    def codec_for(self, request: Request, source, artifact):
        path = Path(artifact)
        return MeanCodec(request.bits, source.image_shape, load_file(path)["mean"], path).to(request.device)


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy kind in the codec registry for one test (and nowhere else)."""
    monkeypatch.setitem(CODECS._entries, NAME, ToyEntry())
    monkeypatch.setitem(CODECS._docs, NAME, "A toy codec kind defined in a test.")


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_new_codec_kind_runs_through_run_sweep_and_plot(toy_registered, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    out = invoke("run", "--codec", NAME, "--eps", "0.1", "--bits", "4", "--limit", "20")
    assert f"{NAME}  bsc" in out and "l2_per_image" in out
    fitted = tmp_path / "home" / "checkpoints" / f"{NAME}-mnist.safetensors"
    assert fitted.is_file()  # the requirement was made into the cache

    folder = tmp_path / "sweep"
    invoke("sweep", "--codec", NAME, "--eps", "0.05,0.2", "--bits", "40", "--limit", "20", "--out", str(folder))
    toy = pd.read_csv(folder / "results.csv")
    assert len(toy) == 2 and toy["train_eps"].isna().all() and (toy["checkpoint"] == fitted.name).all()
    # sending nothing, the toy's distortion is that of the mean image at every eps
    source = load_dataset("mnist")
    x = source.tensors("test")[0][:20]
    expected = (x - source.tensors("train")[0].mean(0)).pow(2).flatten(1).sum(1).mean().item()
    assert toy["l2_per_image"].tolist() == pytest.approx([expected, expected], rel=1e-5)

    plotted = invoke("plot", str(folder / "results.csv"))
    assert (folder / "distortion_vs_eps.png").is_file() or "wrote" in plotted
    assert any(f"recon_{NAME}" in line for line in plotted.splitlines()), plotted
