"""Training on the first N images of a split (``load_dataset(..., train_size=N)``), the runs that name it, and
the data-size ablation (``benchmarks/data_size.py``): its report from made-up records, its bad arguments, its
quick form."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_benchmarks import fake_record, script, write
from test_data import write_idx

from benchmarks import data_size, runlib
from commsim.core.protocol import Budget
from commsim.data import load_dataset


def test_a_train_size_cuts_the_training_split_to_nested_first_images():
    full = load_dataset("mnist")
    small, larger = load_dataset("mnist", train_size=1000), full.with_train_size(2000)
    assert [small.size(s) for s in ("train", "val", "test")] == [1000, 1000, 1000]
    assert np.array_equal(small.splits["train"], larger.splits["train"][:1000])  # nested: 1k within 2k
    for split in ("val", "test"):
        assert np.array_equal(small.splits[split], full.splits[split])
    assert sum(len(x) for x, _ in small.batches("train", 300, shuffle=True)) == 1000  # training sees the 1,000 alone
    # cache identity: the embedded full split has none (fixed by the package); each cut has its own
    assert full.identity is None and small.identity and larger.identity and small.identity != larger.identity
    assert small.info["train_size"] == 1000 and full.with_train_size(8000) is full  # the whole split: the same source
    binary = load_dataset("binary_mnist", train_size=1000)
    assert binary.binarize == "static" and binary.identity not in (None, small.identity)
    for bad in (0, 8001, 1.5, True, "1000"):
        with pytest.raises(ValueError, match="train_size must be a whole number from 1 to the 8,000"):
            full.with_train_size(bad)


def test_a_run_names_its_train_size_only_when_set():
    assert runlib.spec("necst", 0.1, 0)["name"] == "mnist-necst-eps0.1-s0-onecycle250-st-e75"  # unchanged
    assert runlib.spec("necst", 0.1, 0, train_size=1000)["name"] == "mnist-necst-eps0.1-s0-onecycle250-st-e75-n1000"
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="train_size must be"):
            runlib.spec("necst", 0.1, 0, train_size=bad)


def test_the_grid_gives_table1_names_at_the_whole_split_and_the_images_budget():
    data = data_size.data_set("mnist", None, data_size.SIZES)
    names = [s["name"] for s in data_size.grid(data, [0.1], 1, 0.01, Budget(), {"precision": "bf16"})]
    assert "mnist-necst-eps0.1-s0-onecycle250-st-e75-bf16" in names  # Table 1's record at 8,000 digits
    assert "mnist-iabf-eps0.1-s0-onecycle250-st-e75-lam0.01-bf16" in names
    assert "mnist-necst-eps0.1-s0-onecycle250-st-e600-bf16-n1000" in names  # 600k images seen = 600 epochs of 1,000
    assert "mnist-iabf-eps0.1-s0-onecycle250-st-e150-lam0.01-bf16-n4000" in names


def test_fashion_part_from_idx_files_or_a_skip_note(tmp_path):
    part, note = data_size.fashion_set(None, [1000])
    assert part is None and note.startswith("skipped: option not given")
    part, note = data_size.fashion_set(str(tmp_path / "none"), [1000])
    assert part is None and note.startswith(f"skipped: no files at {tmp_path / 'none'}")
    write_idx(tmp_path, n_train=12)  # 10 training images after the validation sixth
    part, note = data_size.fashion_set(str(tmp_path), [4, 1000])
    assert part["sizes"] == [(4, 4), (10, None)] and part["data_path"] == str(tmp_path) and "10 training" in note


def quick_records(out, reused):
    """Made-up records of the quick grid (fp32): IABF 1 l2 better at 100 images, 1 worse at 200; the 200-image
    runs in ``reused`` (another benchmark's folder)."""
    rng = np.random.default_rng(3)
    base = rng.normal(60, 2, size=50)
    data = data_size.data_set("mnist", None, [100, 200])
    for s in data_size.grid(data, [0.2], 1, 0.01, Budget(images=400), {"precision": "fp32"}):
        gap = (-1.0 if s["train_size"] == 100 else 1.0) if s["codec"] == "iabf" else 0.0
        record = fake_record(s, 60 + gap, per_image=base + gap) | {"train_images": s["train_size"]}
        write(reused if s["train_size"] == 200 else out / "data_size_runs_quick", record)


def test_data_size_report_from_records(tmp_path, capsys):
    quick_records(tmp_path, tmp_path / "other")
    assert data_size.main(["--quick", "--precision", "fp32", "--out", str(tmp_path), "--reuse", str(tmp_path / "other"),
                           "--fashion", str(tmp_path / "nowhere")]) == 0
    assert "trainings to run" not in capsys.readouterr().out  # every record found: nothing trained
    text = (tmp_path / "data_size_quick.md").read_text()
    assert "| 100 | 4 | 0.2 | 60.00 ± – | 59.00 ± – | -1.00 [-1.00, -1.00] |" in text and "IABF better |" in text
    assert "| 200 | 2 | 0.2 | 60.00 ± – | 61.00 ± – | +1.00" in text and "IABF worse |" in text
    assert "eps 0.2: IABF pays at N = 100 (" in text and "2 records taken from" in text
    assert f"Fashion-MNIST: skipped: no files at {tmp_path / 'nowhere'}" in text
    assert "- Schedules (mean over the runs): N 100: 0 of 2 stopped on the plateau, 100% of the budget run, " \
           "best epoch's learning rate 0.33 x the peak; N 200:" in text  # made-up lr 1e-3 of a 3e-3 peak
    cells = pd.read_csv(tmp_path / "data_size_quick.csv")
    assert cells["train_images"].tolist() == [100, 200] and cells["diff"].round(6).tolist() == [-1.0, 1.0]
    assert (tmp_path / "data_size_quick.png").stat().st_size > 0


@pytest.mark.parametrize("args", [["--sizes", "0"], ["--sizes", "9000"], ["--eps", "0.7"], ["--images", "lots"],
                                  ["--deadline", "noon"]])
def test_data_size_bad_arguments_exit_2_before_any_work(tmp_path, capsys, args):
    out = tmp_path / "out"
    assert data_size.main([*args, "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("Error: ") and not out.exists()


@pytest.mark.slow
def test_data_size_quick(tmp_path):
    done = script("data_size.py", "--quick", "--ensembles", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted(p.name for p in (tmp_path / "data_size_runs_quick").glob("*.json"))
    assert len(runs) == 4 and all(n.endswith(("-n100.json", "-n200.json")) for n in runs)
    record = json.loads(next((tmp_path / "data_size_runs_quick").glob("*necst*-n100.json")).read_text())
    assert record["train_images"] == 100 and record["epochs"] == 4 and len(record["per_image"]) == 1000
    cells = pd.read_csv(tmp_path / "data_size_quick.csv")
    assert cells["train_images"].tolist() == [100, 200] and cells["paired_seeds"].tolist() == [1, 1]
    assert "Fashion-MNIST: skipped: option not given" in (tmp_path / "data_size_quick.md").read_text()
