"""Every registered codec through the one factory (:func:`commsim.codecs.make_codec`) and one batch
through ``Pipeline(source, codec, channel)(x, ...)``: on the CPU, and on CUDA where there is one.

The data are a 900-image slice of the embedded MNIST; learned codecs train 1 epoch at 8 bits,
separated ones get enough bits for their source code (the Pillow codecs need about 2,000)."""
from __future__ import annotations

import pytest
import torch

from commsim.channels import get_channel
from commsim.codecs import make_codec
from commsim.core.registry import CODECS
from commsim.data import load_dataset, split_in_order
from commsim.data.sources import ImageSource
from commsim.learned import LearnedCodec, TrainConfig
from commsim.pipeline import Pipeline

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
PILLOW = ("jpeg", "webp", "jpeg2000")


def budget_bits(name: str) -> int:
    source = name.split("+")[0]
    if "+" not in name:
        return 8  # learned: the smallest network trains in a second
    return 2000 if source in PILLOW else 64


def all_codecs() -> list:
    names = CODECS.names()
    # the Pillow codes with a real channel code simulate 2,000-bit codes (1-3 s each) and neural trains a
    # model per scheme: the default suite keeps every source code (with the ideal codes), every channel-code
    # family (with pca and vq) and neural with ldpc; the other pairs are slow
    def slow_pair(source: str, family: str) -> bool:
        real = family not in ("ideal", "ideal-fbl")
        union = family == "best"  # every other family's codes, each tested with pca and vq: slow (~1 s each)
        return real and (union or source in PILLOW or (source == "neural" and family != "ldpc"))

    slow = {n for n in names if "+" in n and slow_pair(*n.split("+", 1))}
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


@pytest.fixture(scope="module")
def tiny() -> ImageSource:
    full = load_dataset("mnist")
    return ImageSource("mnist", full.images[:900], full.labels[:900], split_in_order(900, 600, 150, 150))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", all_codecs())
def test_every_codec_runs_a_batch_through_the_pipeline(tiny, name, device, one_torch_thread):
    bits = budget_bits(name)
    made = make_codec(name, tiny, bits, "bsc", {"eps": 0.05}, seed=0,
                      training=TrainConfig(eps=0.05, epochs=1, batch_size=100), device=device)
    codec = made.codec
    assert all(t.device.type == device for t in (*codec.parameters(), *codec.buffers()))  # moved with .to(device)
    assert codec.bits == bits and (made.checkpoint is not None) == isinstance(codec, LearnedCodec)
    x = tiny.tensors("test")[0][:6].to(device)
    pipeline = Pipeline(tiny, codec, get_channel("bsc"))
    with torch.no_grad():
        x_hat, llr, sent = pipeline(x, torch.Generator(device=device).manual_seed(0), eps=0.05)
        link = pipeline.link(x, torch.Generator(device=device).manual_seed(0), eps=0.05)
    assert x_hat.shape == x.shape and llr.shape == sent.shape == (6, bits)
    assert x_hat.device.type == llr.device.type == sent.device.type == device
    assert torch.isfinite(x_hat).all() and 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    assert torch.equal(link.x_hat, x_hat)  # forward and link are one implementation, one generator
    assert link.failures.shape == (6,) and link.failures.dtype == torch.bool and link.failures.device.type == device
    if isinstance(codec, LearnedCodec):
        assert not link.failures.any()
    for attribute in ("last_failures", "last_fits", "last_needed_bits", "_genie"):
        assert not hasattr(codec, attribute)


def test_the_factory_refuses_what_does_not_fit(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown codec"):
        make_codec("jpeg+turbo", tiny, 100)
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="takes no checkpoint"):
        make_codec("pca+rep", tiny, 100, checkpoint=tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="does not exist"):
        make_codec("necst", tiny, 100, checkpoint=tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="channel bits per image is more than"):
        make_codec("necst", tiny, 10**9)
