"""The benchmark scripts' quick modes run and write what they promise."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_table1_quick(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "table1.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "table1_quick.csv")
    assert sorted(frame["codec"]) == ["abf", "iabf", "necst"]
    assert (frame["test"] > 0).all() and (frame["test_count"] == 1000).all()
    text = (tmp_path / "table1_quick.md").read_text()
    assert "| necst | 0.2 |" in text and "22.556" in text  # our number beside the paper's
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "table1.py"), "--quick", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "trainings to run" not in again.stdout  # resumed: nothing left to train


@pytest.mark.slow
def test_lr_range_quick(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lr_range.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "lr_range_quick.csv")
    assert list(frame["estimator"]) == ["st"] and (frame["suggested_peak"] > 0).all()
    assert frame["suggested_peak"].iloc[0] == pytest.approx(frame["lr_min_loss"].iloc[0] / 10)


@pytest.mark.slow
def test_soft_decoder_quick(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soft_decoder.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "soft_decoder_quick.csv")
    assert list(frame["decoder_input"]) == ["hard", "soft"] and (frame["test_count"] == 1000).all()
    assert frame["soft_minus_hard"].notna().all() and "Reading: at -2 dB" in (tmp_path / "soft_decoder_quick.md").read_text()
