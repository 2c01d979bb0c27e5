"""The BER/BLER simulator (:mod:`commsim.fec.simulate`, :mod:`commsim.ber`, ``commsim ber``): error
rates against closed forms within their intervals, the stop rules, the streams, resume, the normal
approximation against its published value, and the figure."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import special

from commsim.ber import BerSpec, run_ber
from commsim.cli import cli
from commsim.fec import build_code, parse_code_spec
from commsim.fec.ideal import normal_approximation_bits, normal_approximation_bler, normal_approximation_ebno_db
from commsim.fec.simulate import simulate_curve, simulate_point
from commsim.plotting import plot_results


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("ebno_db", [0.0, 4.0])
def test_uncoded_bpsk_ber_is_q_of_sqrt_2ebno(ebno_db):
    code = build_code("rep(64,64)")  # one copy: uncoded
    row = simulate_point(code, "awgn", {"ebno_db": ebno_db}, target_block_errors=10**9, max_frames=3000, seed=1)
    expected = 0.5 * special.erfc(math.sqrt(10 ** (ebno_db / 10)))  # Q(sqrt(2 Eb/N0))
    assert row["ber_low"] <= expected <= row["ber_high"], (row["ber"], expected)
    assert row["frames"] == 3000 and row["stop"] == "frames" and row["bits"] == 3000 * 64


def test_bsc_ber_is_eps_and_bler_is_one_minus_power():
    code = build_code("rep(32,32)")
    row = simulate_point(code, "bsc", {"eps": 0.05}, target_block_errors=10**9, max_frames=4000, seed=2)
    assert row["ber_low"] <= 0.05 <= row["ber_high"]
    assert row["bler_low"] <= 1 - 0.95 ** 32 <= row["bler_high"]
    assert row["undetected_errors"] == row["block_errors"]  # no CRC: every error goes unnoticed


def test_error_stop_rule_and_counts():
    code = build_code("ldpc(128,64,max_iters=20)")
    row = simulate_point(code, "awgn", {"ebno_db": 1.5}, target_block_errors=40, max_frames=100_000, seed=0,
                         param="ebno_db", value=1.5)
    assert row["stop"] == "errors" and 40 <= row["block_errors"] <= 80
    assert row["block_errors"] <= row["frames"] < 100_000
    assert row["detected_failures"] + row["undetected_errors"] >= row["block_errors"]
    assert 1 <= row["iterations"] <= 20  # BP iterations per frame are reported
    assert row["fixed_params"] == "rate=0.5" and row["esno_db"] == pytest.approx(1.5 + 10 * math.log10(0.5))
    assert row["codewords_per_s"] > 0 and row["info_bits_per_s"] == pytest.approx(64 * row["codewords_per_s"])


def test_same_seed_same_counts_whatever_else_runs():
    code = build_code("rep(96,32)")
    alone = simulate_point(code, "bsc", {"eps": 0.2}, target_block_errors=30, max_frames=5000, seed=7)
    curve = simulate_curve(code, "bsc", "eps", [0.3, 0.2], target_block_errors=30, max_frames=5000, seed=7)
    again = [r for r in curve if r["value"] == 0.2][0]
    assert (alone["frames"], alone["bit_errors"], alone["block_errors"]) == \
           (again["frames"], again["bit_errors"], again["block_errors"])
    other = simulate_point(code, "bsc", {"eps": 0.2}, target_block_errors=30, max_frames=5000, seed=8)
    assert (other["frames"], other["bit_errors"]) != (alone["frames"], alone["bit_errors"])


def test_curve_runs_worst_first_and_stops_after_an_error_free_point():
    code = build_code("rep(160,32)")
    ran = simulate_curve(code, "bsc", "eps", [0.001, 0.4, 0.2, 0.01, 0.3], target_block_errors=20, max_frames=300)
    values = [r["value"] for r in ran]
    assert values == sorted(values, reverse=True)[: len(values)] and values[0] == 0.4
    assert ran[-1]["block_errors"] == 0 and all(r["block_errors"] > 0 for r in ran[:-1])
    assert len(ran) < 5  # the cleaner points were skipped
    everything = simulate_curve(code, "bsc", "eps", [0.001, 0.4, 0.2, 0.01, 0.3], target_block_errors=20, max_frames=300,
                                stop_after_clean=False)
    assert len(everything) == 5


def test_normal_approximation_matches_the_published_short_block_anchor():
    # rate 1/2, n = 128, BI-AWGN, BLER 1e-3: 2.48 dB (e.g. Coskun et al., "Efficient error-correcting codes
    # in the short blocklength regime", Phys. Commun. 2019, Fig. 1)
    assert normal_approximation_ebno_db(128, 64, 1e-3) == pytest.approx(2.48, abs=0.01)
    assert normal_approximation_bler(128, 64, "awgn", ebno_db=2.476, rate=0.5) == pytest.approx(1e-3, rel=0.01)
    # the BSC form agrees with the payload form used by the ideal-fbl codes
    k = normal_approximation_bits(200, 0.05, 1e-3)
    assert normal_approximation_bler(200, k, "bsc", eps=0.05) <= 1e-3 < normal_approximation_bler(200, k + 1, "bsc", eps=0.05)


def test_code_specs():
    assert parse_code_spec("ldpc(128, 64, max_iters=20)") == ("ldpc", 128, 64, {"max_iters": 20})
    assert build_code("conv(140,64)").n == 140 and build_code("ldpc(256,128)").k == 128
    with pytest.raises(ValueError, match="malformed"):
        parse_code_spec("ldpc(128)")
    osd = build_code("polar(64,32,crc_bits=6,osd=1)")  # any family, decoded by OSD
    assert osd.name.endswith("+osd1") and (osd.k, osd.n) == (32, 64)
    with pytest.raises(ValueError, match="osd must be an order"):
        build_code("rep(64,32,osd=-1)")


def test_resume_keeps_finished_rows_repairs_a_torn_line_and_refuses_other_settings(tmp_path):
    out = tmp_path / "ber.csv"
    spec = dict(codes=["rep(96,32)"], channel="bsc", param="eps", values=[0.3, 0.2, 0.1], target_block_errors=20,
                max_frames=400, early_stop=False)
    run_ber(BerSpec(**spec), out, progress=False)
    full = rows_of(out)
    assert len(full) == 3
    data = out.read_bytes()
    out.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 10])  # the last row cut mid-line
    run_ber(BerSpec(**spec), out, resume=True, progress=False)
    again = rows_of(out)
    assert len(again) == 3 and [r["value"] for r in again] == [r["value"] for r in full]
    assert again[-1]["bit_errors"] == full[-1]["bit_errors"]  # recomputed, same streams
    with pytest.raises(ValueError, match="max_frames"):
        run_ber(BerSpec(**{**spec, "max_frames": 500}), out, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        run_ber(BerSpec(**spec), out, progress=False)


def test_cli_writes_csv_and_figure_and_plot_redraws_it(tmp_path):
    out = tmp_path / "ber"
    result = CliRunner().invoke(cli, ["ber", "--code", "ldpc(128,64,max_iters=10)", "--code", "rep(128,64)",
                                      "--ebno-db", "1,3", "--errors", "20", "--max-frames", "2000", "--out", str(out),
                                      "--device", "cpu", "--no-plot"])
    assert result.exit_code == 0, result.output
    rows = rows_of(out / "ber.csv")
    assert {r["code"] for r in rows} == {"ldpc(128,64,max_iters=10)", "rep(128,64)"} and len(rows) == 4
    assert sorted(p.name for p in out.iterdir()) == ["ber.csv"]  # --no-plot
    written = plot_results(out / "ber.csv")  # what `commsim plot` and `commsim ber` without --no-plot draw
    assert sorted(p.name for p in written["files"]) == ["ber_normal_approximation.csv", "bler_vs_ebno_db.pdf",
                                                        "bler_vs_ebno_db.png"]
    assert (out / "bler_vs_ebno_db.png").stat().st_size > 0
    table = rows_of(out / "ber_normal_approximation.csv")
    assert {(r["n"], r["k"]) for r in table} == {("128", "64")}
    assert np.isclose(float(table[0]["bler"]), normal_approximation_bler(128, 64, "awgn", ebno_db=1.0, rate=0.5))
