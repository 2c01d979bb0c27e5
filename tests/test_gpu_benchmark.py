"""benchmarks.gpu runs (CPU rows always; CUDA rows only where CUDA exists) and claims no CUDA number without CUDA."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_quick(tmp_path):
    out = tmp_path / "gpu_quick"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert set(frame["section"]) == {"parity", "training", "ensembles", "decoding"}
    ensembles = frame[frame["section"] == "ensembles"]
    assert sorted(set(ensembles["members"])) == [1, 2] and (ensembles["images_per_s"] > 0).all()
    assert set(frame["device"]) == ({"cpu", "cuda"} if torch.cuda.is_available() else {"cpu"})
    parity = frame[frame["section"] == "parity"]
    assert (parity["max_abs_diff_vs_cpu"] < 1e-4).all()
    assert (frame.loc[frame["section"] == "decoding", "info_bits_per_second"] > 0).all()
    if not torch.cuda.is_available():
        assert "not available" in out.with_suffix(".md").read_text()
