"""Sweeps: resume after kill -9, reproducibility, plots from the data, bad input."""
import io
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from commsim.cli import cli
from commsim.plotting import plot_results
from commsim.sweep import SweepSpec, parse_values, point_key

SLOW_CHANNEL = '''
import os
import time
from commsim.channels import BSC

class SlowBSC(BSC):
    """A BSC that takes its time where SLOW_BSC_SECONDS says so, so that a sweep can be killed mid-way."""
    def transmit(self, bits, generator, eps):
        time.sleep(float(os.environ.get("SLOW_BSC_SECONDS", "0")))
        return super().transmit(bits, generator, eps)

channel = SlowBSC()
'''
TIME_COLUMNS = ["wall_seconds"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, necst8_cache):
    """A checkpoint cache holding necst, 8 bits, one epoch, trained at eps 0.1 and 0.2."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("COMMSIM_HOME")
    os.environ["COMMSIM_HOME"] = str(home)
    necst8_cache(home, 0.1, 0.2)
    yield home
    if old is None:
        os.environ.pop("COMMSIM_HOME")
    else:
        os.environ["COMMSIM_HOME"] = old


def sweep_args(out, channel):
    return ["sweep", "--codec", "necst", "--channel", channel, "--eps", "0.1,0.2", "--train-eps", "0.1,0.2", "--seeds", "3",
            "--bits", "8", "--epochs", "1", "--limit", "100", "--out", str(out)]


def test_parse_values():
    assert parse_values("0.05:0.4:0.05") == pytest.approx([0.05 * i for i in range(1, 9)])
    assert parse_values("0.1,0.3") == [0.1, 0.3]
    assert parse_values("0.2,0.1,0.2,0.10") == [0.2, 0.1]  # a repeated value once: no two rows with one key
    assert len(parse_values("0:0.999:0.001")) == 1000
    with pytest.raises(ValueError, match="1,000,000,000 values"):
        parse_values("0:1:1e-9")  # refused from its size, never built
    for bad, message in [("0.4:0.1:0.1", "empty"), ("a:b:c", "malformed"), ("0.1:0.2", "malformed"), ("", "empty")]:
        with pytest.raises(ValueError, match=message):
            parse_values(bad)


def test_points_are_unique_and_bounded():
    spec = SweepSpec(codecs=["necst", "necst", "vq+ideal"], channel="bsc", param="eps", values=[0.1, 0.1, 0.2], seeds=2)
    points = spec.points()
    assert len(points) == len({point_key(p) for p in points}) == 8  # (necst, vq+ideal) x (0.1, 0.2) x 2 seeds
    huge = SweepSpec(codecs=["necst"], channel="bsc", param="eps", values=[0.1], seeds=10**12)
    with pytest.raises(ValueError, match="1,000,000,000,000 points"):
        huge.points()  # refused from its size, never built


def test_resume_after_kill_matches_uninterrupted_run(home, tmp_path):
    """A sweep process killed with SIGKILL mid-way (its channel slowed down so that it can be), then
    resumed: the rows are those of an uninterrupted sweep. Only the killed run needs a process of its
    own; the others run in this one, at full speed."""
    channel = tmp_path / "slow.py"
    channel.write_text(SLOW_CHANNEL)
    spec = f"{channel}:channel"
    env = {**os.environ, "COMMSIM_HOME": str(home), "SLOW_BSC_SECONDS": "0.4"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "commsim.cli", *sweep_args(killed, spec)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv = killed / "results.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if csv.exists() and csv.read_text().count("\n") >= 4:  # header + 3 rows
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(csv)
    assert 3 <= len(partial) < 12
    with open(csv, "ab") as fh:  # as if the process had died in the middle of a line
        fh.write(b"necst,bsc,eps,0.2,0.2,8,mn")
    resumed = CliRunner().invoke(cli, sweep_args(killed, spec) + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    again = CliRunner().invoke(cli, sweep_args(killed, spec) + ["--resume"])
    assert again.exit_code == 0, again.output
    clean = tmp_path / "clean"
    full = CliRunner().invoke(cli, sweep_args(clean, spec))
    assert full.exit_code == 0, full.output
    keys = ["codec", "value", "train_eps", "seed"]
    a = pd.read_csv(csv).drop(columns=TIME_COLUMNS).sort_values(keys).reset_index(drop=True)
    b = pd.read_csv(clean / "results.csv").drop(columns=TIME_COLUMNS).sort_values(keys).reset_index(drop=True)
    assert len(a) == 12 and not a.duplicated(keys).any()
    pd.testing.assert_frame_equal(a, b)
    # seeds give different channel draws, so the points differ across seeds
    assert a.groupby(["value", "train_eps"])["ber"].nunique().min() > 1


def test_plot_uses_the_data(home, tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1,0.2", "--train-eps", "0.1,0.2",
                                      "--seeds", "2", "--bits", "8", "--epochs", "1", "--limit", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "results.csv")
    written = plot_results(out / "results.csv", tmp_path / "fig")
    curves = written["curves"].sort_values(["train_eps", "value"])
    means = frame.groupby(["train_eps", "value"])["l2_per_image"].mean().sort_index()
    assert curves["mean"].tolist() == pytest.approx(means.tolist())
    assert set(curves["curve"]) == {"necst (trained at eps 0.1)", "necst (trained at eps 0.2)"}
    assert (curves["low"] < curves["mean"]).all() and (curves["mean"] < curves["high"]).all()
    assert written["floor"] == pytest.approx(52, abs=3)
    names = sorted(p.name for p in written["files"])
    assert names == ["curves.csv", "distortion_vs_eps.pdf", "distortion_vs_eps.png", "mismatch_necst.csv",
                     "mismatch_necst.png", "recon_necst.png"]
    grid = pd.read_csv(tmp_path / "fig" / "mismatch_necst.csv", index_col=0)
    assert grid.shape == (2, 2)
    assert grid.loc[0.1, "0.2"] == pytest.approx(frame[(frame.train_eps == 0.1) & (frame.value == 0.2)]["l2_per_image"].mean())


@pytest.mark.parametrize("args, fragment", [
    (["sweep", "--codec", "necst,nope", "--eps", "0.1"], "nope"),
    (["sweep", "--codec", "necst", "--eps", "0.4:0.1:0.1"], "empty"),
    (["sweep", "--codec", "necst", "--eps", "x:y"], "malformed"),
    (["sweep", "--codec", "necst", "--eps", "0.1,1.5"], "eps"),
    (["sweep", "--codec", "necst"], "exactly one of"),
    (["sweep", "--codec", "necst", "--eps", "0.1", "--channel", "nope"], "nope"),
    (["sweep", "--codec", "necst", "--eps", "0.1", "--channel", "missing_module_xyz:ch"], "missing_module_xyz"),
])
def test_sweep_bad_input(tmp_path, args, fragment):
    result = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and fragment in lines[0], result.output
    assert not (tmp_path / "o" / "results.csv").exists()


def test_sweep_unwritable_out_and_bad_csv(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1", "--out", str(blocker / "sub")])
    assert result.exit_code == 2 and "cannot write" in result.output and len(result.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("codec,value\nnecst,0.1\n")
    result = CliRunner().invoke(cli, ["plot", str(bad)])
    assert result.exit_code == 2 and "lacks the columns" in result.output and len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["plot", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_separated_scheme_that_cannot_fit_is_a_noted_point(tmp_path):
    result = CliRunner().invoke(cli, ["sweep", "--codec", "jpeg+ldpc,vq+ideal", "--eps", "0.1", "--bits", "16",
                                      "--limit", "50", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "results.csv").set_index("codec")
    assert np.isnan(frame.loc["jpeg+ldpc", "l2_per_image"]) and "no ldpc code carries any information" in frame.loc["jpeg+ldpc", "note"]
    assert frame.loc["vq+ideal", "l2_per_image"] > 0 and pd.isna(frame.loc["vq+ideal", "note"])
    curves = plot_results(tmp_path / "results.csv", tmp_path / "fig", reconstructions=False)["curves"]
    assert list(curves["codec"]) == ["vq+ideal"]


def quick_sweep(out, *extra):
    return CliRunner().invoke(cli, ["sweep", "--codec", "vq+ideal", "--eps", "0.1,0.2", "--bits", "16", "--limit", "20",
                                    "--out", str(out), *extra])


def test_resume_refuses_a_foreign_or_binary_csv_and_leaves_it_as_it_was(tmp_path):
    for name, content in (("foreign", b"a,b,c\n1,2,3\n"), ("binary", bytes(range(256)) * 4)):
        out = tmp_path / name
        out.mkdir()
        (out / "results.csv").write_bytes(content)
        result = quick_sweep(out, "--resume")
        assert result.exit_code == 2 and "not a results CSV" in result.output, result.output
        assert (out / "results.csv").read_bytes() == content


def test_resume_keeps_a_whole_last_row_that_lost_its_newline_and_cuts_a_torn_one(tmp_path):
    assert quick_sweep(tmp_path).exit_code == 0
    csv_path = tmp_path / "results.csv"
    whole = csv_path.read_bytes()
    csv_path.write_bytes(whole.rstrip(b"\n"))  # the newline of a complete last row lost
    assert quick_sweep(tmp_path, "--resume").exit_code == 0
    assert csv_path.read_bytes() == whole  # kept, nothing recomputed
    csv_path.write_bytes(whole[: whole.rstrip(b"\n").rfind(b"\n") + 30])  # the last row cut mid-write
    assert quick_sweep(tmp_path, "--resume").exit_code == 0
    again = pd.read_csv(csv_path)
    assert len(again) == 2 and again["value"].tolist() == pd.read_csv(io.BytesIO(whole))["value"].tolist()


def test_a_second_writer_of_the_same_csv_is_refused(tmp_path):
    from commsim.core.files import exclusive_writer

    with exclusive_writer(tmp_path / "results.csv"):
        result = quick_sweep(tmp_path)
        assert result.exit_code == 2 and "another commsim run is writing" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "results.csv").exists()
        result = CliRunner().invoke(cli, ["ber", "--code", "rep(32,32)", "--channel", "bsc", "--eps", "0.1",
                                          "--max-frames", "100", "--out", str(tmp_path), "--no-plot"])
        assert result.exit_code == 0, result.output  # another file, another lock
    assert quick_sweep(tmp_path).exit_code == 0  # released


def test_resume_refuses_a_csv_of_another_sweep_naming_the_field(tmp_path):
    """A setting the rows depend on refuses the resume, naming it; a learning budget the separated
    scheme does not read does not (the budget fields of learned rows: the test below)."""
    assert quick_sweep(tmp_path).exit_code == 0
    before = (tmp_path / "results.csv").read_bytes()
    result = quick_sweep(tmp_path, "--resume", "--limit", "30")
    assert result.exit_code == 2 and "limit" in result.output and "another --out" in result.output, result.output
    assert (tmp_path / "results.csv").read_bytes() == before
    for extra in ([], ["--epochs", "3", "--seed", "2", "--recipe", "paper"]):  # the same rows: nothing to add
        result = quick_sweep(tmp_path, "--resume", *extra)
        assert result.exit_code == 0 and (tmp_path / "results.csv").read_bytes() == before, (extra, result.output)


def test_resume_compares_settings_within_a_channel_and_data_set():
    """Rows of another channel (or bits, data set) are other points and may share the CSV; rows of the
    same ones must have the same settings (fixed params, limit, the data's content, ...)."""
    from commsim.sweep import check_resumable, encode_settings

    spec = SweepSpec(codecs=["pca+rep"], channel="gilbert_elliott", param="eps_bad", values=[0.1], bits=16,
                     fixed={"p_gb": 0.2})
    settings = spec.settings(None)
    row = {"codec": "pca+rep", "channel": "gilbert_elliott", "param": "eps_bad", "value": "0.1", "train_eps": "", "bits": "16",
           "dataset": "mnist", "seed": "0", "sweep": encode_settings({**settings, "fixed": "p_gb=0.1"})}
    with pytest.raises(ValueError, match="fixed params = 'p_gb=0.1', this one has 'p_gb=0.2'"):
        check_resumable(spec, [row], settings, Path("r.csv"))
    with pytest.raises(ValueError, match="data \\(content fingerprint\\)"):
        check_resumable(spec, [{**row, "sweep": encode_settings({**settings, "data": "0123abcd"})}], settings, Path("r.csv"))
    check_resumable(spec, [{**row, "channel": "bsc", "param": "eps"}, {**row, "bits": "32"}, {**row, "sweep": ""},
                           {**row, "sweep": encode_settings(settings)}], settings, Path("r.csv"))


def test_resume_compares_budget_settings_only_for_codecs_that_read_them():
    """A separated scheme's row made beside 100-epoch learned codecs resumes in a sweep with another
    budget (its rows do not depend on it); a learned codec's row, or a neural source code's, does not."""
    from commsim.sweep import check_resumable, encode_settings

    spec = SweepSpec(codecs=["vq+ldpc", "necst"], channel="bsc", param="eps", values=[0.1], bits=100)
    settings = spec.settings(None)
    assert settings["epochs"] == ""
    old = encode_settings({**settings, "epochs": "100", "precision": "fp32"})
    row = {"channel": "bsc", "param": "eps", "value": "0.1", "train_eps": "", "bits": "100", "dataset": "mnist",
           "seed": "0", "sweep": old}
    check_resumable(spec, [{**row, "codec": "vq+ldpc"}, {**row, "codec": "pca+polar"}], settings, Path("r.csv"))
    for codec in ("necst", "neural+ldpc"):
        with pytest.raises(ValueError, match="epochs = '100', this one has 'default'"):
            check_resumable(spec, [{**row, "codec": codec}], settings, Path("r.csv"))
    for name, value in (("train_seed", "2"), ("recipe", "paper"), ("precision", "bf16")):
        with pytest.raises(ValueError, match=name):
            check_resumable(spec, [{**row, "codec": "necst", "sweep": encode_settings({**settings, name: value})}],
                            settings, Path("r.csv"))
    with pytest.raises(ValueError, match="limit"):  # not a budget setting: every codec's rows depend on it
        check_resumable(spec, [{**row, "codec": "vq+ldpc", "sweep": encode_settings({**settings, "limit": "50"})}],
                        settings, Path("r.csv"))


BOOM = '''from commsim.channels import BSC


class Boom(BSC):
    def transmit(self, bits, generator, eps):
        raise RuntimeError("the flux capacitor")
'''


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])  # 2: worker processes, ~3 s
def test_a_user_channel_that_raises_is_one_line_even_from_a_worker(home, tmp_path, jobs):
    (tmp_path / "boom.py").write_text(BOOM)
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--channel", str(tmp_path / "boom.py") + ":Boom",
                                      "--eps", "0.1,0.2", "--train-eps", "0.1", "--bits", "8", "--epochs", "1", "--limit", "20",
                                      "--jobs", jobs, "--out", str(tmp_path / "o")])
    lines = [line for line in result.output.splitlines() if line.startswith("Error") or "Traceback" in line]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "channel Boom raised RuntimeError: the flux capacitor" in lines[0] and "boom.py, line 6" in lines[0]


HANGS = '''import time

from commsim.channels import BSC


class Hangs(BSC):
    def transmit(self, bits, generator, eps):
        time.sleep(600)
'''


def test_a_point_over_the_timeout_stops_the_sweep_in_one_line(home, tmp_path):
    (tmp_path / "hangs.py").write_text(HANGS)
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--channel", str(tmp_path / "hangs.py") + ":Hangs",
                                      "--eps", "0.1", "--train-eps", "0.1", "--bits", "8", "--epochs", "1", "--limit", "20",
                                      "--point-timeout", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and time.monotonic() - start < 60, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == ["Error: point necst eps=0.1 seed 0 took more than 1 s (--point-timeout); a user channel that hangs? "
                      "fix it or raise the limit"], result.output
    bad = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1", "--point-timeout", "0", "--out", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "--point-timeout must be in (0" in bad.output
