"""Training recipes, gradient estimators and the objectives' variants (issue 10)."""
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from commsim import load_dataset
from commsim.cli import cli
from commsim.learned import training
from commsim.learned.estimators import ESTIMATORS, gumbel_sigmoid, straight_through
from commsim.learned.iabf import IABFObjective
from commsim.learned.necst import NECSTObjective
from commsim.learned.training import RECIPES, TrainConfig, make_scheduler, train_codec, validation_distortion
from commsim.learned.zoo import build_codec, cached_checkpoints, train_and_save
from commsim.data.sources import ImageSource, split_in_order
from commsim.core.metrics import l2_per_image


@pytest.fixture(scope="module")
def small(one_torch_thread):
    """2000 training, 200 validation and 200 test digits of the embedded MNIST."""
    mnist = load_dataset("mnist")
    return ImageSource("mnist", mnist.images[:2400], mnist.labels[:2400], split_in_order(2400, 2000, 200, 200))


def mean_image_l2(source, split="val"):
    x, _ = source.tensors(split)
    return l2_per_image(x, source.mean_image().expand_as(x)).mean().item()


def weights(codec):
    return torch.cat([p.detach().flatten() for p in codec.parameters()])


@pytest.mark.parametrize("codec_name, estimator", [("necst", e) for e in ESTIMATORS if e != "vimco"] + [("abf", "st")] + [
    pytest.param("necst", "vimco", marks=pytest.mark.slow)] + [  # 3-4 s; VIMCO trains in test_same_seed_same_weights too
    pytest.param("iabf", e, marks=pytest.mark.slow) for e in ("gumbel", "vimco")])  # 3-5 s each; IABF trains in test_cli too
def test_each_estimator_learns_and_beats_the_mean_image(small, codec_name, estimator):
    codec = build_codec(codec_name, small, 100)
    config = TrainConfig(eps=0.1, epochs=4, batch_size=50, recipe="paper", lr=3e-3, estimator=estimator)
    result = train_codec(codec, small, config, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    assert result.val_value < 0.85 * mean_image_l2(small), (result.val_value, mean_image_l2(small))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_same_seed_same_weights(small, estimator):
    few = ImageSource("mnist", small.images[:1100], small.labels[:1100], split_in_order(1100, 1000, 50, 50))  # 10 steps
    runs = []
    for _ in range(2):
        codec = build_codec("iabf", few, 16, seed=1)
        train_codec(codec, few, TrainConfig(eps=0.2, epochs=1, batch_size=100, seed=3, estimator=estimator,
                                            recipe="onecycle"), progress=False, val_limit=50)
        runs.append(weights(codec))
    assert torch.equal(runs[0], runs[1])
    other = build_codec("iabf", few, 16, seed=1)
    train_codec(other, few, TrainConfig(eps=0.2, epochs=1, batch_size=100, seed=4, estimator=estimator,
                                        recipe="onecycle"), progress=False, val_limit=50)
    assert not torch.equal(runs[0], weights(other))


def test_pathwise_codes_are_hard_forward_and_carry_gradients():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator, requires_grad=True)

    def q():
        return torch.sigmoid(logits) * 0.8 + 0.1

    for draw in (lambda: straight_through(q(), 3, generator), lambda: gumbel_sigmoid(q(), 3, generator, temperature=1.0)):
        y = draw()
        assert y.shape == (3, 64, 10) and set(y.detach().unique().tolist()) <= {0.0, 1.0}
        (grad,) = torch.autograd.grad((y * torch.arange(1.0, 11.0)).sum(), logits)
        assert bool((grad.abs() > 0).all())
    # straight-through: the gradient of q itself (dy/dq = 1, three samples)
    (grad,) = torch.autograd.grad(straight_through(q(), 3, generator).sum(), logits)
    (expected,) = torch.autograd.grad(3 * q().sum(), logits)
    assert torch.allclose(grad, expected)
    # both draw Bernoulli(q): the empirical frequency matches q
    big = torch.full((20000, 1), 0.3)
    for y in (straight_through(big, 1, generator), gumbel_sigmoid(big, 1, generator, 0.5)):
        assert abs(y.mean().item() - 0.3) < 0.015


@pytest.mark.parametrize("recipe", ["onecycle", "cosine"])
def test_schedule_reaches_its_peak_then_decays(recipe):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    config = TrainConfig(recipe=recipe, lr=2e-3)
    scheduler = make_scheduler(optimizer, config, 200)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(199):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    peak = int(np.argmax(lrs))
    assert lrs[peak] == pytest.approx(2e-3)
    assert peak == pytest.approx(RECIPES[recipe].warmup * 200, abs=2)
    assert lrs[0] < 2e-3 / 10 and lrs[-1] < 2e-3 / 1000
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # decays monotonically after the peak
    assert make_scheduler(optimizer, TrainConfig(recipe="paper"), 200) is None  # constant rate


def test_tiny_budget_schedule_is_valid(small):
    codec = build_codec("necst", small, 8)
    tiny = ImageSource("mnist", small.images[:30], small.labels[:30], split_in_order(30, 10, 10, 10))
    result = train_codec(codec, tiny, TrainConfig(epochs=1, batch_size=10, recipe="onecycle", estimator="st"), progress=False)
    assert len(result.history) == 1 and np.isfinite(result.val_value)


def test_plateau_stopping_stops_and_keeps_the_best_weights(small, monkeypatch):
    values = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0])
    seen = []

    def fake_validation(codec, source, eps, seeds, limit=None):
        seen.append(weights(codec).clone())
        return next(values)

    monkeypatch.setattr(training, "validation_distortion", fake_validation)
    codec = build_codec("necst", small, 8)
    result = train_codec(codec, small, TrainConfig(epochs=8, batch_size=200, patience=2, recipe="onecycle",
                                                   estimator="st"), progress=False)
    assert result.stop == "plateau" and len(result.history) == 4 and result.best_epoch == 2 and result.val_value == 4.0
    assert torch.equal(weights(codec), seen[1])
    monkeypatch.setattr(training, "validation_distortion", lambda *a, **k: 1.0)
    never = train_codec(build_codec("necst", small, 8), small, TrainConfig(epochs=3, batch_size=200, patience=0,
                                                                           estimator="st"), progress=False)
    assert never.stop == "budget" and len(never.history) == 3


def test_multi_draw_validation_is_deterministic_and_averages(small):
    codec = build_codec("necst", small, 16)
    three = validation_distortion(codec, small, 0.2, [11, 12, 13])
    assert validation_distortion(codec, small, 0.2, [11, 12, 13]) == three
    singles = [validation_distortion(codec, small, 0.2, [s]) for s in (11, 12, 13)]
    assert len(set(singles)) == 3  # different channel draws
    assert three == pytest.approx(np.mean(singles))
    # a training run's validation seeds come from its seed alone
    streams = [training.seed_streams(7)["validation"].generate_state(3) for _ in range(2)]
    assert np.array_equal(*streams)
    assert not np.array_equal(streams[0], training.seed_streams(8)["validation"].generate_state(3))


def test_recipes_set_their_defaults_into_the_config():
    new = TrainConfig(recipe="onecycle", estimator="st")
    assert (new.lr, new.val_draws, new.samples) == (RECIPES["onecycle"].lr, 3, 1) and new.patience > 0
    paper = TrainConfig(recipe="paper", estimator="vimco")
    assert (paper.lr, paper.val_draws, paper.patience, paper.samples) == (1e-3, 1, 0, 5)
    assert TrainConfig(recipe="onecycle", lr=1e-2, patience=0).lr == 1e-2
    stored = vars(TrainConfig())
    for key in ("recipe", "estimator", "vimco", "infomax_on", "temperature", "val_draws"):
        assert stored[key] is not None


@pytest.mark.parametrize("kwargs, fragment", [
    ({"estimator": "reinforce"}, "unknown estimator 'reinforce'; choose one of vimco, st, gumbel"),
    ({"recipe": "fast"}, "unknown recipe 'fast'; choose one of paper, onecycle, onecycle250, cosine"),
    ({"vimco": "best"}, "unknown VIMCO form 'best'"),
    ({"infomax_on": "both"}, "unknown infomax_on 'both'"),
    ({"epochs": 0}, "epochs must be between 1 and"),
    ({"epochs": -3}, "epochs must be between 1 and"),
    ({"estimator": "vimco", "samples": 1}, "samples >= 2"),
    ({"temperature": 0.0}, "temperature must be positive"),
])
def test_bad_training_configs_raise_clear_errors(kwargs, fragment):
    """Generic fields are checked by TrainConfig; a codec's own options (IABF's infomax_on) by the codec's
    objective, which the codec entry asks before any work."""
    from commsim.core.registry import CODECS

    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        CODECS.get("iabf").codec_class.objective_class.check_config(TrainConfig(**kwargs))


@pytest.mark.parametrize("args, fragment", [
    (["train", "--codec", "necst", "--estimator", "reinforce"], "--estimator"),
    (["train", "--codec", "necst", "--recipe", "fast"], "--recipe"),
    (["train", "--codec", "necst", "--epochs", "0"], "--epochs"),
    (["run", "--codec", "necst", "--eps", "0.1", "--recipe", "fast"], "--recipe"),
    (["sweep", "--codec", "necst", "--eps", "0.1", "--estimator", "nope"], "--estimator"),
    (["sweep", "--codec", "necst", "--eps", "0.1", "--epochs", "-1"], "--epochs"),
])
def test_cli_rejects_unknown_estimator_recipe_and_bad_budget(tmp_path, monkeypatch, args, fragment):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert not any(tmp_path.iterdir())


def test_infomax_clean_and_noisy_give_different_gradients(small):
    codec = build_codec("iabf", small, 16)
    x = small.tensors("train")[0][:64]

    def gradient(infomax_on, eps):
        objective = IABFObjective(infomax_on=infomax_on, lam=1.0)
        logits = codec.logits(x)
        info = objective.information(objective.infomax_codes(logits, eps))
        (grad,) = torch.autograd.grad(info, logits)
        return grad

    assert not torch.allclose(gradient("clean", 0.2), gradient("noisy", 0.2))
    assert torch.allclose(gradient("clean", 0.0), gradient("noisy", 0.0))


def test_vimco_forms_give_different_losses(small):
    codec = build_codec("necst", small, 16)
    x = small.tensors("train")[0][:32]
    out = {}
    for form in ("paper", "official"):
        loss, logs = NECSTObjective(vimco=form)(codec, x, 0.1, torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad(loss, codec.encoder.net[1].weight)
        out[form] = (loss.item(), logs["bound"], logs["loss"], grad)
    assert out["paper"][2] == out["official"][2]  # the same draws ...
    assert out["paper"][1] < out["paper"][2] < out["official"][1]  # ... -LSE(-L) <= mean L <= LSE(L)
    assert not torch.allclose(out["paper"][3], out["official"][3])


def test_checkpoint_records_the_config_and_the_cache_filters_on_it(small, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path))
    config = TrainConfig(eps=0.1, epochs=1, batch_size=200, estimator="st", recipe="cosine", infomax_on="noisy")
    codec, result, path = train_and_save("iabf", small, 8, config, device="cpu", progress=False)
    from commsim.learned.checkpoints import read_metadata

    meta = read_metadata(path)
    assert meta["train"]["estimator"] == "st" and meta["train"]["recipe"] == "cosine"
    assert meta["train"]["infomax_on"] == "noisy" and meta["train"]["vimco"] == "paper"
    assert meta["val"]["stop"] == "budget" and meta["val"]["epochs_run"] == 1
    assert cached_checkpoints("iabf", "mnist", 8, 0.1, data=small.identity) == [path]
    assert cached_checkpoints("iabf", "mnist", 8, config=config, data=small.identity) == [path]  # the whole config is the key
    assert cached_checkpoints("iabf", "mnist", 8, config=config) == []  # a subset of the digits is other data
    vimco = TrainConfig(eps=0.1, epochs=1, batch_size=200, estimator="vimco", recipe="cosine", infomax_on="noisy")
    assert cached_checkpoints("iabf", "mnist", 8, config=vimco, data=small.identity) == []
    other = TrainConfig(eps=0.1, epochs=1, batch_size=200, estimator="gumbel", recipe="cosine", infomax_on="noisy")
    assert train_and_save("iabf", small, 8, other, device="cpu", progress=False)[2] != path  # the config names the file


def test_sweep_trains_with_the_asked_estimator_and_reports_the_config(small, tmp_path, monkeypatch):
    import csv

    from commsim.sweep import COLUMNS, SweepSpec, run_sweep

    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    config = TrainConfig(eps=0.1, epochs=1, estimator="vimco", recipe="paper")
    train_and_save("necst", small, 8, config, device="cpu", progress=False)  # a cached vimco model
    spec = SweepSpec(codecs=["necst"], channel="bsc", param="eps", values=[0.1], bits=8, epochs=1, limit=50,
                     estimator="st", recipe="cosine")
    path = run_sweep(spec, tmp_path / "results.csv", progress=False)
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert len(rows) == 1 and "estimator=st" in rows[0]["train_config"] and "recipe=cosine" in rows[0]["train_config"]
    # the vimco model (trained on a subset of the digits) was not taken for an st request on the embedded digits
    assert len(cached_checkpoints("necst", "mnist", 8, 0.1)) == 1
    assert len(cached_checkpoints("necst", "mnist", 8, 0.1, data=small.identity)) == 1
    # a CSV written before the column existed resumes with its own columns
    old = tmp_path / "old.csv"
    old_columns = [c for c in COLUMNS if c != "train_config"]
    old.write_text(",".join(old_columns) + "\n")
    run_sweep(spec, old, resume=True, progress=False)
    lines = old.read_text().splitlines()
    assert len(lines) == 2 and len(next(csv.reader([lines[1]]))) == len(old_columns)
    with pytest.raises(ValueError, match="epochs must be between 1 and"):
        SweepSpec(codecs=["necst"], channel="bsc", param="eps", values=[0.1], epochs=0)


def test_on_epoch_hook_adds_to_history_without_changing_training_or_seconds(small):
    def run(hook):
        codec = build_codec("necst", small, 16, seed=1)
        result = train_codec(codec, small, TrainConfig(eps=0.1, epochs=2, batch_size=200, recipe="onecycle"),
                             progress=False, val_limit=50, on_epoch=hook)
        return codec, result

    calls = []

    def hook(codec, row):
        calls.append(row["epoch"])
        time.sleep(0.5)  # slow hooks do not count as training time
        return {"extra": row["epoch"] * 10}

    plain_codec, plain = run(None)
    hooked_codec, hooked = run(hook)
    assert calls == [1, 2] and [h["extra"] for h in hooked.history] == [10, 20]
    assert torch.equal(weights(plain_codec), weights(hooked_codec))  # the hook draws from no training stream
    assert hooked.seconds < sum(h["train_seconds"] + h["val_seconds"] for h in hooked.history) + 0.5
    assert all(h["cpu_seconds"] > 0 for h in hooked.history) and hooked.cpu_seconds > 0
    assert "extra" not in plain.history[0]


def test_evaluate_returns_the_per_image_values_behind_the_means(small):
    from commsim.channels import BSC
    from commsim.pipeline import Pipeline

    codec = build_codec("necst", small, 16, seed=1)
    result = Pipeline(small, codec, BSC()).evaluate("test", seed=5, eps=0.2)
    per_image = result.per_image["l2_per_image"]
    assert per_image.shape == (200,)
    assert per_image.mean().item() == pytest.approx(result.metrics["l2_per_image"].mean, rel=1e-6)
    assert result.per_image["mse_per_pixel"].mean().item() == pytest.approx(result.metrics["mse_per_pixel"].mean, rel=1e-6)


def test_training_flushes_denormals_and_restores_the_callers_setting(small):
    """Denormal floats slow CPU training (see commsim.core.device.flush_denormals): training flushes
    them to zero, and leaves the caller's thread as it found it, whichever way it was set."""
    from commsim.core.device import denormals_flushed, flush_denormals, flushing_denormals

    def train_and_watch():
        seen = []
        codec = build_codec("necst", small, 16, seed=1)
        train_codec(codec, small, TrainConfig(eps=0.1, epochs=1, batch_size=200), progress=False, val_limit=50,
                    on_epoch=lambda codec, row: seen.append(flushing_denormals()))
        return seen

    flush_denormals(False)
    try:
        assert not flushing_denormals() and torch.full((1,), 1e-39).mul(1.0).item() > 0
        assert train_and_watch() == [True] and not flushing_denormals()
        flush_denormals(True)
        assert train_and_watch() == [True] and flushing_denormals()
        with denormals_flushed():
            assert torch.full((1,), 1e-39).mul(1.0).item() == 0.0
    finally:
        flush_denormals(False)


def test_a_config_pickles_with_its_typed_choices():
    """Configs travel to worker processes: the typed choices pickle by their modules' names."""
    import pickle

    config = TrainConfig(eps=0.1, estimator="vimco", recipe="paper", infomax_on="noisy", decoder_input="soft")
    assert pickle.loads(pickle.dumps(config)) == config and config.recipe == "paper"


def test_a_training_whose_validation_never_improves_says_so(small, monkeypatch):
    """A validation score that only gets worse after epoch 1 (patched in): one warning that the model is
    the epoch-1 weights, for a single training and for each ensemble member; none for a short run."""
    import itertools
    import warnings

    from commsim.core.files import StalledTrainingWarning
    from commsim.learned import ensemble

    worse = itertools.count(50)
    for module in (training, ensemble):
        monkeypatch.setattr(module, "validation_distortion", lambda *args, **kwargs: float(next(worse)))
    config = TrainConfig(eps=0.2, epochs=training.STALL_EPOCHS, seed=1, batch_size=500)
    with pytest.warns(StalledTrainingWarning, match="necst over bsc eps 0.2, seed 1: validation never improved after epoch 1 of 5"):
        result = train_codec(build_codec("necst", small, 8, seed=1), small, config, progress=False)
    assert result.best_epoch == 1 and result.stalled
    codecs = [build_codec("necst", small, 8, seed=s) for s in (0, 1)]
    with pytest.warns(StalledTrainingWarning) as caught:
        ensemble.train_ensemble(codecs, small, [TrainConfig(eps=0.2, epochs=training.STALL_EPOCHS, seed=0, batch_size=500),
                                                config], progress=False)
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["ensemble member 0 (necst over bsc eps 0.2, seed 0)",
                                                                    "ensemble member 1 (necst over bsc eps 0.2, seed 1)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", StalledTrainingWarning)
        short = train_codec(build_codec("necst", small, 8), small, TrainConfig(eps=0.2, epochs=training.STALL_EPOCHS - 1,
                                                                              batch_size=500), progress=False)
    assert short.best_epoch == 1 and not short.stalled
