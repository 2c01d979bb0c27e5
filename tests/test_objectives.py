"""Learned codecs: VIMCO, NECST training, ABF noise allocation, infomax, checkpoints."""
import math

import pytest
import torch

from commsim import load_dataset
from commsim.channels import BSC
from commsim.learned.abf import ABFObjective, adversarial_levels, allocate_levels, flip_mask
from commsim.learned.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from commsim.learned.iabf import Discriminator, IABFObjective, discriminator_loss, marginal_information, permute_dimensions
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.vimco import vimco_surrogate, vimco_terms
from commsim.learned.zoo import build_codec, codec_from_checkpoint, train_and_save
from commsim.core.metrics import l2_per_image
from commsim.data.sources import ImageSource, split_in_order
from commsim.pipeline import Pipeline


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_vimco_leave_one_out_by_hand():
    losses = torch.tensor([[1.0], [2.0], [4.0]])  # K = 3 samples of one image
    bound, signal, weights = vimco_terms(losses, "official")
    expected_bound = math.log((math.e ** 1 + math.e ** 2 + math.e ** 4) / 3)
    assert bound.item() == pytest.approx(expected_bound, rel=1e-6)
    # sample 0 replaced by the mean of the others (3.0): log((e^3 + e^2 + e^4) / 3)
    loo = [math.log((math.e ** 3 + math.e ** 2 + math.e ** 4) / 3),
           math.log((math.e ** 1 + math.e ** 2.5 + math.e ** 4) / 3),
           math.log((math.e ** 1 + math.e ** 2 + math.e ** 1.5) / 3)]
    assert signal[:, 0].tolist() == pytest.approx([expected_bound - v for v in loo], rel=1e-5)
    assert weights[:, 0].tolist() == pytest.approx(torch.softmax(losses[:, 0], 0).tolist())
    # the worst sample gets a positive signal (its probability is pushed down), the best a negative one
    assert signal[2, 0] > 0 > signal[0, 0]


def test_vimco_surrogate_gradients():
    losses = torch.tensor([[1.0, 3.0], [2.0, 0.5]], requires_grad=True)
    log_q = torch.zeros(2, 2, requires_grad=True)
    surrogate, bound = vimco_surrogate(losses, log_q, "official")
    surrogate.backward()
    # decoder (pathwise) gradient = d/dL of the mean bound = softmax weights / B
    assert torch.allclose(losses.grad, torch.softmax(losses.detach(), 0) / 2)
    assert torch.allclose(log_q.grad, vimco_terms(losses.detach(), "official")[1] / 2)


def test_vimco_paper_form_by_hand():
    """Eq. 31: J = -log mean exp(-L); the best sample weighs most and gets the negative signal."""
    losses = torch.tensor([[1.0], [2.0], [4.0]], requires_grad=True)
    bound, signal, weights = vimco_terms(losses, "paper")
    lme = lambda v: math.log(sum(math.exp(-u) for u in v) / 3)  # noqa: E731
    assert bound.item() == pytest.approx(-lme([1, 2, 4]), rel=1e-6)
    loo = [-lme([3, 2, 4]), -lme([1, 2.5, 4]), -lme([1, 2, 1.5])]
    assert signal[:, 0].tolist() == pytest.approx([-lme([1, 2, 4]) - v for v in loo], rel=1e-5)
    assert weights[:, 0].tolist() == pytest.approx(torch.softmax(-losses.detach()[:, 0], 0).tolist())
    assert weights[0, 0] > weights[2, 0] and signal[2, 0] > 0 > signal[0, 0]
    bound.sum().backward()
    assert torch.allclose(losses.grad, weights)
    assert bound.item() <= losses.detach().mean().item() <= vimco_terms(losses.detach(), "official")[0].item()


@pytest.mark.slow  # 2-3 s; test_training's estimator test checks the same on a smaller slice in the default run
def test_necst_short_training_beats_mean_image(mnist):
    torch.manual_seed(0)
    codec = build_codec("necst", mnist, 100)
    result = train_codec(codec, mnist, TrainConfig(eps=0.1, epochs=3, seed=0), progress=False)
    assert len(result.history) == 3
    test = Pipeline(mnist, codec, BSC()).evaluate("test", seed=0, eps=0.1).metrics["l2_per_image"]
    x, _ = mnist.tensors("test")
    mean_image = l2_per_image(x, mnist.mean_image().expand_as(x)).mean().item()
    assert mean_image == pytest.approx(52, abs=3)
    assert test.high < 0.8 * mean_image, (test, mean_image)


def test_training_is_reproducible(mnist):
    few = ImageSource("mnist", mnist.images[:2200], mnist.labels[:2200], split_in_order(2200, 2000, 100, 100))  # 20 steps
    runs = []
    for _ in range(2):
        codec = build_codec("necst", few, 20)
        train_codec(codec, few, TrainConfig(eps=0.2, epochs=1, seed=3), progress=False, val_limit=100)
        runs.append(torch.cat([p.flatten() for p in codec.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_allocate_levels_sums_to_budget_and_saturates():
    weights = torch.tensor([[100.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    levels = allocate_levels(weights, 2.0)
    assert levels.sum(1).tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert bool(((levels >= 0) & (levels <= 1)).all())
    # the dominant bit saturates at 1; the remaining 1.0 is shared 1:1:2
    assert levels[0].tolist() == pytest.approx([1.0, 0.25, 0.25, 0.5])
    assert levels[1].tolist() == pytest.approx([0.5] * 4)
    assert levels[2].tolist() == pytest.approx([0.5] * 4)


def test_flip_mask_and_adversarial_levels():
    y = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    grad = torch.tensor([[3.0, -1.0, -2.0, 0.5]])
    assert flip_mask(y, grad).tolist() == [[1.0, 0.0, 1.0, 0.0]]
    levels = adversarial_levels(y, grad, eps=0.25)  # budget 1.0 over |g| = 3, 1, 2, 0.5
    assert levels.tolist()[0] == pytest.approx([3 / 6.5, 0.0, 2 / 6.5, 0.0])


def test_abf_flips_the_high_gradient_bits(mnist):
    codec = build_codec("abf", mnist, 50)
    x = mnist.tensors("val")[0][:64]
    generator = torch.Generator().manual_seed(0)
    logits = codec.logits(x)
    levels = ABFObjective().noise_levels(codec, x, logits, 0.1, generator)
    assert levels.shape == (64, 50)
    assert bool((levels.sum(1) <= 50 * 0.1 + 1e-4).all()) and bool((levels >= 0).all())
    assert not any(p.grad is not None for p in codec.parameters())  # the gradient pass leaves no grads
    # recompute the gradient with the same draws: noise sits where |g| is large and the flip hurts
    generator = torch.Generator().manual_seed(0)
    y = (torch.rand(logits.shape, generator=generator) < torch.sigmoid(logits.detach())).float().requires_grad_(True)
    (grad,) = torch.autograd.grad(codec.reconstruction_loss(x, codec.pixel_logits(y)).sum(), y)
    hurt = flip_mask(y.detach(), grad).bool()
    assert bool((levels[~hurt] == 0).all())
    top = grad.abs().masked_fill(~hurt, -1).argmax(1)
    assert bool((levels.gather(1, top[:, None]) == levels.max(1, keepdim=True).values).all())


def test_permutation_changes_batch_but_keeps_marginals():
    generator = torch.Generator().manual_seed(0)
    codes = torch.rand(64, 10, generator=generator)
    permuted = permute_dimensions(codes, generator)
    assert not torch.equal(permuted, codes)
    for d in range(10):
        assert torch.equal(permuted[:, d].sort().values, codes[:, d].sort().values)
    rows_intact = (permuted.unsqueeze(1) == codes.unsqueeze(0)).all(-1).any(1).float().mean()
    assert rows_intact < 0.2


def test_discriminator_separates_correlated_from_independent_codes():
    generator = torch.Generator().manual_seed(0)
    disc = Discriminator(8, hidden=32)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    for _ in range(300):
        base = (torch.rand(128, 1, generator=generator) < 0.5).float()
        codes = base.expand(128, 8).clone()  # all bits equal: maximal total correlation
        loss = discriminator_loss(disc, codes, generator)
        opt.zero_grad(); loss.backward(); opt.step()
    base = (torch.rand(512, 1, generator=generator) < 0.5).float()
    codes = base.expand(512, 8).clone()
    tc = disc(codes).mean().item()
    independent = disc((torch.rand(512, 8, generator=generator) < 0.5).float()).mean().item()
    assert tc > 1.0 and independent < 0.0, (tc, independent)


def test_infomax_rises_when_optimised_on_a_toy_encoder():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=generator)
    encoder = torch.nn.Linear(6, 4)
    torch.nn.init.normal_(encoder.weight, std=0.01)
    objective = IABFObjective(lam=1.0)
    opt = torch.optim.Adam(encoder.parameters(), lr=0.05)
    def info():
        return objective.information(torch.sigmoid(encoder(x)) * 0.8 + 0.1)
    before = marginal_information(torch.sigmoid(encoder(x)) * 0.8 + 0.1).item()
    for _ in range(100):
        codes = (torch.sigmoid(encoder(x)) * 0.8 + 0.1)
        # critic step, then encoder step (Algorithm 1 order)
        closs = discriminator_loss(objective.discriminator, codes.detach(), generator) if objective.discriminator else None
        if closs is not None:
            objective.critic_optimizer.zero_grad(); closs.backward(); objective.critic_optimizer.step()
        loss = -info()
        opt.zero_grad(); loss.backward(); opt.step()
    after = marginal_information(torch.sigmoid(encoder(x)) * 0.8 + 0.1).item()
    assert after > before + 0.5, (before, after)


def test_checkpoint_roundtrip_and_refusals(tmp_path, mnist):
    codec, result, path = train_and_save("necst", mnist, 16, TrainConfig(eps=0.1, epochs=1), out=tmp_path / "c.safetensors",
                                         device="cpu", progress=False)
    loaded = codec_from_checkpoint(path, "necst", "mnist", 16, mnist, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(codec.state_dict().values(), loaded.state_dict().values()))
    assert loaded.metadata["train_eps"] == 0.1 and loaded.metadata["bits"] == 16
    with pytest.raises(CheckpointError, match="bits=16 but bits=100"):
        codec_from_checkpoint(path, "necst", "mnist", 100, mnist, device="cpu")
    with pytest.raises(CheckpointError, match="codec='necst' but codec='iabf'"):
        codec_from_checkpoint(path, "iabf", "mnist", 16, mnist, device="cpu")
    corrupt = tmp_path / "bad.safetensors"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.safetensors"
    save_file_plain = __import__("safetensors.torch", fromlist=["save_file"]).save_file
    save_file_plain({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a commsim checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    save_checkpoint(tmp_path / "x.safetensors", {"w": torch.ones(3)}, {"codec": "necst"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors", "c.safetensors", "foreign.safetensors", "x.safetensors"]


def test_conv_architecture_for_32x32_rgb():
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 3, 32, 32), dtype=np.uint8)
    source = ImageSource("tiny_rgb", images, np.zeros(30, dtype=np.int64), split_in_order(30, 20, 5, 5))
    codec = build_codec("iabf", source, 64)  # 500 bits (the paper's CIFAR code) cost 1.5 s more, testing nothing more
    assert codec.architecture == "conv"
    x = source.tensors("test")[0]
    bits = codec.encode(x, torch.Generator().manual_seed(0))
    assert bits.shape == (5, 64) and set(bits.unique().tolist()) <= {0.0, 1.0}
    x_hat, failures = codec.decode(BSC()(bits, eps=0.1))
    assert x_hat.shape == (5, 3, 32, 32) and failures.shape == (5,) and not failures.any()
    result = train_codec(codec, source, TrainConfig(eps=0.1, epochs=1, batch_size=10), progress=False)
    assert math.isfinite(result.val_value)
