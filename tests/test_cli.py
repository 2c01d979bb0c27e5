"""The command line, including bad input: exit code 2, one line, no traceback, nothing written."""
import os

import pytest
import torch
from click.testing import CliRunner

from commsim.cli import cli
from commsim.codecs.training import TrainConfig
from commsim.channels import BSC
from commsim.codecs.zoo import codec_from_checkpoint, train_and_save
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


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def assert_usage_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["--codec", "nope", "--eps", "0.1"], ["nope"]),
    (["--codec", "necst", "--channel", "nope", "--eps", "0.1"], ["nope"]),
    (["--codec", "necst", "--dataset", "nope", "--eps", "0.1"], ["nope"]),
    (["--codec", "necst", "--eps", "1.5"], ["eps", "[0, 1]"]),
    (["--codec", "necst", "--eps", "-0.1"], ["eps", "-0.1"]),
    (["--codec", "necst", "--eps", "0.1", "--bits", "0"], ["--bits"]),
    (["--codec", "necst", "--eps", "0.1", "--checkpoint", "missing.safetensors"], ["missing.safetensors", "does not exist"]),
    (["--codec", "necst", "--channel", "bsc"], ["eps", "--eps"]),
    (["--codec", "necst", "--channel", "awgn", "--eps", "0.1"], ["eps"]),
    (["--codec", "necst", "--eps", "0.1", "--param", "foo"], ["NAME=VALUE"]),
    (["--codec", "necst", "--dataset", "idx", "--eps", "0.1"], ["--data-path"]),
    (["--codec", "necst", "--dataset", "idx", "--data-path", "/no/such/dir", "--eps", "0.1"], ["/no/such/dir"]),
    (["--codec", "necst", "--eps", "0.1", "--save-recon", "out.jpg"], [".png"]),
])
def test_run_bad_input(home, args, fragments):
    before = files_under(home)
    result = invoke("run", *args)
    assert_usage_error(result, *fragments)
    assert files_under(home) == before


def test_train_bad_input(home):
    assert_usage_error(invoke("train", "--codec", "necst", "--eps", "0.7"), "eps")
    assert_usage_error(invoke("train", "--codec", "necst", "--bits", "0"), "--bits")
    assert_usage_error(invoke("train", "--codec", "necst", "--out", "x.pt"), ".safetensors")
    assert files_under(home) == []


def test_checkpoint_mismatch_and_corruption(home, checkpoint16):
    result = invoke("run", "--codec", "necst", "--eps", "0.2", "--bits", "100", "--checkpoint", str(checkpoint16))
    assert_usage_error(result, "bits=16", "bits=100")
    result = invoke("run", "--codec", "iabf", "--eps", "0.2", "--bits", "16", "--checkpoint", str(checkpoint16))
    assert_usage_error(result, "codec='necst'")
    corrupt = home / "corrupt.safetensors"
    corrupt.write_bytes(os.urandom(64))
    assert_usage_error(invoke("run", "--codec", "necst", "--eps", "0.2", "--checkpoint", str(corrupt)), "corrupt")
    assert not (home / "home").exists()


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


def test_run_trains_once_then_reuses_cache(home):
    args = ["run", "--codec", "necst", "--eps", "0.3", "--bits", "8", "--epochs", "1", "--limit", "100"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    cached = files_under(home / "home")
    assert len(cached) == 1 and cached[0].startswith("checkpoints/necst-mnist-b8-eps0.3-e1-s0-")
    second = invoke(*args)
    assert second.exit_code == 0 and files_under(home / "home") == cached
    def table_row(output):
        return [line for line in output.splitlines() if line.startswith("necst  bsc")]
    assert len(table_row(first.output)) == 1
    assert table_row(first.output) == table_row(second.output)  # same seed, same numbers


def test_list_shows_registries():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("necst", "iabf", "bsc", "awgn", "gilbert_elliott", "mnist", "binary_mnist"):
        assert name in result.output


def test_run_iabf_end_to_end(home):
    result = invoke("run", "--codec", "iabf", "--channel", "bsc", "--eps", "0.2", "--bits", "8", "--epochs", "1", "--limit", "100")
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if line.split()[:2] == ["iabf", "bsc"]]
    assert len(row) == 1 and float(row[0].split()[4]) > 0
    assert files_under(home / "home")[0].startswith("checkpoints/iabf-mnist-b8-eps0.2-e1-s0-")


def test_sample_markov_chain_grid(home, checkpoint16):
    from PIL import Image

    out = home / "chain.png"
    result = invoke("sample", "--codec", "necst", "--eps", "0.2", "--bits", "16", "--checkpoint", str(checkpoint16),
                    "--steps", "4", "--every", "2", "--count", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output
    width, height = Image.open(out).size
    assert (width, height) == (3 * (5 * 30 + 2), 3 * (3 * 30 + 2))  # x0 + 2 kept states, 5 chains, 28 px + 2 pad, x3
    assert_usage_error(invoke("sample", "--codec", "vq+ideal", "--out", str(home / "x.png")), "not a learned codec")
