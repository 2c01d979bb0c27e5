"""Batched ensembles (commsim.learned.ensemble, issue 17 item 1): each member draws its single training's
numbers, does not depend on the other members, matches its single training in distribution, stops on its own
plateau, and is written as train_and_save writes a checkpoint."""
import pytest
import torch

from commsim import load_dataset
from commsim.data.sources import ImageSource, split_in_order
from commsim.learned.ensemble import MemberGenerators, StackedCodec, check_ensemble, train_ensemble, uniform
from commsim.learned.necst import NECST
from commsim.learned.training import TrainConfig, seed_streams, train_codec, validation_distortion
from commsim.learned.zoo import build_codec, cache_entry, codec_from_checkpoint, train_and_save, train_and_save_many


def digits(n_train, n_val=100):
    mnist = load_dataset("mnist")
    n = n_train + n_val + 50
    return ImageSource("mnist", mnist.images[:n], mnist.labels[:n], split_in_order(n, n_train, n_val, 50))


@pytest.fixture(scope="module")
def one_batch(one_torch_thread):
    """100 training digits: one step of batch 100 per epoch, so an epoch's train_loss is the first step's loss."""
    return digits(100)


@pytest.fixture(scope="module")
def tiny(one_torch_thread):
    """200 training digits: two steps of batch 100 per epoch."""
    return digits(200)


def scores(result):
    """A result's history without its timings."""
    return [(r["epoch"], r["train_loss"], r["val_l2_per_image"], r["lr"]) for r in result.history]


def weights(codec):
    return torch.cat([p.detach().flatten() for p in codec.parameters()])


def configs(name, estimator="st", members=((0.1, 0, 0.01), (0.2, 1, 0.1), (0.05, 2, 0.0)), **options):
    return [TrainConfig(eps=eps, seed=seed, estimator=estimator, objective={"lam": lam} if name == "iabf" else {}, **options)
            for eps, seed, lam in members]


def ensemble(name, source, cfgs, **options):
    codecs = [build_codec(name, source, 16, seed=c.seed, decoder_input=c.decoder_input) for c in cfgs]
    return codecs, train_ensemble(codecs, source, cfgs, progress=False, val_limit=50, **options)


def test_uniform_stacks_each_members_own_draws():
    members = MemberGenerators([torch.Generator().manual_seed(s) for s in (3, 4)])
    draws = uniform((2, 5), members)
    assert draws.shape == (2, 2, 5)
    assert torch.equal(draws[1], torch.rand((2, 5), generator=torch.Generator().manual_seed(4)))
    assert torch.equal(uniform((2, 5), torch.Generator().manual_seed(3)), draws[0])


def test_stacked_networks_start_from_the_single_codecs_and_write_back():
    codecs = [NECST(16, (1, 28, 28), seed=s) for s in (0, 1)]
    stacked = StackedCodec(codecs)
    x = torch.rand(2, 3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for n, codec in enumerate(codecs):
        assert torch.allclose(stacked.logits(x)[n], codec.logits(x[n]), atol=1e-5)
        assert torch.allclose(stacked.encoder_penalty()[n], codec.encoder_penalty())
    other = NECST(16, (1, 28, 28), seed=5)
    stacked.unstack(1, other)
    assert torch.equal(weights(other), weights(codecs[1]))


@pytest.mark.parametrize("name, estimator, decoder_input", [("necst", "st", "hard")] + [
    pytest.param(*case, marks=pytest.mark.slow)  # 0.3-0.4 s each
    for case in (("abf", "st", "hard"), ("iabf", "vimco", "hard"), ("abf", "gumbel", "soft"))])
def test_each_member_draws_what_its_single_training_draws(one_batch, name, estimator, decoder_input):
    """The first step's loss depends on the initial weights, the batch order and the noise draws only."""
    cfgs = configs(name, estimator, epochs=1, decoder_input=decoder_input)
    singles = []
    for config in cfgs:
        codec = build_codec(name, one_batch, 16, seed=config.seed, decoder_input=decoder_input)
        singles.append(train_codec(codec, one_batch, config, progress=False, val_limit=50).history[0]["train_loss"])
    _, results = ensemble(name, one_batch, cfgs)
    assert [r.history[0]["train_loss"] for r in results] == pytest.approx(singles, rel=1e-5)
    assert len(set(singles)) == 3  # the members' draws differ


def test_a_member_does_not_depend_on_the_others(tiny):
    a, b, c = configs("iabf", epochs=2)
    with_b, results_b = ensemble("iabf", tiny, [a, b])
    with_c, results_c = ensemble("iabf", tiny, [a, c])
    assert torch.equal(weights(with_b[0]), weights(with_c[0]))
    assert scores(results_b[0]) == scores(results_c[0])
    assert not torch.equal(weights(with_b[1]), weights(with_c[1]))


@pytest.mark.slow  # 1 s
def test_members_match_their_single_trainings_in_distribution(tiny):
    cfgs = configs("abf", epochs=3)
    codecs, results = ensemble("abf", tiny, cfgs)
    for config, codec, result in zip(cfgs, codecs, results):
        single = build_codec("abf", tiny, 16, seed=config.seed)
        alone = train_codec(single, tiny, config, progress=False, val_limit=50)
        assert result.val_value == pytest.approx(alone.val_value, rel=0.01)
        assert result.best_epoch == alone.best_epoch and len(result.history) == len(alone.history)
        assert torch.allclose(weights(codec), weights(single), atol=1e-3)  # equal, or close: see the module doc


def test_a_member_on_a_plateau_stops_frozen_while_the_others_train(tiny):
    """With patience 1 at a high rate, member 1 (eps 0.45) stops after 3 epochs, member 0 after 4; each
    ends as it would alone (so dropping a member keeps the others' weights and Adam moments), and holds its
    best epoch's weights."""
    cfgs = configs("necst", members=((0.1, 0, 0), (0.45, 1, 0)), epochs=6, patience=1, recipe="paper", lr=3e-2)
    val_seeds = [seed_streams(c.seed)["validation"].generate_state(c.val_draws) for c in cfgs]

    def hook(n):  # each member's on_epoch sees that member's current weights, while it trains
        return lambda codec, row: {"again": validation_distortion(codec, tiny, cfgs[n], val_seeds[n], 50), "member": n}
    codecs, results = ensemble("necst", tiny, cfgs, on_epoch=[hook(0), hook(1)])
    assert [r.stop for r in results] == ["plateau", "plateau"]
    assert [len(r.history) for r in results] == [4, 3]
    for n, result in enumerate(results):
        assert [(r["member"], r["again"]) for r in result.history] == [(n, r["val_l2_per_image"]) for r in result.history]
    with pytest.raises(ValueError, match="one on_epoch hook"):
        ensemble("necst", tiny, cfgs, on_epoch=[hook(0)])
    for n, config in enumerate(cfgs):
        alone, (result,) = ensemble("necst", tiny, [config])
        assert torch.allclose(weights(codecs[n]), weights(alone[0]), atol=1e-6)  # its position may move the last bits
        assert [results[n].best_epoch, len(results[n].history), results[n].stop] == [result.best_epoch, len(result.history), result.stop]
        assert results[n].val_value == pytest.approx(result.val_value, rel=1e-5)
        # it holds its best epoch's weights: its validation with its own seeds gives its val_value
        seeds = seed_streams(config.seed)["validation"].generate_state(config.val_draws)
        assert validation_distortion(codecs[n], tiny, config, seeds, 50) == results[n].val_value


@pytest.mark.parametrize("change, field", [
    (lambda c: (NECST(8, (1, 28, 28)), c), "bits"),
    (lambda c: (build_codec("abf", load_dataset("mnist"), 16), c), "codec class"),
    (lambda c: (NECST(16, (3, 32, 32)), c), "architecture"),
    (lambda c: (NECST(16, (1, 28, 28)), TrainConfig(channel="awgn", channel_params={"ebno_db": 2})), "BSC only"),
    (lambda c: (NECST(16, (1, 28, 28)), TrainConfig(epochs=3)), "epochs"),
    (lambda c: (NECST(16, (1, 28, 28)), TrainConfig(epochs=2, estimator="gumbel")), "estimator"),
    (lambda c: (NECST(16, (1, 28, 28)), TrainConfig(epochs=2, objective={"critic_lr": 1e-2})), "objective critic_lr"),
])
def test_members_that_cannot_share_a_model_are_refused(change, field):
    first = (NECST(16, (1, 28, 28)), TrainConfig(epochs=2))
    other = change(TrainConfig(epochs=2, seed=1, eps=0.2))
    with pytest.raises(ValueError, match=f"{field}.*train (it|them) separately"):
        check_ensemble([first[0], other[0]], [first[1], other[1]])
    with pytest.raises(ValueError, match="one config per codec"):
        check_ensemble([first[0]], [])


def test_train_and_save_many_writes_train_and_saves_checkpoints(tiny):
    cfgs = configs("iabf", epochs=1)[:2]
    trained = train_and_save_many("iabf", tiny, 16, cfgs, progress=False, val_limit=50)
    single, _, single_path = train_and_save("iabf", tiny, 16, cfgs[0], progress=False)
    assert [p for _, _, p in trained] == [cache_entry("iabf", tiny, 16, c) for c in cfgs]
    assert single_path == trained[0][2]  # the same entry: train_and_save wrote over the ensemble's
    for (codec, result, path), config in zip(trained, cfgs):
        loaded = codec_from_checkpoint(path, "iabf", source=tiny)
        assert set(codec.metadata) == set(single.metadata) and codec.metadata["train"] == config.record()
        assert codec.metadata["val"]["best_epoch"] == result.best_epoch
    assert torch.equal(weights(loaded), weights(trained[1][0]))
    with pytest.raises(ValueError, match="one output path per config"):
        train_and_save_many("iabf", tiny, 16, cfgs, outs=["a.safetensors"], progress=False)


@pytest.mark.slow  # 1 s
@pytest.mark.filterwarnings("ignore::commsim.core.device.PrecisionWarning")
def test_members_train_at_their_precision(one_batch):
    """bf16: the forward passes autocast (train_step's), so the first step's loss is the single bf16 training's."""
    cfgs = configs("necst", epochs=1, precision="bf16")[:2]
    singles = [train_codec(build_codec("necst", one_batch, 16, seed=c.seed), one_batch, c, progress=False, val_limit=50)
               for c in cfgs]
    _, results = ensemble("necst", one_batch, cfgs)
    fp32 = ensemble("necst", one_batch, configs("necst", epochs=1)[:2])[1]
    assert [r.history[0]["train_loss"] for r in results] == pytest.approx([s.history[0]["train_loss"] for s in singles], rel=1e-5)
    assert [r.history[0]["train_loss"] for r in results] != [r.history[0]["train_loss"] for r in fp32]


def test_group_requirements_deals_each_set_over_the_slots():
    from types import SimpleNamespace

    from commsim.core.protocol import group_requirements

    made = [SimpleNamespace(together=t, n=n) for n, t in enumerate(["a", "a", None, "b", "a", None, "a", "b"])]
    groups = [[r.n for r in g] for g in group_requirements(made, parts=2)]
    assert groups == [[0, 4], [1, 6], [2], [3], [7], [5]]  # a's over 2 slots, b's over 2, the loners alone
    assert [[r.n for r in g] for g in group_requirements(made, parts=1, most=3)] == [[0, 4], [1, 6], [2], [3, 7], [5]]


def test_a_sweeps_trainings_of_one_codec_train_as_one_ensemble(monkeypatch, tmp_path):
    """``prepare`` stacks the two trainings (one worker: one group); each lands in the cache under the name a
    single training gives it; on Ray, a task of the group returns one checkpoint per member."""
    from commsim.codecs import entry
    from commsim.core.protocol import Budget, Request
    from commsim.learned.entry import Training
    from commsim.ray_executor import train_task
    from commsim.sweep import LocalExecutor, prepare

    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path))
    source = digits(200)
    needs = [entry("necst").requirement(Request("mnist", 8, "bsc", {"eps": e}, budget=Budget(epochs=1, precision="fp32")), source)
             for e in (0.1, 0.2)]
    assert needs[0].together == needs[1].together is not None
    calls = []
    make_group = Training.make_group.__func__
    monkeypatch.setattr(Training, "make_group", classmethod(lambda cls, group, **kw: calls.append(len(group)) or
                                                             make_group(cls, group, **kw)))
    prepare(needs, LocalExecutor(1), progress=False)
    assert calls == [2] and all(n.find() == n.cache_path() for n in needs)
    blobs = train_task(needs, 1, {})
    assert [b["name"] for b in blobs] == [n.key for n in needs] and calls == [2, 2]


def test_dynamic_binarization_draws_each_members_own_pixels(one_torch_thread):
    """Each member's batches are its single training's, binarization draws included (ImageSource.batches)."""
    mnist = load_dataset("mnist")
    source = ImageSource("mnist", mnist.images[:350], mnist.labels[:350], split_in_order(350, 200, 100, 50), binarize="dynamic")
    cfgs = [TrainConfig(eps=0.1, epochs=1, seed=s, batch_size=50) for s in (0, 1)]
    single = [train_codec(build_codec("necst", source, 8, seed=c.seed), source, c, progress=False, val_limit=20)
              for c in cfgs]
    stacked = train_ensemble([build_codec("necst", source, 8, seed=c.seed) for c in cfgs], source, cfgs, progress=False,
                             val_limit=20)
    assert [r.history[0]["train_loss"] for r in stacked] == pytest.approx([r.history[0]["train_loss"] for r in single], rel=1e-6)
