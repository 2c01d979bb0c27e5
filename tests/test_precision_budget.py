"""Training precision (fp32 / bf16 autocast, ``auto``) and the budget in images seen."""
import numpy as np
import pytest
import torch

from commsim.core import device as device_module
from commsim.core.device import autocast, resolve_precision
from commsim.core.files import PrecisionWarning
from commsim.core.protocol import DEFAULT_EPOCHS, DEFAULT_IMAGES, Budget, Request, parse_images
from commsim.codecs import entry
from commsim.data import load_dataset
from commsim.data.sources import ImageSource, split_in_order
from commsim.learned.training import TrainConfig, make_objective, train_codec
from commsim.learned.zoo import build_codec, cache_entry


def small_digits(train: int = 300) -> ImageSource:
    full = load_dataset("mnist")
    n = train + 200
    return ImageSource("mnist", full.images[:n], full.labels[:n], split_in_order(n, train, 100, 100))


def test_images_budget_becomes_epochs_for_the_data():
    assert parse_images("800k") == parse_images(800_000) == parse_images("0.8M") == 800_000
    for bad in ("lots", "0", "1.5", "-3k"):
        with pytest.raises(ValueError):
            parse_images(bad)
    assert DEFAULT_IMAGES == DEFAULT_EPOCHS * load_dataset("mnist").size("train")  # 75 epochs of the embedded data
    assert Budget().epochs_for(8000) == 75 and Budget().epochs_for(60_000) == 10  # the same images: about the same cost
    assert Budget(images="800k").epochs_for(60_000) == 14  # rounded up to whole epochs
    assert Budget(images="1k").epochs_for(300) == 4 and Budget(epochs=7).epochs_for(60_000) == 7
    with pytest.raises(ValueError, match="epochs or images"):
        Budget(epochs=3, images=1000)
    # the learned codecs' configuration follows the data set at hand
    source = small_digits(300)
    request = Request("mnist", 8, "bsc", {"eps": 0.1}, budget=Budget(images=3000, precision="fp32"))
    config, _ = entry("necst").training_config(request, source)
    assert config.epochs == 10 and config.precision == "fp32"


def test_precision_is_part_of_the_config_and_fp32_records_are_unchanged(monkeypatch):
    fp32, bf16 = TrainConfig(eps=0.1, epochs=100), TrainConfig(eps=0.1, epochs=100, precision="bf16")
    assert "precision" not in fp32.record() and bf16.record()["precision"] == "bf16"
    source = load_dataset("mnist")
    assert cache_entry("necst", source, 8, fp32).name.startswith("necst-mnist-b8-eps0.1-e100-s0-")
    assert cache_entry("necst", source, 8, bf16).name.startswith("necst-mnist-b8-eps0.1-bf16-e100-s0-")
    with pytest.raises(ValueError, match="resolve_precision"):
        TrainConfig(precision="auto")
    with pytest.raises(ValueError, match="unknown precision"):
        Budget(precision="fp16")
    monkeypatch.setattr(device_module, "has_bf16_units", lambda device="cpu": False)
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.warns(PrecisionWarning, match="emulated"):
        assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(device_module, "has_bf16_units", lambda device="cpu": True)
    assert resolve_precision("auto", "cpu") == "bf16"


def test_bf16_autocast_keeps_losses_and_probabilities_in_float32():
    source = small_digits(300)
    codec = build_codec("iabf", source, 16)
    config = TrainConfig(eps=0.1, precision="bf16")
    objective = make_objective(codec, config)
    x = source.served("train")[:50]
    with autocast("cpu", "bf16"):
        inner = codec.encoder.net[1](x.flatten(1))
        logits, critic = codec.logits(x), objective.critic_loss(codec, x, 0.1, torch.Generator().manual_seed(0))
        loss, _ = objective(codec, x, 0.1, torch.Generator().manual_seed(1))
    assert inner.dtype == torch.bfloat16  # the matrix products run in bf16 ...
    assert logits.dtype == loss.dtype == critic.dtype == torch.float32  # ... what the losses read does not


def test_bf16_training_lands_near_fp32():
    """Two short trainings from one seed, fp32 and bf16: the same random draws, validation within a few %."""
    source = small_digits(200)
    vals = {}
    for precision in ("fp32", "bf16"):
        codec = build_codec("necst", source, 16)
        result = train_codec(codec, source, TrainConfig(eps=0.1, epochs=2, batch_size=50, precision=precision), progress=False,
                              val_limit=50)
        vals[precision] = result.val_value
        assert all(p.dtype == torch.float32 for p in codec.parameters())  # master weights stay fp32
    assert abs(vals["bf16"] - vals["fp32"]) < 0.03 * vals["fp32"], vals


def test_cli_warns_once_when_bf16_is_emulated(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from commsim.cli import cli

    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path))
    monkeypatch.setattr(device_module, "has_bf16_units", lambda device="cpu": False)
    result = CliRunner().invoke(cli, ["train", "--codec", "necst", "--bits", "8", "--epochs", "1", "--precision", "bf16",
                                      "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning: bf16")]
    assert len(warned) == 1 and "emulated" in warned[0], result.output


def test_training_cost_estimate_follows_codec_precision_data_and_estimator():
    """The sweep's cost notice: seconds per image seen x the data's size x epochs, plus validation."""
    from commsim.data import load_dataset
    from commsim.learned.entry import SECONDS_PER_IMAGE, VALIDATION_SECONDS, Training
    from commsim.learned.training import TrainConfig

    source = load_dataset("mnist")

    def cost(codec="necst", source=source, **config):
        return Training(codec, "mnist", None, 100, TrainConfig(eps=0.1, epochs=10, **config), "k").with_source(source).seconds()

    n = source.size("train")
    assert cost() == pytest.approx((SECONDS_PER_IMAGE["necst", "fp32"] * n + VALIDATION_SECONDS) * 10)
    assert cost(precision="bf16") < cost() < cost("abf") < cost("iabf")
    assert cost(estimator="vimco") > 1.9 * cost() - VALIDATION_SECONDS * 10
    validation = VALIDATION_SECONDS * 10  # the same whatever the training split's size
    assert cost(source=source.with_train_size(n // 4)) - validation == pytest.approx((cost() - validation) / 4)
