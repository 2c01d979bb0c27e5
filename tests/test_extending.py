"""Extending commsim is one new file and a registration: a channel-code family (here a single parity
check code defined in the test) is at once a separated codec ``SOURCE+FAMILY`` and a ``commsim ber``
code; a new command is one new module in ``commsim/cli/`` that :func:`commsim.cli.add_commands` finds."""
from __future__ import annotations

import csv

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import commsim
import commsim.cli
from commsim.cli import add_commands, cli
from commsim import CODECS  # the package attribute arrives with every codec registered
from commsim.fec import CHANNEL_CODES, ChannelCode, register_channel_code


class ParityCode(ChannelCode):
    """``k`` bits and their parity (``n = k + 1``); decoding takes hard decisions, ``ok`` if the parity holds."""

    def __init__(self, k: int):
        super().__init__()
        self.k, self.n, self.name = int(k), int(k) + 1, f"parity({k + 1},{k})"

    def encode(self, info):
        info = np.asarray(info, np.uint8)
        return np.concatenate([info, info.sum(1, keepdims=True) % 2], 1).astype(np.uint8)

    def decode(self, llr):
        word = (np.asarray(llr) > 0).astype(np.uint8)
        return word[:, : self.k], word.sum(1) % 2 == 0

    def decode_tensor(self, llr: torch.Tensor):
        word = (llr > 0).to(torch.uint8)
        return word[:, : self.k], word.sum(1) % 2 == 0


class ParityFamily:
    """Single parity check codes."""

    def codes_for(self, n: int):
        return [ParityCode(n - 1)] if n >= 2 else []

    def build(self, n: int, k: int):
        if n != k + 1:
            raise ValueError(f"a parity code has n = k + 1, got ({n},{k})")
        return ParityCode(k)


@pytest.fixture
def parity_registered(monkeypatch):
    """The family registered for one test (the registries are restored after it)."""
    for registry in (CHANNEL_CODES, CODECS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_docs", dict(registry._docs))
    register_channel_code("parity")(ParityFamily)


def test_a_new_channel_code_is_a_separated_codec_and_a_ber_code(parity_registered, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    assert "jpeg+parity" in CODECS and CODECS.get("jpeg+parity").family_name == "parity"
    result = CliRunner().invoke(cli, ["run", "--codec", "jpeg+parity", "--eps", "0.0", "--bits", "2000", "--limit", "10"])
    assert result.exit_code == 0 and "jpeg+parity" in result.output, result.output
    out = tmp_path / "ber"
    result = CliRunner().invoke(cli, ["ber", "--code", "parity(9,8)", "--channel", "bsc", "--eps", "0.05", "--errors", "50",
                                      "--max-frames", "2000", "--out", str(out), "--no-plot"])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(open(out / "ber.csv")))
    # a single parity check detects every odd number of flips: BLER = P(at least one flip of 9) within its interval
    assert float(row["bler_low"]) <= 1 - 0.95**9 <= float(row["bler_high"])


def test_a_new_command_is_one_module(tmp_path, monkeypatch):
    (tmp_path / "hello.py").write_text('import click\n\n\n@click.command("hello")\ndef command():\n'
                                       '    """Say hello."""\n    click.echo("hello from a new module")\n')
    monkeypatch.setattr(commsim.cli, "__path__", [*commsim.cli.__path__, str(tmp_path)])
    group = click.Group()
    add_commands(group)
    assert {"hello", "run", "sweep", "train", "plot", "ber", "sample", "list"} <= set(group.commands)
    assert CliRunner().invoke(group, ["hello"]).output == "hello from a new module\n"


def test_train_and_run_take_a_user_channel_file(tmp_path, monkeypatch):
    """`train` and `run --train-channel same` take the same channel forms as `sweep`: a user file."""
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path / "home"))
    (tmp_path / "flip.py").write_text("from commsim.channels import BSC\n\n\nclass Flip(BSC):\n    pass\n\n\nchannel = Flip()\n")
    user = f"{tmp_path / 'flip.py'}:channel"
    common = ["--codec", "necst", "--channel", user, "--eps", "0.1", "--bits", "4", "--epochs", "1", "--dataset", "npz",
              "--data-path", str(tmp_path / "digits.npz")]
    with np.load(commsim.__path__[0].rsplit("/", 1)[0] + "/commsim/data/mnist10k.npz") as data:
        np.savez(tmp_path / "digits.npz", images=data["images"][:300], labels=data["labels"][:300])
    trained = CliRunner().invoke(cli, ["train", *common])
    assert trained.exit_code == 0 and "user_channel" in trained.output, trained.output
    ran = CliRunner().invoke(cli, ["run", *common, "--train-channel", "same"])
    assert ran.exit_code == 0 and "; cached)" in ran.output, ran.output  # the same cache entry
