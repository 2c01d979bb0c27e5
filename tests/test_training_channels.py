"""Training over any registered channel, and the soft-input learned decoder (issue 9)."""
import pytest
import torch
from click.testing import CliRunner

from commsim.channels import AWGN, LLR_LIMIT
from commsim.cli import cli
from commsim.data import load_dataset
from commsim.learned.checkpoints import read_metadata
from commsim.learned.codec import decoder_inputs
from commsim.learned.necst import NECST, NECSTObjective
from commsim.learned.training import TrainConfig
from commsim.learned.zoo import build_codec, cached_checkpoints, cached_or_trained, checkpoint_name, codec_from_checkpoint


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def train_cli(*args):
    return CliRunner().invoke(cli, ["train", "--codec", "necst", "--epochs", "1", "--bits", "8", *args])


@pytest.mark.parametrize("args, channel, params, decoder_input", [
    (["--channel", "awgn", "--ebno-db", "2", "--decoder-input", "soft"], "awgn", {"ebno_db": 2.0}, "soft"),
    (["--channel", "bec", "--eps", "0.2"], "bec", {"eps": 0.2}, "hard"),
])
def test_train_over_awgn_and_bec_from_the_cli(home, args, channel, params, decoder_input):
    result = train_cli(*args)
    assert result.exit_code == 0, result.output
    summary, line = result.stdout.splitlines()[-2:]
    words = f"{channel} " + " ".join(f"{k} {v:g}" for k, v in params.items())
    assert f"8 bits over {words}" in summary and line.startswith("checkpoint: ") and f"(trained over {words}" in line
    path = line.split()[1]
    meta = read_metadata(path)
    assert (meta["train_channel"], meta["train_channel_params"], meta["decoder_input"]) == (channel, params, decoder_input)
    assert meta["train"]["channel"] == channel and f"-{channel}-" in path
    # the codec comes back with the decoder input it was trained with
    assert codec_from_checkpoint(path, device="cpu").decoder_input == decoder_input


def test_a_bsc_config_keeps_its_old_checkpoint_name():
    # names (and hashes) written before the training channel became configurable (the recipe then the default)
    old = {"recipe": "onecycle"}
    assert checkpoint_name("necst", "mnist", 100, TrainConfig(eps=0.1, epochs=1, **old), "mlp") == \
        "necst-mnist-b100-eps0.1-e1-s0-168fe9eb.safetensors"
    assert checkpoint_name("necst", "mnist", 100, TrainConfig(epochs=100, **old), "mlp") == \
        "necst-mnist-b100-eps0.1-e100-s0-420c8833.safetensors"
    assert checkpoint_name("necst", "mnist", 100, TrainConfig(eps=0.2, epochs=3, seed=2, estimator="vimco", **old), "mlp") == \
        "necst-mnist-b100-eps0.2-e3-s2-33fcaba3.safetensors"
    # eps given as a channel parameter is the same config
    same = TrainConfig(channel="bsc", channel_params={"eps": 0.1}, epochs=1)
    assert same == TrainConfig(eps=0.1, epochs=1) and "channel" not in same.record()


def test_soft_and_hard_decoder_inputs_differ_on_awgn_and_agree_on_certain_llrs():
    generator = torch.Generator().manual_seed(0)
    bits = (torch.rand(64, 32, generator=generator) < 0.5).float()
    llr = AWGN()(bits, generator, ebno_db=2.0)
    hard, soft = decoder_inputs(llr, "hard"), decoder_inputs(llr, "soft")
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(hard, soft) and ((soft > 0) & (soft < 1)).float().mean() > 0.5
    assert torch.equal(soft > 0.5, hard > 0.5)  # same decisions, soft adds the reliability
    certain = torch.tensor([[LLR_LIMIT, -LLR_LIMIT, 0.0, LLR_LIMIT]])
    assert torch.equal(decoder_inputs(certain, "soft"), decoder_inputs(certain, "hard"))
    assert decoder_inputs(certain, "soft").tolist() == [[1.0, 0.0, 0.5, 1.0]]
    # the codec applies its own decoder input at test time
    source_shape = (1, 28, 28)
    hard_codec = build_codec_of_shape(source_shape, "hard")
    soft_codec = build_codec_of_shape(source_shape, "soft")
    soft_codec.load_state_dict(hard_codec.state_dict())
    llr8 = llr[:, :8]
    assert not torch.allclose(hard_codec.decode_logits(llr8), soft_codec.decode_logits(llr8))
    sure = (2 * bits[:, :8] - 1) * LLR_LIMIT
    assert torch.equal(hard_codec.decode_logits(sure), soft_codec.decode_logits(sure))


def build_codec_of_shape(shape, decoder_input):
    return NECST(8, shape, decoder_input=decoder_input, seed=0).eval()


def test_bec_at_eps_0_trains_exactly_like_the_folded_bsc_at_eps_0(mnist):
    """The sampled-bits-through-the-channel path is the folded BSC when the channel is noiseless."""
    x = mnist.tensors("train")[0][:20]
    grads = []
    for channel in ("bsc", "bec"):
        codec = build_codec("necst", mnist, 8, seed=0)
        objective = NECSTObjective(estimator="st", channel=channel, channel_params={"eps": 0.0})
        loss, _ = objective(codec, x, 0.0, torch.Generator().manual_seed(1))
        loss.backward()
        grads.append((float(loss.detach()), [p.grad.clone() for p in codec.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1]))


def test_cache_entries_differ_by_channel_and_decoder_input(home, mnist):
    configs = [TrainConfig(eps=0.2, epochs=1), TrainConfig(channel="bec", eps=0.2, epochs=1),
               TrainConfig(channel="z", eps=0.2, epochs=1), TrainConfig(channel="awgn", channel_params={"ebno_db": 2}, epochs=1),
               TrainConfig(channel="awgn", channel_params={"ebno_db": 3}, epochs=1),
               TrainConfig(eps=0.2, epochs=1, decoder_input="soft")]
    names = [checkpoint_name("necst", "mnist", 8, c, "mlp") for c in configs]
    assert len(set(names)) == len(names)
    assert names[1].startswith("necst-mnist-b8-bec-eps0.2-e1-") and names[5].startswith("necst-mnist-b8-eps0.2-soft-e1-")
    bsc, bec = configs[:2]
    _, bsc_path, trained = cached_or_trained("necst", "mnist", 8, bsc, mnist, device="cpu", progress=False)
    assert trained
    _, bec_path, trained = cached_or_trained("necst", "mnist", 8, bec, mnist, device="cpu", progress=False)
    assert trained and bec_path != bsc_path  # the BSC entry does not stand in for the BEC
    assert cached_checkpoints("necst", "mnist", 8, config=bec) == [bec_path]
    assert cached_checkpoints("necst", "mnist", 8, config=bsc) == [bsc_path]
    assert cached_checkpoints("necst", "mnist", 8, 0.2) == [bsc_path]  # eps only: the BSC's


@pytest.mark.parametrize("args, fragment", [
    (["--channel", "awgn"], "awgn needs exactly one of ebno_db or snr_db"),
    (["--channel", "awgn", "--eps", "0.1"], "channel 'awgn' has no eps"),
    (["--channel", "bec", "--eps", "1.5"], "eps must be in [0, 1], got 1.5"),
    (["--eps", "0.7"], "eps must be in [0, 0.5] for training"),
    (["--channel", "awgn", "--ebno-db", "1e9"], "ebno_db must be in [-50, 60]"),
    (["--channel", "gilbert_elliott", "--param", "foo=1"], "takes no parameter 'foo'"),
    (["--channel", "gilbert_elliott", "--param", "p_gb"], "expected NAME=VALUE"),
    (["--channel", "nope"], "--channel"),
    (["--decoder-input", "fuzzy"], "--decoder-input"),
    (["--channel", "awgn", "--ebno-db", "2", "--codec", "iabf"], "iabf trains over the BSC only"),
])
def test_bad_training_channels_give_one_line_errors(home, args, fragment):
    result = train_cli(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert not (home / "home" / "checkpoints").exists()  # nothing trained or written
