"""The command line's results and notices (bad input: tests/test_bad_inputs.py)."""

import re
import pytest
from click.testing import CliRunner

from commsim.cli import cli
from commsim.learned.training import TrainConfig
from commsim.channels import BSC
from commsim.learned.zoo import codec_from_checkpoint, train_and_save
from commsim.pipeline import Pipeline
from commsim.data import load_dataset


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture(scope="module")
def checkpoint16(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "necst16.safetensors"
    train_and_save("necst", load_dataset("mnist"), 16, TrainConfig(eps=0.2, epochs=1), out=path, device="cpu", progress=False)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def assert_usage_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_with_checkpoint_prints_table_and_png(home, checkpoint16):
    png = home / "recon.png"
    result = invoke("run", "--codec", "necst", "--eps", "0.2", "--bits", "16", "--checkpoint", str(checkpoint16),
                    "--limit", "200", "--save-recon", str(png))
    assert result.exit_code == 0, result.output
    header, values = result.output.splitlines()[:2]
    assert header.split() == ["codec", "channel", "eps", "bits", "l2_per_image", "psnr_db", "ber", "images"]
    printed = values.split()
    assert printed[:4] == ["necst", "bsc", "0.2", "16"] and printed[-1] == "200"
    # the printed distortion is the pipeline's, same checkpoint, seed and images
    source = load_dataset("mnist")
    codec = codec_from_checkpoint(checkpoint16, "necst", "mnist", 16, source, device="cpu")
    expected = Pipeline(source, codec, BSC()).evaluate("test", seed=0, limit=200, eps=0.2).metrics["l2_per_image"]
    assert float(printed[4]) == pytest.approx(expected.mean, abs=1e-4)
    assert printed[5] == f"[{expected.low:.4f}," and 0.15 < float(printed[-2]) < 0.25
    assert png.stat().st_size > 0
    assert f"checkpoint: {checkpoint16.name} (trained at eps 0.2, 1 epoch, seed 0; given)" in result.stdout.splitlines()


def checkpoints_under(path):
    return sorted(p.name for p in path.rglob("*.safetensors"))


def test_run_trains_once_then_reuses_cache(home):
    args = ["run", "--codec", "necst", "--eps", "0.3", "--bits", "8", "--epochs", "1", "--limit", "100"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    cached = checkpoints_under(home / "home")
    assert len(cached) == 1 and re.match(r"necst-mnist-b8-eps0.3(-bf16)?-e1-s0-", cached[0])  # bf16 where the CPU has bf16 units
    assert "training necst for mnist, 8 bits at eps 0.3, 1 epoch, seed 0: no cached checkpoint" in first.stderr
    assert first.stdout.splitlines()[-1] == f"checkpoint: {cached[0]} (trained at eps 0.3, 1 epoch, seed 0; trained now)"
    second = invoke(*args)
    assert second.exit_code == 0 and checkpoints_under(home / "home") == cached
    assert second.stdout.splitlines()[-1] == f"checkpoint: {cached[0]} (trained at eps 0.3, 1 epoch, seed 0; cached)"
    assert "training" not in second.stderr

    def table_row(output):
        return [line for line in output.splitlines() if line.startswith("necst  bsc")]
    assert len(table_row(first.output)) == 1
    assert table_row(first.output) == table_row(second.output)  # same seed, same numbers


def test_run_says_which_training_eps_it_uses(home, checkpoint16):
    """eps above 0.5 runs a codec trained at 0.1 (README) and says so; a cache entry whose metadata
    does not match its name (here a 16-bit checkpoint under an 8-bit name) is skipped with one warning."""
    folder = home / "home" / "checkpoints"
    folder.mkdir(parents=True)
    bad = folder / "necst-mnist-b8-eps0.1-e1-s0-0badc0de.safetensors"
    bad.write_bytes(checkpoint16.read_bytes())
    result = invoke("run", "--codec", "necst", "--eps", "0.7", "--bits", "8", "--epochs", "1", "--limit", "50")
    assert result.exit_code == 0, result.output
    assert "note: eps 0.7 > 0.5; using a codec trained at eps 0.1 (--train-eps to choose)" in result.stderr.splitlines()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and bad.name in warnings[0] and "16 bits" in warnings[0], result.stderr
    assert "(trained at eps 0.1, 1 epoch, seed 0; trained now)" in result.stdout.splitlines()[-1]
    assert len(checkpoints_under(folder)) == 2 and bad.exists()  # the user's file is left alone
    again = invoke("run", "--codec", "necst", "--eps", "0.7", "--bits", "8", "--epochs", "1", "--limit", "50")
    assert again.exit_code == 0 and again.stdout.splitlines()[-1].endswith("; cached)")


def test_list_shows_registries():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("necst", "iabf", "bsc", "awgn", "gilbert_elliott", "mnist", "binary_mnist", "jpeg2000", "ldpc", "SOURCE+CODE"):
        assert name in result.output
    assert "jpeg+ldpc" in result.output and "pca+ldpc" not in result.output  # one line for every SOURCE+CODE pair


def test_run_iabf_end_to_end(home):
    result = invoke("run", "--codec", "iabf", "--channel", "bsc", "--eps", "0.2", "--bits", "8", "--epochs", "1", "--limit", "100")
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if line.split()[:2] == ["iabf", "bsc"]]
    assert len(row) == 1 and float(row[0].split()[4]) > 0
    assert re.match(r"iabf-mnist-b8-eps0.2(-bf16)?-e1-s0-", checkpoints_under(home / "home")[0])


def test_sample_markov_chain_grid(home, checkpoint16):
    from PIL import Image

    out = home / "chain.png"
    result = invoke("sample", "--codec", "necst", "--eps", "0.2", "--bits", "16", "--checkpoint", str(checkpoint16),
                    "--steps", "4", "--every", "2", "--count", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output
    width, height = Image.open(out).size
    assert height == 3 * (3 * 30 + 2)  # x0 + 2 kept states, 28 px + 2 pad, x3
    assert width > 3 * (5 * 30 + 2)  # 5 chains, plus a margin with each row's label (x0, step 2, step 4)
    assert_usage_error(invoke("sample", "--codec", "vq+ideal", "--out", str(home / "x.png")), "not a learned codec")


def test_sample_trains_with_its_budget_and_says_so(home):
    result = invoke("sample", "--codec", "necst", "--eps", "0.2", "--bits", "8", "--epochs", "1", "--steps", "2",
                    "--every", "1", "--count", "2", "--out", str(home / "chain.png"))
    assert result.exit_code == 0, result.output
    assert "training necst for mnist, 8 bits at eps 0.2, 1 epoch, seed 0: no cached checkpoint" in result.stderr
    cached = checkpoints_under(home / "home")
    assert len(cached) == 1 and re.match(r"necst-mnist-b8-eps0.2(-bf16)?-e1-s0-", cached[0])
    assert result.stdout.splitlines()[-1] == f"checkpoint: {cached[0]} (trained at eps 0.2, 1 epoch, seed 0; trained now)"
