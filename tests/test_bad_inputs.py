"""Bad input, command by command: exit code 2, one line ``Error: ...`` naming the problem, no
traceback, and nothing written (neither under the working folder nor in ``COMMSIM_HOME``).

Each case is ``(command line, fragments the error line must contain)``; ``{name}`` in an argument is
replaced by the path of the fixture file ``name`` (see :func:`inputs`). The cases run in-process
with click's ``CliRunner``; bad inputs are all refused before any data, model or file is touched,
so each takes milliseconds.
"""
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from commsim.cli import cli
from commsim.learned.training import TrainConfig
from commsim.learned.zoo import train_and_save
from commsim.data import load_dataset
from commsim.data.sources import ImageSource, split_in_order

SYNTAX_ERROR = '''from commsim.channels import BSC


class Broken(BSC):
    def transmit(self, bits, generator, eps)
        return bits
'''
RAISES = '''from commsim.channels import BSC

LIMIT = 1
raise RuntimeError("the flux capacitor is not charged")
'''


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Bad (and a few good) files the cases refer to, outside every test's own tmp folder."""
    root = tmp_path_factory.mktemp("inputs")
    files = {}
    files["ckpt16"] = root / "necst16.safetensors"  # a real checkpoint, trained in a blink on 100 digits
    full = load_dataset("mnist")
    digits = ImageSource("mnist", full.images[:300], full.labels[:300], split_in_order(300, 100, 100, 100))
    train_and_save("necst", digits, 16, TrainConfig(eps=0.2, epochs=1), out=files["ckpt16"], device="cpu", progress=False)
    files["corrupt"] = root / "corrupt.safetensors"
    files["corrupt"].write_bytes(os.urandom(64))
    files["empty"] = root / "empty.safetensors"
    files["empty"].write_bytes(b"")
    files["foreign"] = root / "foreign.safetensors"  # a valid safetensors file without commsim's metadata
    save_file({"w": torch.zeros(3)}, str(files["foreign"]))
    files["truncated_ckpt"] = root / "truncated.safetensors"
    files["truncated_ckpt"].write_bytes(files["ckpt16"].read_bytes()[:5000])
    npz = root / "good.npz"
    np.savez_compressed(npz, images=np.random.default_rng(0).integers(0, 255, (200, 28, 28), dtype=np.uint8))
    files["truncated_npz"] = root / "truncated.npz"
    files["truncated_npz"].write_bytes(npz.read_bytes()[:300])
    files["crc_npz"] = root / "crc.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    files["crc_npz"].write_bytes(bytes(data))
    files["no_images_npz"] = root / "no_images.npz"
    np.savez(files["no_images_npz"], pictures=np.zeros((10, 28, 28), np.uint8))
    files["nan_npz"] = root / "nan.npz"
    pixels = np.random.default_rng(1).random((200, 28, 28)).astype(np.float32)
    pixels[3, 4, 5] = np.nan
    np.savez(files["nan_npz"], images=pixels)
    files["npy_npz"] = root / "npy.npz"
    with open(files["npy_npz"], "wb") as fh:
        np.save(fh, np.zeros((200, 28, 28), np.uint8))
    files["bad_json"] = root / "bad_json.safetensors"
    save_file({"w": torch.zeros(3)}, str(files["bad_json"]), metadata={"format": "commsim-checkpoint/1", "commsim": "{oops"})
    files["exit_py"] = root / "exit_channel.py"
    files["exit_py"].write_text("import sys\nsys.exit(0)\n")
    files["needs_py"] = root / "needs_channel.py"
    files["needs_py"].write_text("from commsim.channels import BSC\n\n\nclass Needs(BSC):\n    def __init__(self, a):\n"
                                 "        super().__init__()\n")
    files["huge_npz"] = root / "huge.npz"
    np.savez(files["huge_npz"], images=np.zeros((4, 1024, 1024), np.uint8))
    files["dangling_dir"] = root / "dangling_dir"
    os.symlink(root / "no" / "such" / "folder", files["dangling_dir"])
    files["fifo"] = root / "fifo.npz"
    os.mkfifo(files["fifo"])
    files["rgba_npz"] = root / "rgba.npz"
    np.savez(files["rgba_npz"], images=np.zeros((200, 28, 28, 4), np.uint8))
    files["empty_dir"] = root / "empty_dir"
    files["empty_dir"].mkdir()
    files["syntax_py"] = root / "syntax_channel.py"
    files["syntax_py"].write_text(SYNTAX_ERROR)
    files["raises_py"] = root / "raising_channel.py"
    files["raises_py"].write_text(RAISES)
    files["a_file"] = root / "a_file.txt"
    files["a_file"].write_text("not a folder")
    files["dir_ckpt"] = root / "a_dir.safetensors"
    files["dir_ckpt"].mkdir()
    files["finished"] = root / "finished"
    files["finished"].mkdir()
    (files["finished"] / "results.csv").write_text("codec,channel\n")
    files["missing"] = root / "missing"
    files["ber_done"] = root / "ber_done"
    files["ber_done"].mkdir()
    (files["ber_done"] / "ber.csv").write_text("code,value\n")
    return {k: str(v) for k, v in files.items()}


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """A fresh working folder and checkpoint cache, both under ``tmp_path``."""
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))

    def no_training(*args, **kwargs):  # bad input is refused before any training: one that starts is a failure
        raise AssertionError("a training started although the input is bad")

    monkeypatch.setattr("commsim.learned.zoo.train_codec", no_training)
    return tmp_path


def tree(path):
    """Every file and folder under ``path`` with its size (an empty folder left behind counts)."""
    return sorted((str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1) for p in path.rglob("*"))


def assert_refused(result, fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def refuse(args, fragments, work, inputs):
    before = tree(work)
    result = CliRunner().invoke(cli, [a.format(**inputs) for a in args])
    assert_refused(result, fragments)
    assert tree(work) == before, "a refused command wrote something"
    return result


RUN = ["run", "--codec", "necst", "--eps", "0.1"]
RUN_CASES = [
    (["run", "--codec", "nope", "--eps", "0.1"], ["nope"]),
    (["run", "--eps", "0.1"], ["--codec"]),
    (RUN + ["--channel", "nope"], ["nope"]),
    (RUN + ["--dataset", "nope"], ["nope"]),
    (["run", "--codec", "necst", "--eps", "1.5"], ["eps", "[0, 1]"]),
    (["run", "--codec", "necst", "--eps", "-0.1"], ["eps", "-0.1"]),
    (["run", "--codec", "necst", "--eps", "nan"], ["eps", "NaN"]),
    (["run", "--codec", "necst", "--eps", "inf"], ["eps", "inf"]),
    (["run", "--codec", "necst", "--eps", "abc"], ["--eps", "abc"]),
    (RUN + ["--bits", "0"], ["--bits"]),
    (RUN + ["--bits", "-5"], ["--bits"]),
    (RUN + ["--bits", "many"], ["--bits"]),
    (["run", "--codec", "iabf", "--eps", "0.1", "--bits", "1000000000"], ["--bits", "1,000,000,000", "65,536", "weights"]),
    (RUN + ["--bits", "65537"], ["--bits", "65,536"]),
    (["run", "--codec", "vq+ldpc", "--eps", "0.1", "--bits", "1000000000"], ["--bits", "16,384", "LDPC"]),
    (["run", "--codec", "jpeg+ldpc", "--eps", "0.1", "--bits", "20000"], ["--bits", "16,384"]),
    (["run", "--codec", "jpeg+ideal", "--eps", "0.1", "--bits", "70000"], ["--bits", "65,536"]),
    (["run", "--codec", "vq+ideal", "--eps", "0.1", "--bits", "3000"], ["vq", "1,024"]),
    (RUN + ["--seed", "-1"], ["--seed"]),
    (RUN + ["--seed", str(2**70)], ["--seed"]),
    (RUN + ["--limit", "0"], ["--limit"]),
    (RUN + ["--epochs", "0"], ["--epochs"]),
    (RUN + ["--precision", "fp16"], ["--precision", "fp16"]),
    (RUN + ["--images", "lots"], ["--images", "800k"]),
    (RUN + ["--images", "0"], ["--images", "between 1"]),
    (RUN + ["--images", "800k", "--epochs", "3"], ["epochs or images"]),
    (RUN + ["--train-eps", "0.7"], ["--train-eps", "0.5"]),
    (RUN + ["--train-eps", "nan"], ["--train-eps"]),
    (RUN + ["--device", "nope"], ["--device", "nope"]),
    (RUN + ["--checkpoint", "missing.safetensors"], ["missing.safetensors", "does not exist"]),
    (RUN + ["--checkpoint", "{empty_dir}"], ["--checkpoint", "directory"]),
    (["run", "--codec", "necst", "--eps", "0.2", "--bits", "100", "--checkpoint", "{ckpt16}"], ["bits=16", "bits=100"]),
    (["run", "--codec", "iabf", "--eps", "0.2", "--bits", "16", "--checkpoint", "{ckpt16}"], ["codec='necst'"]),
    (RUN + ["--checkpoint", "{corrupt}"], ["corrupt"]),
    (RUN + ["--checkpoint", "{empty}"], ["corrupt"]),
    (RUN + ["--checkpoint", "{truncated_ckpt}", "--bits", "16"], ["corrupt"]),
    (RUN + ["--checkpoint", "{foreign}"], ["not a commsim checkpoint"]),
    (["run", "--codec", "vq+ideal", "--eps", "0.1", "--checkpoint", "{ckpt16}"], ["separated", "no checkpoint"]),
    (["run", "--codec", "necst", "--channel", "bsc"], ["needs eps", "--eps"]),
    (["run", "--codec", "necst", "--channel", "awgn", "--eps", "0.1"], ["awgn", "eps"]),
    (["run", "--codec", "necst", "--channel", "awgn", "--ebno-db", "nan"], ["ebno_db", "NaN"]),
    (["run", "--codec", "necst", "--channel", "awgn", "--ebno-db", "1e308"], ["ebno_db"]),
    (["run", "--codec", "necst", "--channel", "bsc", "--ebno-db", "3"], ["--ebno-db"]),
    (RUN + ["--param", "foo"], ["NAME=VALUE"]),
    (RUN + ["--param", "eps=0.3"], ["eps is given twice", "--eps 0.1", "--param eps=0.3"]),
    (["run", "--codec", "necst", "--channel", "awgn", "--ebno-db", "2", "--param", "ebno_db=3"], ["ebno_db is given twice"]),
    (["run", "--codec", "necst", "--channel", "gilbert_elliott", "--param", "p_gb=0.1", "--param", "p_gb=0.2"],
     ["p_gb is given twice"]),
    (["run", "--codec", "necst", "--channel", "gilbert_elliott", "--param", "p_gb=nan"], ["p_gb", "finite"]),
    (RUN + ["--param", "foo=1"], ["foo"]),
    (["run", "--codec", "necst", "--channel", "gilbert_elliott", "--param", "eps_bad=x"], ["eps_bad", "number"]),
    (["run", "--codec", "necst", "--channel", "gilbert_elliott", "--param", "p_gb=2"], ["p_gb"]),
    (RUN + ["--dataset", "idx"], ["--data-path"]),
    (RUN + ["--dataset", "idx", "--data-path", "/no/such/dir"], ["/no/such/dir"]),
    (RUN + ["--dataset", "idx", "--data-path", "{empty_dir}"], ["train-images-idx3-ubyte"]),
    (RUN + ["--dataset", "cifar10", "--data-path", "{empty_dir}"], ["data_batch_1"]),
    (RUN + ["--dataset", "npz", "--data-path", "{truncated_npz}"], ["truncated.npz", "not a readable .npz"]),
    (RUN + ["--dataset", "npz", "--data-path", "{crc_npz}"], ["crc.npz", "not a readable .npz"]),
    (RUN + ["--dataset", "npz", "--data-path", "{no_images_npz}"], ["no 'images'"]),
    (RUN + ["--dataset", "npz", "--data-path", "{nan_npz}"], ["nan.npz", "NaN"]),
    (RUN + ["--dataset", "npz", "--data-path", "{npy_npz}"], ["npy.npz", "a .npy file", "numpy.savez"]),
    (RUN + ["--dataset", "npz", "--data-path", "{fifo}"], ["fifo.npz", "not a regular file", "FIFO"]),
    (RUN + ["--dataset", "npz", "--data-path", "{huge_npz}"], ["1x1024x1024", "196,608", "downscale"]),
    (RUN + ["--dataset", "npz", "--data-path", "/dev/zero"], ["/dev/zero", "not a regular file"]),
    (RUN + ["--checkpoint", "{bad_json}"], ["bad_json.safetensors", "metadata is not JSON"]),
    (RUN + ["--epochs", "99999999999999999999"], ["--epochs", "1000000"]),
    (RUN + ["--dataset", "npz", "--data-path", "{rgba_npz}"], ["rgba.npz", "C = 1 or 3", "alpha"]),
    (["train", "--codec", "necst", "--dataset", "npz", "--data-path", "{nan_npz}"], ["NaN"]),
    (RUN + ["--save-recon", "out.jpg"], ["--save-recon", ".png"]),
    (RUN + ["--save-recon", "/proc/x.png"], ["--save-recon", "/proc"]),
    (RUN + ["--save-recon", "{a_file}/x.png"], ["--save-recon", "a_file.txt"]),
    (RUN + ["--save-recon", "{empty_dir}"], ["--save-recon"]),
]

TRAIN = ["train", "--codec", "necst"]
TRAIN_CASES = [
    (["train", "--codec", "nope"], ["nope"]),
    (["train"], ["--codec"]),
    (["train", "--codec", "vq+ldpc"], ["separated", "commsim run"]),
    (TRAIN + ["--eps", "0.7"], ["eps", "0.5"]),
    (TRAIN + ["--eps", "nan"], ["eps"]),
    (TRAIN + ["--epochs", "0"], ["--epochs"]),
    (TRAIN + ["--precision", "half"], ["--precision"]),
    (TRAIN + ["--patience", "-1"], ["--patience"]),
    (TRAIN + ["--bits", "0"], ["--bits"]),
    (TRAIN + ["--bits", "100000"], ["--bits", "65,536"]),
    (TRAIN + ["--seed", "-3"], ["--seed"]),
    (TRAIN + ["--device", "tpu"], ["--device"]),
    (TRAIN + ["--out", "x.pt"], ["--out", ".safetensors"]),
    (TRAIN + ["--out", "/proc/x.safetensors"], ["--out", "/proc"]),
    (TRAIN + ["--out", "{a_file}/x.safetensors"], ["--out", "a_file.txt"]),
    (TRAIN + ["--out", "{dir_ckpt}"], ["--out", "directory"]),
    (TRAIN + ["--dataset", "nope"], ["nope"]),
    (TRAIN + ["--dataset", "npz", "--data-path", "{truncated_npz}"], ["not a readable .npz"]),
    (TRAIN + ["--dataset", "omniglot", "--data-path", "{empty_dir}"], ["omniglot", "PNG"]),
]

SWEEP = ["sweep", "--codec", "necst"]
SWEEP_CASES = [
    (["sweep", "--codec", "nope", "--eps", "0.1"], ["nope"]),
    (["sweep", "--codec", "necst,nope", "--eps", "0.1"], ["nope"]),
    (["sweep", "--codec", ",", "--eps", "0.1"], ["--codec", "no codec"]),
    (["sweep", "--codec", " ", "--eps", "0.1"], ["--codec", "no codec"]),
    (["sweep", "--eps", "0.1"], ["--codec"]),
    (SWEEP, ["exactly one of"]),
    (SWEEP + ["--eps", "0.1", "--ebno-db", "1"], ["exactly one of"]),
    (SWEEP + ["--eps", "0:1:1e-9"], ["1,000,000,000 values", "1,000"]),
    (SWEEP + ["--eps", "0:1e308:1e-308"], ["1,000"]),
    (SWEEP + ["--eps", "0.4:0.1:0.1"], ["empty"]),
    (SWEEP + ["--eps", "0.1:0.2:0"], ["malformed"]),
    (SWEEP + ["--eps", "0.1:0.2:-0.1"], ["malformed"]),
    (SWEEP + ["--eps", "0.1:0.2"], ["malformed"]),
    (SWEEP + ["--eps", "x:y"], ["malformed"]),
    (SWEEP + ["--eps", "a,b"], ["malformed"]),
    (SWEEP + ["--eps", ","], ["empty"]),
    (SWEEP + ["--eps", "0.1:nan:0.1"], ["finite"]),
    (SWEEP + ["--eps", "0.1,1.5"], ["eps", "1.5"]),
    (SWEEP + ["--eps", "0.1", "--channel", "nope"], ["nope"]),
    (SWEEP + ["--eps", "0.1", "--channel", "{syntax_py}:Broken"], ["syntax_channel.py", "line 5", "SyntaxError"]),
    (SWEEP + ["--eps", "0.1", "--channel", "{raises_py}:X"], ["raising_channel.py", "line 4", "flux capacitor"]),
    (SWEEP + ["--eps", "0.1", "--channel", "{missing}.py:X"], ["missing.py", "does not exist"]),
    (SWEEP + ["--eps", "0.1", "--channel", "missing_module_xyz:ch"], ["missing_module_xyz"]),
    (SWEEP + ["--eps", "0.1", "--channel", "commsim.channels:nothing"], ["not a commsim Channel"]),
    (SWEEP + ["--eps", "0.1", "--train-eps", "0.7"], ["--train-eps", "0.7"]),
    (SWEEP + ["--eps", "0.1", "--train-eps", "x"], ["malformed"]),
    (SWEEP + ["--vary", "foo=0.1"], ["foo"]),
    (SWEEP + ["--vary", "foo"], ["--vary", "NAME=RANGE"]),
    (SWEEP + ["--channel", "gilbert_elliott", "--vary", "p_gb=0.1"], ["--train-eps"]),
    (SWEEP + ["--channel", "awgn", "--ebno-db", "-2:100:1"], ["ebno_db"]),
    (SWEEP + ["--eps", "0.1", "--seeds", "0"], ["--seeds"]),
    (SWEEP + ["--eps", "0.1", "--seeds", "100000000"], ["100,000,000 points", "10,000"]),
    (["sweep", "--codec", "necst,iabf", "--eps", "0:0.5:0.001", "--seeds", "20"], ["20,040 points"]),
    (SWEEP + ["--eps", "0.1", "--jobs", "0"], ["--jobs"]),
    (SWEEP + ["--eps", "0.1", "--jobs", "1000"], ["--jobs", "64"]),
    (SWEEP + ["--eps", "0.1", "--jobs", str(os.cpu_count() + 1)], ["--jobs", "cores this process may use"]),
    (SWEEP + ["--eps", "0.1", "--limit", "0"], ["--limit"]),
    (SWEEP + ["--eps", "0.1", "--epochs", "0"], ["--epochs"]),
    (SWEEP + ["--eps", "0.1", "--precision", "int8"], ["--precision"]),
    (SWEEP + ["--eps", "0.1", "--images", "1.5"], ["--images", "whole number"]),
    (SWEEP + ["--eps", "0.1", "--seed", "-1"], ["--seed"]),
    (SWEEP + ["--eps", "0.1", "--bits", "100000"], ["--bits", "65,536"]),
    (["sweep", "--codec", "vq+ldpc", "--eps", "0.1", "--bits", "17000"], ["--bits", "16,384"]),
    (SWEEP + ["--eps", "0.1", "--param", "x"], ["--param", "NAME=VALUE"]),
    (SWEEP + ["--eps", "0.1", "--param", "eps=0.3"], ["eps is swept"]),
    (SWEEP + ["--eps", "0.1", "--out", "{dangling_dir}"], ["dangling_dir is a symbolic link", "does not exist"]),
    (["ber", "--code", "rep(64,64)", "--channel", "bsc", "--eps", "0.1", "--out", "{dangling_dir}"], ["symbolic link"]),
    (SWEEP + ["--eps", "0.1", "--channel", "{exit_py}:X"], ["exit_channel.py", "sys.exit(0)"]),
    (SWEEP + ["--eps", "0.1", "--channel", "{needs_py}:Needs"], ["cannot be built without arguments", "instance"]),
    (SWEEP + ["--eps", "0.1", "--param", "eps_bad=y"], ["--param", "number"]),
    (SWEEP + ["--eps", "0.1", "--out", "/proc/x"], ["--out", "/proc"]),
    (SWEEP + ["--eps", "0.1", "--out", "{a_file}"], ["--out", "a_file.txt"]),
    (SWEEP + ["--eps", "0.1", "--out", "{finished}"], ["--out", "--resume"]),
    (SWEEP + ["--eps", "0.1", "--dataset", "npz", "--data-path", "{truncated_npz}"], ["not a readable .npz"]),
]

SAMPLE = ["sample", "--codec", "iabf"]
SAMPLE_CASES = [
    (["sample", "--codec", "nope"], ["nope"]),
    (["sample", "--codec", "vq+ideal"], ["not a learned codec"]),
    (SAMPLE + ["--out", "x.jpg"], ["--out", ".png"]),
    (SAMPLE + ["--out", "/proc/c.png"], ["--out", "/proc"]),
    (SAMPLE + ["--out", "{a_file}/c.png"], ["--out", "a_file.txt"]),
    (SAMPLE + ["--eps", "2"], ["--eps"]),
    (SAMPLE + ["--steps", "0"], ["--steps"]),
    (SAMPLE + ["--steps", "1000000000"], ["--steps"]),
    (SAMPLE + ["--steps", "1000", "--every", "1"], ["--steps", "1001 rows", "64"]),
    (SAMPLE + ["--every", "0"], ["--every"]),
    (SAMPLE + ["--count", "65"], ["--count"]),
    (SAMPLE + ["--epochs", "0"], ["--epochs"]),
    (SAMPLE + ["--bits", "1000000"], ["--bits", "65,536"]),
    (SAMPLE + ["--checkpoint", "missing.safetensors"], ["missing.safetensors"]),
    (["sample", "--codec", "necst", "--checkpoint", "{ckpt16}"], ["bits=16"]),
    (SAMPLE + ["--checkpoint", "{corrupt}"], ["corrupt"]),
    (SAMPLE + ["--dataset", "npz", "--data-path", "{crc_npz}"], ["not a readable .npz"]),
]

BER = ["ber", "--code", "ldpc(128,64)", "--ebno-db", "1,2"]
BER_CASES = [
    (["ber", "--code", "nosuch(128,64)", "--ebno-db", "1"], ["unknown channel code", "nosuch"]),
    (["ber", "--code", "ldpc(64,128)", "--ebno-db", "1"], ["K <= N", "K=128"]),
    (["ber", "--code", "ldpc128,64", "--ebno-db", "1"], ["malformed code", "FAMILY(N,K)"]),
    (["ber", "--code", "ldpc(128,x)", "--ebno-db", "1"], ["whole numbers"]),
    (["ber", "--code", "ldpc(128,64,bogus=1)", "--ebno-db", "1"], ["no such option", "bogus"]),
    (["ber", "--code", "ideal(128,64)", "--ebno-db", "1"], ["ideal", "no decodable code"]),
    (["ber", "--code", "conv(100,64)", "--ebno-db", "1"], ["conv", "not 100"]),
    (["ber", "--code", "rep(100,64)", "--ebno-db", "1"], ["multiple of 64"]),
    (BER + ["--max-frames", "0"], ["frame cap", "got 0"]),
    (BER + ["--errors", "0"], ["block-error target", "got 0"]),
    (["ber", "--code", "ldpc(128,64)", "--ebno-db", "0:1000:0.01"], ["100,001 values", "1,000"]),
    (["ber", "--code", "ldpc(128,64)", "--ebno-db", "1", "--eps", "0.1"], ["exactly one of"]),
    (["ber", "--code", "ldpc(128,64)"], ["exactly one of"]),
    (["ber", "--code", "ldpc(128,64)", "--eps", "0.1"], ["awgn", "no parameter 'eps'"]),
    (["ber", "--code", "ldpc(128,64)", "--channel", "bsc", "--eps", "0.1,2"], ["eps", "[0, 1]"]),
    (["ber", "--code", "ldpc(128,64)", "--channel", "nope", "--eps", "0.1"], ["nope"]),
    (BER + ["--param", "ebno_db=3"], ["ebno_db is swept"]),
    (BER + ["--out", "{a_file}"], ["--out"]),
    (BER + ["--out", "{ber_done}"], ["exists", "--resume"]),
]

OTHER_CASES = [
    (["nope"], ["nope"]),
    (["plot", "{missing}.csv"], ["missing.csv", "does not exist"]),
    (["plot", "{empty_dir}"], ["directory"]),
    (["--traceback", "run", "--codec", "nope"], ["nope"]),
]

CASES = [("run", c) for c in RUN_CASES] + [("train", c) for c in TRAIN_CASES] + [("sweep", c) for c in SWEEP_CASES] \
    + [("sample", c) for c in SAMPLE_CASES] + [("ber", c) for c in BER_CASES] + [("other", c) for c in OTHER_CASES]


@pytest.mark.parametrize("args, fragments", [c for _, c in CASES],
                         ids=[f"{kind}-{i}-{' '.join(c[0][1:4])[:40]}" for i, (kind, c) in enumerate(CASES)])
def test_bad_input_is_refused(work, inputs, args, fragments):
    if "/proc" in " ".join(args) and not os.path.isdir("/proc"):
        pytest.skip("no /proc on this system")
    refuse(args, fragments, work, inputs)


def test_cuda_asked_without_cuda(work, inputs):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refuse(RUN + ["--device", "cuda"], ["CUDA", "--device cpu"], work, inputs)


def test_unwritable_cache_is_refused_before_training(work, inputs, monkeypatch):
    """No checkpoint cached and none can be written: refused before the training starts."""
    blocker = work / "home" / "blocker"
    blocker.write_text("a file where the cache should be")
    monkeypatch.setenv("COMMSIM_HOME", str(blocker))
    refuse(RUN + ["--bits", "8"], ["cannot write", "blocker"], work, inputs)
    refuse(TRAIN + ["--bits", "8"], ["cannot write", "blocker"], work, inputs)


def test_traceback_flag_shows_the_user_modules_error(work, inputs):
    args = ["sweep", "--codec", "necst", "--eps", "0.1", "--channel", f"{inputs['raises_py']}:X"]
    result = CliRunner().invoke(cli, ["--traceback"] + args)
    assert result.exit_code == 2
    assert "Traceback" in result.output and "flux capacitor" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: channel module")
    assert not (work / "work" / "results").exists()
