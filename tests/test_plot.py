"""`commsim plot`: the README's workflows, all-notes and mismatch CSVs, reconstructions from the CSV's
checkpoints, confidence-band coverage, and bad CSVs (one line, exit 2, nothing written)."""
import os
import shutil
import stat

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import commsim.plotting as plotting
from commsim.cli import cli
from commsim.core.files import atomic_write
from commsim.core.images import save_grid
from commsim.core.metrics import mean_ci
from commsim.plotting import seed_band
from commsim.sweep import COLUMNS

SMALL = ["--bits", "8", "--epochs", "1", "--limit", "100"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, necst8_cache):
    """A checkpoint cache holding necst, 8 bits, trained at eps 0.1 (one epoch), and a copy of it
    filed under eps 0.3: a lookup by test value would pick that copy."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMSIM_HOME", str(home))
        (path,) = necst8_cache(home, 0.1)
        shutil.copy(path, path.with_name(path.name.replace("-eps0.1-", "-eps0.3-")))
        yield home


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_readme_awgn_workflow(home, tmp_path):
    """README: `sweep --channel awgn --ebno-db ... --train-eps 0.1`, then `plot` (it used to crash)."""
    out = tmp_path / "awgn"
    result = invoke("sweep", "--codec", "necst", "--channel", "awgn", "--ebno-db", "0:4:4", "--train-eps", "0.1", *SMALL, "--out", out)
    assert result.exit_code == 0, result.output
    result = invoke("plot", out / "results.csv")
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["curves.csv", "distortion_vs_ebno_db.pdf", "distortion_vs_ebno_db.png", "recon_necst.png", "results.csv"]
    curves = pd.read_csv(out / "curves.csv")
    frame = pd.read_csv(out / "results.csv")
    assert set(curves["curve"]) == {"necst (trained at eps 0.1)"}
    assert curves["value"].tolist() == [0.0, 4.0]
    assert curves["mean"].tolist() == pytest.approx(frame.sort_values("value")["l2_per_image"].tolist())
    assert (curves["low"] < curves["mean"]).all() and (curves["mean"] < curves["high"]).all()


def test_all_notes_csv_is_one_line_error(tmp_path):
    out = tmp_path / "notes"
    result = invoke("sweep", "--codec", "jpeg+ldpc", "--eps", "0.1", "--bits", "100", "--out", out)
    assert result.exit_code == 0, result.output
    result = invoke("plot", out / "results.csv", "--out", tmp_path / "fig")
    assert_one_line_error(result, "nothing to plot", "jpeg+ldpc", "cannot fit any image")
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"] and not (tmp_path / "fig").exists()


def test_mismatch_sweep_draws_every_codec_and_uses_the_csv_checkpoints(home, tmp_path, monkeypatch):
    """Trained at 0.1, tested at 0.3 and 0.5 only: the codec is drawn, and the reconstructions come from
    the checkpoint in the CSV (eps 0.1), not from the cached copy filed under the test value 0.3."""
    out = tmp_path / "mismatch"
    result = invoke("sweep", "--codec", "necst", "--eps", "0.3,0.5", "--train-eps", "0.1", "--seeds", "2", *SMALL, "--out", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "results.csv")
    assert frame["checkpoint"].str.contains("-eps0.1-").all()
    loaded, grids = [], []
    real_load, real_save = plotting.make_codec, plotting.save_grid
    monkeypatch.setattr(plotting, "make_codec", lambda *a, checkpoint, **k: loaded.append(checkpoint.name) or real_load(*a, checkpoint=checkpoint, **k))
    monkeypatch.setattr(plotting, "save_grid", lambda rows, path, labels: grids.append((path.name, labels)) or real_save(rows, path, labels=labels))
    result = invoke("plot", out / "results.csv", "--out", tmp_path / "fig")
    assert result.exit_code == 0, result.output
    assert loaded == [frame["checkpoint"].iloc[0]]
    assert grids == [("recon_necst.png", ["originals", "eps 0.3, trained at eps 0.1", "eps 0.5, trained at eps 0.1"])]
    curves = pd.read_csv(tmp_path / "fig" / "curves.csv")
    assert set(curves["curve"]) == {"necst (trained at eps 0.1)"} and curves["seeds"].tolist() == [2, 2]
    assert not (tmp_path / "fig" / "mismatch_necst.png").exists()  # one training eps: the curve says it all

    (home / "checkpoints" / frame["checkpoint"].iloc[0]).rename(home / "gone.safetensors")
    try:
        result = invoke("plot", out / "results.csv", "--out", tmp_path / "fig2")
    finally:
        (home / "gone.safetensors").rename(home / "checkpoints" / frame["checkpoint"].iloc[0])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 3 and "is not in" in notes[0] and "recon_necst.png not written" in notes[2], result.output
    assert sorted(p.name for p in (tmp_path / "fig2").iterdir()) == ["curves.csv", "distortion_vs_eps.pdf", "distortion_vs_eps.png"]


def synthetic(tmp_path, rows, name="results.csv"):
    """A sweep CSV of separated-scheme rows: dicts of the columns that differ from a default point."""
    base = {"codec": "vq+ideal", "channel": "bsc", "param": "eps", "value": 0.1, "train_eps": "", "bits": 16,
            "dataset": "mnist", "seed": 0, "metric": "l2_per_image", "l2_per_image": 30.0, "l2_per_image_low": 29.0,
            "l2_per_image_high": 31.0, "l2_per_image_count": 100}
    path = tmp_path / name
    pd.DataFrame([{**dict.fromkeys(COLUMNS, ""), **base, **row} for row in rows], columns=COLUMNS).to_csv(path, index=False)
    return path


def test_codec_with_no_distortion_is_named_not_dropped(tmp_path):
    note = "jpeg cannot fit any image in 16 channel bits"
    nan = {"l2_per_image": "", "l2_per_image_low": "", "l2_per_image_high": "", "l2_per_image_count": ""}
    path = synthetic(tmp_path, [{"value": 0.1}, {"value": 0.2, **nan, "note": "decoder gave up"},
                                {"value": 0.2, "l2_per_image": 35.0, "l2_per_image_low": 34.0, "l2_per_image_high": 36.0},
                                {"codec": "jpeg+ldpc", **nan, "note": note}, {"codec": "jpeg+ldpc", "value": 0.2, **nan, "note": note}])
    written = plotting.plot_results(path, tmp_path / "fig", reconstructions=False)
    assert written["curves"]["curve"].tolist() == ["vq+ideal", "vq+ideal"]
    assert written["notes"] == [
        "vq+ideal: 1 of 3 rows have no distortion and are left out (first at eps 0.2: decoder gave up)",
        f"jpeg+ldpc: not drawn, none of its 2 rows has a distortion (first at eps 0.1: {note})"]
    result = invoke("plot", path, "--out", tmp_path / "fig2", "--no-recon")
    assert result.exit_code == 0 and result.output.count("note: ") == 2, result.output


BAD_CSVS = {
    "non-numeric value": ([{"value": "abc"}], "column value holds 'abc'"),
    "non-numeric metric": ([{}, {"value": 0.2, "l2_per_image": "big"}], "line 3: column l2_per_image"),
    "infinite value": ([{"value": "inf"}], "column value"),
    "no codec": ([{"codec": ""}], "has no codec"),
    "two metrics": ([{}, {"metric": "bce_per_pixel", "value": 0.2}], "mixes metrics"),
    "two parameters": ([{}, {"param": "ebno_db", "value": 2}], "mixes swept parameters"),
    "unknown metric": ([{"metric": "nope"}], "lacks the columns nope"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_is_one_line_error_and_writes_nothing(tmp_path, case):
    rows, fragment = BAD_CSVS[case]
    path = synthetic(tmp_path, rows)
    result = invoke("plot", path)
    assert_one_line_error(result, fragment)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


@pytest.mark.parametrize("content, fragment", [("", "not a readable CSV"), ("codec,value\nnecst,0.1\n", "lacks the columns"),
                                               (",".join(COLUMNS) + "\n", "no result rows")])
def test_unusable_files_are_one_line_errors(tmp_path, content, fragment):
    path = tmp_path / "results.csv"
    path.write_text(content)
    assert_one_line_error(invoke("plot", path), fragment)
    path.write_bytes(b"\xff\xfe\x00garbage\x00" * 10)
    assert_one_line_error(invoke("plot", path), "not a readable CSV")
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_unwritable_out_is_one_line_error(tmp_path):
    path = synthetic(tmp_path, [{}])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(invoke("plot", path, "--out", blocker / "sub", "--no-recon"), "cannot write to")


def test_legend_names_the_shading(tmp_path, monkeypatch):
    labels = []
    real = plotting.distortion_figure

    def spy(*args):
        fig = real(*args)
        labels.extend(t.get_text() for t in fig.axes[0].get_legend().get_texts())
        return fig

    monkeypatch.setattr(plotting, "distortion_figure", spy)
    plotting.plot_results(synthetic(tmp_path, [{}, {"value": 0.2}]), tmp_path / "fig", reconstructions=False)
    assert plotting.BAND_LABEL in labels and "95% CI" in plotting.BAND_LABEL


@pytest.mark.parametrize("sd_image, sd_noise, seeds", [(1.0, 0.2, 3), (1.0, 1.0, 2), (0.2, 1.0, 4), (1.0, 1.0, 1)])
def test_seed_band_covers_the_truth_at_the_nominal_rate(sd_image, sd_noise, seeds):
    """Every seed sees the same test images (a draw of image effects) with fresh noise; the band of
    the rows the sweep would write must cover the population mean about 95 % of the time, whether the
    images or the noise dominate."""
    rng, truth, images, trials = np.random.default_rng(12), 5.0, 200, 400
    covered = 0
    for _ in range(trials):
        effects = truth + sd_image * rng.standard_normal(images)
        rows = [mean_ci(effects + sd_noise * rng.standard_normal(images)) for _ in range(seeds)]
        _, low, high = seed_band(*([getattr(r, k) for r in rows] for k in ("mean", "low", "high", "count")))
        covered += low <= truth <= high
    assert 0.85 <= covered / trials <= 0.99


def test_seed_band_of_one_seed_is_its_interval_and_seeds_never_shrink_it_below_images():
    est = mean_ci(np.arange(50.0))
    assert seed_band([est.mean], [est.low], [est.high], [est.count]) == pytest.approx((est.mean, est.low, est.high))
    # identical seeds (no noise at all): the image interval stays, it is not divided by sqrt(3)
    mean, low, high = seed_band([est.mean] * 3, [est.low] * 3, [est.high] * 3, [est.count] * 3)
    assert (low, high) == pytest.approx((est.low, est.high))


def test_outputs_are_atomic_with_the_users_permissions(tmp_path):
    target = tmp_path / "a.csv"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    old = os.umask(0o022)
    try:
        grid = save_grid([torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)], tmp_path / "g.png", labels=["originals", "eps 0.1"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(grid.stat().st_mode) == 0o644 and [p.name for p in tmp_path.iterdir()] == ["g.png"]
    with pytest.raises(ValueError, match="1 labels for 2 rows"):
        save_grid([torch.zeros(2, 1, 4, 4)] * 2, tmp_path / "h.png", labels=["x"])


def test_curve_names():
    """Trained at the test eps: the codec's name; otherwise one curve per training eps; channels and
    bit counts are named when the CSV holds several."""
    rows = [("necst", "bsc", 8, 0.1, 0.1), ("necst", "bsc", 8, 0.2, 0.2), ("iabf", "bsc", 8, 0.2, 0.1),
            ("iabf", "bsc", 8, 0.2, 0.2), ("vq+ideal", "bsc", 8, 0.2, None), ("necst", "bec", 16, 0.1, 0.1)]
    frame = pd.DataFrame(rows, columns=["codec", "channel", "bits", "value", "train_eps"]).assign(param="eps", dataset="mnist")
    assert plotting.curve_names(frame).tolist() == [
        "necst / bsc, 8 bits", "necst / bsc, 8 bits", "iabf / bsc, 8 bits (trained at eps 0.1)",
        "iabf / bsc, 8 bits (trained at eps 0.2)", "vq+ideal / bsc, 8 bits", "necst / bec, 16 bits"]
    assert plotting.curve_names(frame.iloc[:2].assign(param="ebno_db")).tolist() == [
        "necst (trained at eps 0.1)", "necst (trained at eps 0.2)"]


EVIL = '''from pathlib import Path
Path(__file__).with_name("imported.txt").write_text("the CSV ran me")
from commsim.channels import BSC
Flip = BSC
'''


@pytest.mark.parametrize("cell", ["{folder}/evil.py:Flip", "evil.py:Flip", "os.path:join"])
def test_plot_never_imports_a_module_a_csv_names(tmp_path, monkeypatch, cell):
    """A CSV is data: the channel cell of a row never makes `plot` import a file or module; the user
    names a module with --channel to allow it."""
    (tmp_path / "evil.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    channel = cell.format(folder=tmp_path)
    row = {c: "" for c in COLUMNS}
    row.update(codec="necst", channel=channel, param="eps", value=0.1, train_eps=0.1, bits=8, dataset="mnist", seed=0,
               metric="l2_per_image", l2_per_image=30.0, l2_per_image_low=29.0, l2_per_image_high=31.0,
               l2_per_image_count=100, checkpoint="necst-nosuch.safetensors")
    pd.DataFrame([row]).to_csv(tmp_path / "results.csv", index=False)
    result = invoke("plot", tmp_path / "results.csv", "--out", tmp_path / "fig")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "imported.txt").exists()
    assert f"pass --channel {channel} to load it" in result.output
    if channel.endswith("evil.py:Flip"):  # named explicitly: loaded (then the missing checkpoint leaves the row out)
        result = invoke("plot", tmp_path / "results.csv", "--out", tmp_path / "fig2", "--channel", channel)
        assert result.exit_code == 0, result.output
        assert (tmp_path / "imported.txt").exists() and "necst-nosuch.safetensors" in result.output


def test_a_large_mismatch_grid_gives_a_bounded_figure():
    """A 30 x 200 grid (a 6,000-point sweep) used to make a 140-inch figure with 6,000 texts (65 s, 3.5 GB):
    the heat map's size is capped and only small grids get their values written in the cells."""
    grid = pd.DataFrame(np.random.default_rng(0).random((30, 200)), index=np.arange(30) / 100, columns=np.arange(200) / 400)
    fig = plotting.mismatch_figure(grid, "necst", "l2_per_image", "eps")
    try:
        width, height = fig.get_size_inches()
        assert width <= 16 and height <= 12 and not fig.axes[0].texts
        assert len(fig.axes[0].get_xticks()) <= plotting.MAX_TICKS
    finally:
        plotting.plt.close(fig)
    small = plotting.mismatch_figure(grid.iloc[:3, :4], "necst", "l2_per_image", "eps")
    assert len(small.axes[0].texts) == 12
    plotting.plt.close(small)
