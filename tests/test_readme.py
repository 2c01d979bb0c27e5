"""The README's Python sweep example runs (with smaller numbers) and plots both channels."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_setup_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert "commsim run --codec iabf --channel bsc --eps 0.2" in block[0]
    assert "pytest" in block[1] and "torch==2.13.0" in block[0] and "torch==2.13.0" in block[1]


def test_readme_sweep_example_runs(tmp_path, necst8_cache):
    """The example in a process of its own (it registers a channel); its codes come from the cache
    (a sweep that trains its codes: test_training.py::test_sweep_trains_with_the_asked_estimator...)."""
    text = README.read_text()
    code = re.search(r"<!-- sweep-example -->\n```python\n(.*?)```", text, re.S).group(1)
    small = code.replace("bits=100", "bits=8").replace("epochs=30", "epochs=1").replace("seeds=2", "seeds=1, limit=100")
    assert small != code
    script = tmp_path / "example.py"
    script.write_text(small)
    necst8_cache(tmp_path / "home", 0.1, 0.2, 0.3)
    env = {**os.environ, "COMMSIM_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "results" / "custom.csv")
    assert sorted(frame["channel"].unique()) == ["bsc", "bsc_pairs"] and len(frame) == 6
    curves = pd.read_csv(tmp_path / "results" / "figures" / "curves.csv")
    assert sorted(curves["curve"].unique()) == ["necst / bsc", "necst / bsc_pairs"]
    assert (tmp_path / "results" / "figures" / "distortion_vs_eps.png").stat().st_size > 0


def test_readme_lambda_llr_example_erases_and_flips():
    code = re.search(r"<!-- lambda-llr-example -->\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    import torch

    bits = (torch.rand(400, 50, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    llr = namespace["erasures"](bits, torch.Generator().manual_seed(2), eps=0.2)
    assert (llr[:, 0::2] == 0).all()  # erased
    kept = llr[:, 1::2]
    flipped = ((kept > 0).float() != bits[:, 1::2]).float().mean()
    assert (kept != 0).all() and 0.17 < float(flipped) < 0.23
