"""The benchmark scripts' quick modes run and write what they promise; their reports say what the records hold;
the scripts follow one convention (benchmarks/README.md)."""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_data import write_chardata, write_cifar

from benchmarks import batch_recipe, convergence, ensemble, figure2, learned_vs_separated, runlib, scaling, table1

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HELPERS = {"__init__.py", "runlib.py"}
"""Modules of benchmarks/ that are shared helpers, not benchmarks."""


def script(name, *args, timeout=300):
    """Run ``python -m benchmarks.NAME ARGS`` (``name``: ``table1.py``) from the repository root."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{Path(name).stem}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def fake_record(s: dict, test: float, seconds: float = 60.0, per_image=None) -> dict:
    """A record as ``runlib.train_record`` writes it, with made-up numbers (no training)."""
    n = s["epochs"]
    history = [{"epoch": i, "train_loss": 1.0, "val_l2_per_image": test + 10 / i, "lr": 1e-3, "train_seconds": seconds / n,
                "val_seconds": 0.0, "cpu_seconds": seconds / n, "test_l2_per_image": test + 10 / i} for i in range(1, n + 1)]
    evals = {f"{e:g}": {"val": test + 100 * abs(e - s["eps"]), "test_draws": [test] * 3, "test": test + 100 * abs(e - s["eps"]),
                        "test_single_low": test - 1, "test_single_high": test + 1} for e in {*runlib.EVAL_EPS, s["eps"]}}
    per_image = per_image if per_image is not None else [test] * 50
    return {**s, "metric": "l2_per_image", "val": test, "best_epoch": n, "epochs_run": n, "stop": "budget", "lr": 3e-3,
            "patience": 20, "test": test, "test_single": test + 0.01, "test_draws": [test] * 3, "train_seconds": seconds,
            "train_cpu_seconds": seconds, "started_utc": "12:00:00", "load_before": 1.0, "load_after": 1.0,
            "evals": evals, "history": history, "per_image": list(per_image)}


def write(runs: Path, record: dict) -> None:
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{record['name']}.json").write_text(json.dumps(record))


def test_run_names_spell_out_every_non_default_field():
    base = runlib.spec("iabf", 0.1, 0, lam=0.01)
    assert base["name"] == "mnist-iabf-eps0.1-s0-onecycle250-st-e75-lam0.01"
    assert runlib.spec("iabf", 0.1, 0, lam=0.01, recipe="onecycle", epochs=100)["name"] == \
        "mnist-iabf-eps0.1-s0-onecycle-st-e100-lam0.01"  # the earlier default: Table 1's records keep their names
    variants = [runlib.spec("iabf", 0.1, 0, lam=0.01, infomax_on="noisy"), runlib.spec("iabf", 0.1, 0, lam=0.01, threads=2),
                runlib.spec("iabf", 0.1, 0, lam=0.01, estimator="vimco", vimco="official"),
                runlib.spec("iabf", 0.1, 0, lam=0.01, estimator="vimco"), runlib.spec("iabf", 0.1, 1, lam=0.01)]
    names = {v["name"] for v in variants}
    assert len(names) == len(variants) and base["name"] not in names
    assert runlib.spec("iabf", 0.1, 0, lam=0.01)["name"] == base["name"]
    with pytest.raises(ValueError, match="unknown run fields"):
        runlib.spec("necst", 0.1, 0, colour="red")



def test_batch_size_and_lr_name_a_run_only_off_their_defaults():
    base = runlib.spec("necst", 0.1, 0, recipe="onecycle", epochs=100)
    assert runlib.spec("necst", 0.1, 0, recipe="onecycle", epochs=100, batch_size=100, lr=3e-3)["name"] == base["name"] == \
        "mnist-necst-eps0.1-s0-onecycle-st-e100"
    assert runlib.spec("necst", 0.1, 0, batch_size=250, lr=1e-2)["name"] == runlib.spec("necst", 0.1, 0)["name"]  # onecycle250's own
    assert runlib.spec("necst", 0.1, 0, recipe="onecycle", epochs=100, batch_size=500, lr=1e-2)["name"] == base["name"] + "-b500-lr0.01"
    assert runlib.spec("necst", 0.1, 0, recipe="paper", lr=3e-3)["name"].endswith("-lr0.003")  # paper's default is 1e-3
    for bad in ({"batch_size": 0}, {"lr": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            runlib.spec("necst", 0.1, 0, **bad)


def test_batch_recipe_report_from_records(tmp_path):
    """The quick grid's records made up: batch 500 at lr 1e-2 meets the target at half the anchor's seconds, so it
    goes to NECST eps 0.3 and seeds 1; nothing trains (every record is there)."""
    runs = tmp_path / "runs"
    scores = {(100, 3e-3): (50.0, 10.0), (100, 1e-2): (55.0, 10.0), (500, 3e-3): (53.0, 5.0), (500, 1e-2): (50.5, 5.0)}
    for eps, seed, cells in [(0.1, 0, scores), (0.3, 0, {k: scores[k] for k in [(100, 3e-3), (500, 1e-2)]}),
                             (0.1, 1, {k: scores[k] for k in [(100, 3e-3), (500, 1e-2)]})]:
        for (batch, lr), (test, seconds) in cells.items():
            record = fake_record(runlib.spec("necst", eps, seed, recipe=batch_recipe.BASE_RECIPE, batch_size=batch, lr=lr, epochs=1), test, seconds)
            record = {**record, "lr": lr, "batch_size": batch, "train_images": 8000}
            if seed == 1 and batch == 100:  # a record from before batch_size was a run field (Table 1's)
                record = {k: v for k, v in record.items() if k not in ("batch_size", "train_images")}
            write(runs, record)
    assert batch_recipe.main(["--quick", "--out", str(tmp_path), "--runs", str(runs)]) == 0
    text = (tmp_path / "batch_recipe_quick.md").read_text()
    assert "| necst | 0.1 | 0 | 500 | 0.01 | 1 / 1 | 1 | 50.50 | +1.0 % | yes | 5 |" in text, text
    assert "| necst | 0.1 | 0 | 500 | 0.003 | 1 / 1 | 1 | 53.00 | +6.0 % | no |" in text
    assert "| necst | 0.1 | 0 | 50.00 -> 51.00 | 10 s / 1 s | 2 / 4 | 500, 0.01, 1 ep: 50.50 in 5 s (x2.00) |" in text
    assert "Pick (the rule in the docstring): **batch 500, peak lr 0.01, 1 epochs**" in text
    assert "- necst eps 0.3 seed 0: test 50.50 vs 50.00 (+1.0 %, meets the target)" in text
    assert "Over seeds 0, 1 (NECST eps 0.1): test 50.50 ± 0.00 vs 50.00 ± 0.00 (+1.0 %), 2 of 2 seeds within 2 %" in text
    frame = pd.read_csv(tmp_path / "batch_recipe_quick.csv")
    assert len(frame) == 8 and frame["est_bf16_s"].iloc[0] == pytest.approx(8000 / 11.1e3)
    assert batch_recipe.rate(1000, "bf16") == 20.3e3 and 11.1e3 < batch_recipe.rate(300, "bf16") < 20.3e3
    assert batch_recipe.main(["--transfer-to", "iabf"]) == 2
    assert batch_recipe.main(["--cells", "500:0.01"]) == 2 and batch_recipe.main(["--cells", "0:0.01:100"]) == 2


def test_records_are_written_whole_and_a_cut_write_is_not_read(tmp_path):
    record = fake_record(runlib.spec("necst", 0.1, 0, recipe=batch_recipe.BASE_RECIPE, epochs=1), 20.0)
    runlib.save_record(record, tmp_path)
    (tmp_path / f".{record['name']}-k2j3.json").write_text('{"name": "cut sh')  # a write killed midway
    assert list(runlib.load_done(tmp_path)) == [record["name"]]
    assert json.loads((tmp_path / f"{record['name']}.json").read_text()) == record


def test_paired_comparison_over_images_and_seeds():
    rng = np.random.default_rng(0)
    base = rng.normal(20, 3, size=200)
    a = [{"seed": s, "test": 19.0 + s, "per_image": list(base - 1 + rng.normal(0, 0.1, 200))} for s in range(3)]
    b = [{"seed": s, "test": 20.0 + s + 0.01 * s, "per_image": list(base)} for s in range(3)]
    p = table1.paired(a, b)
    assert p["seeds"] == 3 and p["images"] == 200
    assert p["diff"] == pytest.approx(-1.0, abs=0.05) and p["low"] < p["diff"] < p["high"] < 0
    assert p["wilcoxon_p"] < 1e-6 and p["better"] > 190
    assert table1.paired(a[:1], b[1:]) == {}  # no common seed: nothing to pair


def test_table1_report_from_records(tmp_path):
    runs = tmp_path / "table1_runs_quick"
    rng = np.random.default_rng(1)
    base = rng.normal(50, 2, size=50)
    train = {"epochs": 1, "recipe": "onecycle", "estimator": "st"}
    write(runs, fake_record(runlib.spec("necst", 0.2, 0, **train), 50.0, per_image=base))
    write(runs, fake_record(runlib.spec("abf", 0.2, 0, **train), 51.0, per_image=base + 1))
    write(runs, fake_record(runlib.spec("iabf", 0.2, 0, lam=0.01, **train), 49.0, per_image=base - 1))
    assert table1.main(["--quick", "--out", str(tmp_path), "--recipe", "onecycle", "--precision", "fp32"]) == 0
    text = (tmp_path / "table1_quick.md").read_text()
    assert "| 0.2 | necst | 50.00 ± – | 50.01 | 1 |" in text and "22.556" in text  # ours beside the paper's
    assert "| 0.2 | iabf - necst | 1 | -1.00 |" in text and "| 0.2 | abf - necst | 1 | +1.00 |" in text
    assert "- MNIST, iabf against necst: eps 0.2: better by 1.00" in text and "- MNIST, abf against necst: eps 0.2: worse by 1.00" in text
    assert "## Omniglot, 200 bits: no data here" in text and "## CIFAR-10, 500 bits: no data here" in text
    frame = pd.read_csv(tmp_path / "table1_quick.csv")
    assert sorted(frame["codec"]) == ["abf", "iabf", "necst"] and set(frame["role"]) == {"main"}



@pytest.mark.parametrize("dataset, write, bits", [("omniglot", lambda d: write_chardata(d, 30, 8), 200),
                                                  pytest.param("cifar10", lambda d: write_cifar(d, per_batch=6), 500,
                                                               marks=pytest.mark.slow)])  # the conv net: ~6 s of CPU
def test_table1_rows_from_files_run_end_to_end(tmp_path, dataset, write, bits, one_torch_thread):
    """The Omniglot and CIFAR-10 rows run from a user's files (here tiny made-up ones): the paper's bits, the
    data set's metric, the CIFAR conv net; without --data-path they are an error before any training."""
    data = tmp_path / "data"
    data.mkdir()
    write(data)
    args = ["--quick", "--dataset", dataset, "--out", str(tmp_path), "--jobs", "1", "--precision", "fp32"]
    assert table1.main(args) == 2 and not (tmp_path / "table1_runs_quick").exists()  # no --data-path: nothing trained
    assert table1.main([*args, "--data-path", str(data)]) == 0
    frame = pd.read_csv(tmp_path / "table1_quick.csv")
    assert sorted(frame["codec"]) == ["abf", "iabf", "necst"] and set(frame["dataset"]) == {dataset}
    assert set(frame["bits"]) == {bits} and frame["test"].notna().all()
    text = (tmp_path / "table1_quick.md").read_text()
    label = table1.DATASETS[dataset]["label"]
    assert f"## {label}, {bits} bits: test `{frame['metric'][0]}`" in text and "## MNIST" not in text


def test_figure2_report_from_records(tmp_path):
    """Best vs last epoch and the swing come from the per-epoch curves; nothing trains when the records are there."""
    runs = tmp_path / "figure2_quick_runs"
    for s in (s for group in figure2.plan(argparse.Namespace(eps=[0.2], seeds=1, lam=0.01, paper_epochs=2, our_epochs=2,
                                                              precision="fp32")).values() for s in group):
        record = fake_record(s, 20.0 if s["codec"] == "necst" else 21.0)
        if s["recipe"] == "paper" and s["codec"] == "necst":  # overfits: its best epoch is the first
            for h, v in zip(record["history"], (18.0, 19.5)):
                h["val_l2_per_image"] = h["test_l2_per_image"] = v
        write(runs, record)
    assert figure2.main(["--quick", "--out", str(tmp_path), "--precision", "fp32", "--jobs", "1"]) == 0
    summary = pd.read_csv(tmp_path / "figure2_quick_runs.csv").set_index(["recipe", "codec"])
    assert summary.loc[("paper", "necst"), "best_epoch"] == 1 and summary.loc[("paper", "necst"), "val_overfit"] == pytest.approx(1.5)
    assert summary.loc[("paper", "iabf"), "best_epoch"] == 2 and summary.loc[("paper", "iabf"), "val_overfit"] == 0
    text = (tmp_path / "figure2_quick.md").read_text()
    assert "| paper | necst | 0.2 | 1 | 2 | 1 | 18.00 | 19.50 | 1.50 | 18.00 | 19.50 |" in text
    assert "- paper recipe, necst: best epoch at 1 of 2" in text and (tmp_path / "figure2_quick.png").stat().st_size > 0


@pytest.mark.slow
def test_figure2_quick_trains_both_recipes(tmp_path):
    assert figure2.main(["--quick", "--out", str(tmp_path), "--precision", "fp32", "--jobs", "1"]) == 0
    curves = pd.read_csv(tmp_path / "figure2_quick.csv")
    assert set(curves["recipe"]) == {"paper", "ours"} and curves["test_single"].notna().all()


def test_learned_vs_separated_report_from_records(tmp_path):
    """The verdict comes from the NECST records and the separated sweep; nothing trains or runs when all
    rows are there (the separated sweep resumes a CSV that holds every point)."""
    eps = learned_vs_separated.EPS
    sweep = pd.DataFrame([{"codec": "necst", "value": e, "l2_per_image": 40.0} for e in eps])
    sweep.to_csv(tmp_path / "sweep.csv", index=False)
    separated = tmp_path / "separated" / "b100"
    separated.mkdir(parents=True)
    scores = {"pca+ldpc": (30.0, "ldpc(100,27)"), "vq+ldpc": (29.0, "ldpc(100,27)"), "pca+best": (28.0, "rep3(99,33)"),
              "vq+best": (31.0, "ldpc(100,27)")}
    rows = [{"codec": c, "channel": "bsc", "param": "eps", "value": e, "train_eps": "", "bits": 100, "dataset": "mnist",
             "seed": seed, "metric": "l2_per_image", "l2_per_image": v + seed, "channel_code": code}
            for c, (v, code) in scores.items() for e in eps for seed in (0, 1)]
    pd.DataFrame(rows).to_csv(separated / "results.csv", index=False)
    runs = tmp_path / "runs"
    for e in eps:
        write(runs, fake_record(runlib.spec("necst", e, 0), 35.0 if e == 0.35 else 20.0))
    args = ["--runs", str(runs), "--sweep", str(tmp_path / "sweep.csv"), "--out", str(tmp_path), "--families", "ldpc,best",
            "--separated-out", str(tmp_path / "separated"), "--jobs", "1", "--reuse"]
    assert learned_vs_separated.main(args) == 0
    text = (tmp_path / "learned_vs_separated.md").read_text()
    assert "| 0.35 | 35.00 (1) | 29.50 (vq) | 28.50 (pca) | 28.50 (pca+best: rep3(99,33)) | 40.00 | no |" in text, text
    assert "| 0.1 | 20.00 (1) | 29.50 (vq) | 28.50 (pca) | 28.50 (pca+best: rep3(99,33)) | 40.00 | yes |" in text
    assert "below the strongest separated scheme at eps 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4 of 8 measured" in text
    assert text.splitlines()[2].startswith("Made by `python -m benchmarks.learned_vs_separated --runs ")
    assert "at commit" in text.splitlines()[2]
    assert learned_vs_separated.main([*args, "--seeds", "0"]) == 2


def test_convergence_report_from_records(tmp_path):
    runs = tmp_path / "runs"
    args = argparse.Namespace(eps=[0.1], seeds=1, epochs=2, vimco_epochs=1, old_epochs=1,
                                                            reference_epochs=3)
    scores = {("onecycle", "st", 2, 1): (16.0, 100.0), ("onecycle", "gumbel", 2, 1): (17.0, 100.0),
              ("onecycle", "vimco", 1, 1): (18.0, 100.0), ("paper", "vimco", 1, 1): (19.0, 100.0),
              ("onecycle", "st", 2, 2): (16.0, 80.0), ("onecycle", "st", 3, 1): (15.5, 300.0)}
    for group in convergence.plan(args):
        for s in group:
            test, seconds = scores[(s["recipe"], s["estimator"], s["epochs"], s["threads"])]
            write(runs, fake_record(s, test, seconds))
    assert convergence.main(["--quick", "--out", str(tmp_path), "--runs", str(runs)]) == 0
    text = (tmp_path / "convergence_quick.md").read_text()
    assert "onecycle+st, 1 seeds: test (3 draws) 16.00 (single draw 16.01) in 100 CPU s" in text
    assert "target (<= 16.45 in <= 120 CPU s) met (met by 1 of 1 seeds)" in text
    assert "onecycle+gumbel, 1 seeds" in text and "NOT met (met by 0 of 1 seeds)" in text
    assert "gap +3.2 % -> within 5 %" in text
    curves = pd.read_csv(tmp_path / "convergence_quick.csv")
    assert set(curves["series"]) == {"onecycle+st", "onecycle+gumbel", "onecycle+vimco", "paper+vimco",
                                     "onecycle+st, 2 threads", "onecycle+st, reference"}
    assert curves.groupby("series")["cpu_seconds"].max()["onecycle+st, reference"] == pytest.approx(300.0)
    assert (tmp_path / "convergence_quick.png").stat().st_size > 10_000


@pytest.mark.parametrize("name, args", [("table1.py", ["--epochs", "0"]), ("table1.py", ["--estimator", "nope"]),
                                        ("convergence.py", ["--eps", "0.7"]), ("convergence.py", ["--deadline", "noon"]),
                                        ("table1.py", ["--executor", "ray", "--ray-address", "127.0.0.1:1"])])
def test_bad_arguments_exit_2_before_any_work(tmp_path, capsys, name, args):
    """convergence.py runs as a process (its exit status checked too); table1.py's main runs in this
    process, as table1.py imports torch (1 to 2 s) before it checks its arguments."""
    out = tmp_path / "out"
    if name == "table1.py":
        returncode, stderr = table1.main([*args, "--out", str(out)]), capsys.readouterr().err
    else:
        done = script(name, *args, "--out", str(out))
        returncode, stderr = done.returncode, done.stderr
    assert returncode == 2 and stderr.startswith("Error: "), stderr
    assert not out.exists()


@pytest.mark.slow
def test_table1_quick(tmp_path):
    done = script("table1.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "table1_quick.csv")
    assert sorted(frame["codec"]) == ["abf", "iabf", "necst"]
    assert (frame["test"] > 0).all() and (frame["epochs_run"] == 1).all()
    record = json.loads((tmp_path / "table1_runs_quick" / "mnist-necst-eps0.2-s0-onecycle-st-e1.json").read_text())
    assert len(record["per_image"]) == 1000 and len(record["history"]) == 1 and record["test"] > 0
    assert record["test"] == pytest.approx(np.mean(record["test_draws"])) and record["test_single"] == record["test_draws"][0]
    assert np.mean(record["per_image"]) == pytest.approx(record["test"], abs=1e-3)
    assert set(record["evals"]) == {"0.1", "0.2", "0.3", "0.4"}
    text = (tmp_path / "table1_quick.md").read_text()
    assert "| 0.2 | necst |" in text and "22.556" in text and "| 0.2 | iabf - necst | 1 |" in text
    again = script("table1.py", "--quick", "--out", str(tmp_path))
    assert again.returncode == 0 and "trainings to run" not in again.stdout  # resumed: nothing left to train


@pytest.mark.slow
def test_table1_quick_on_ray_gives_the_local_records(tmp_path):
    pytest.importorskip("ray")
    done = script("table1.py", "--quick", "--executor", "ray", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "table1_quick.md").read_text()
    assert "| 0.2 | necst |" in text and "22.556" in text  # the number test_table1_quick gets locally
    assert len(list((tmp_path / "table1_runs_quick").glob("*.json"))) == 3  # written by the driver


def test_scaling_schedule_respects_slots_and_dependencies():
    tasks = [{"id": "train", "seconds": 10.0, "after": None}, {"id": "other", "seconds": 4.0, "after": None}]
    tasks += [{"id": f"p{i}", "seconds": 1.0, "after": "train"} for i in range(4)]
    assert scaling.schedule(tasks, 1, 0.0) == pytest.approx(18.0)
    assert scaling.schedule(tasks, 2, 0.0) == pytest.approx(12.0)  # 4 s task beside training, then 4 points on 2 slots
    assert scaling.schedule(tasks, 8, 0.5) == pytest.approx(10.5 + 1.5)  # points wait for their training
    assert scaling.schedule([], 4, 0.1) == 0.0


@pytest.mark.slow
def test_scaling_quick(tmp_path):
    pytest.importorskip("ray")
    done = script("scaling.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]  # 1: some executor's rows differed
    frame = pd.read_csv(tmp_path / "scaling_quick.csv")
    assert list(frame["executor"]) == ["local --jobs 1", "local --jobs 2", "ray, 1 CPU", "ray, 2 CPUs"]
    assert (frame["points"] == 6).all() and (frame["trainings"] == 2).all() and frame["ratio_to_local_jobs1"].iloc[0] == 1
    text = (tmp_path / "scaling_quick.md").read_text()
    assert "no-op task round trip" in text and "| 8 nodes x 1 GPU, 1 GPU per task |" in text


@pytest.mark.slow  # 3 s
def test_ensemble_quick(tmp_path, one_torch_thread):
    assert ensemble.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "ensemble_quick_t1.md").read_text()
    assert "| single | 2 |" in text and "| ensemble | 2 |" in text and "Single / ensemble:" in text
    assert ensemble.main(["--eps", ""]) == 2  # no member: refused before any work


@pytest.mark.slow
def test_table1_quick_ablations(tmp_path):
    done = script("table1.py", "--quick", "--ablations", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "table1_quick.csv")
    ablation = frame[frame["role"] == "ablation"]
    assert {"noisy"} <= set(ablation["infomax_on"]) and {"paper", "official"} <= set(ablation["vimco"])
    assert sorted(ablation[ablation["codec"] == "necst"]["eps"]) == [0.1, 0.15, 0.2]  # 0.5x, 0.75x, gumbel at 1x
    text = (tmp_path / "table1_quick.md").read_text()
    assert "### NECST with its training eps chosen on validation" in text and "VIMCO, reference code's form" in text


@pytest.mark.slow
def test_convergence_quick(tmp_path):
    done = script("convergence.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    curves = pd.read_csv(tmp_path / "convergence_quick.csv")
    assert len(curves) == 2 + 2 + 1 + 1 + 2 + 3  # epochs of st, gumbel, vimco, old, 2-thread st, reference
    assert (curves["cpu_seconds"] > 0).all() and curves["test_l2_single"].notna().all()
    summary = pd.read_csv(tmp_path / "convergence_quick_summary.csv")
    assert (summary["test"] > 0).all() and len(summary) == 6
    assert (tmp_path / "convergence_quick.png").exists() and "## Targets" in (tmp_path / "convergence_quick.md").read_text()


@pytest.mark.slow
def test_lr_range_quick(tmp_path):
    done = script("lr_range.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "lr_range_quick.csv")
    assert list(frame["estimator"]) == ["st"] and (frame["suggested_peak"] > 0).all()
    assert frame["suggested_peak"].iloc[0] == pytest.approx(frame["lr_min_loss"].iloc[0] / 10)


@pytest.mark.slow
def test_soft_decoder_quick(tmp_path):
    done = script("soft_decoder.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "soft_decoder_quick.csv")
    assert list(frame["decoder_input"]) == ["hard", "soft"] and (frame["test_count"] == 1000).all()
    assert frame["soft_minus_hard"].notna().all() and "Reading: at -2 dB" in (tmp_path / "soft_decoder_quick.md").read_text()


@pytest.mark.slow
def test_run_specs_with_ensembles_gives_whole_records_near_the_single_ones(tmp_path):
    """``--ensembles`` (``run_specs(..., ensembles=True)``): runs that differ in eps and seed train as one ensemble
    (one worker); each member's record is whole, its scores near its single training's (the same draws, other sums)."""
    specs = [runlib.spec("necst", eps, seed, epochs=1) for eps, seed in ((0.1, 0), (0.2, 1))]
    single, stacked = {}, {}
    assert runlib.run_specs(specs, tmp_path / "single", 1, single) == []
    assert runlib.run_specs(specs, tmp_path / "stacked", 1, stacked, ensembles=True) == []
    for name, record in stacked.items():
        assert record["ensemble"] == 2 and "ensemble" not in single[name] and len(record["per_image"]) == 1000
        assert record["test"] == pytest.approx(single[name]["test"], rel=0.05), name
        assert json.loads((tmp_path / "stacked" / f"{name}.json").read_text())["test"] == record["test"]
    assert [g if isinstance(g, dict) else [t["name"] for t in g] for g in runlib.ensemble_groups(specs, parts=2)] == specs


@pytest.mark.slow
def test_speed_quick(tmp_path):
    done = script("speed.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "speed_quick.csv", comment="#")
    assert list(frame["precision"]) == ["fp32", "fp32", "bf16", "bf16"] and (frame[["minimal", "necst", "iabf"]] > 0).all().all()
    assert "Fastest NECST step" in (tmp_path / "speed_quick.md").read_text()


def test_no_benchmark_edits_sys_path():
    """The scripts import their helpers as the package ``benchmarks`` (``python -m benchmarks.NAME``)."""
    offenders = [p.name for p in sorted(BENCHMARKS.glob("*.py")) if "sys.path.insert" in p.read_text()]
    assert offenders == []


def test_every_benchmark_is_in_the_readme_table():
    """benchmarks/README.md's table has a row for every script (and none for a script that is gone)."""
    rows = re.findall(r"^\| `(\w+)\.py` \|", (BENCHMARKS / "README.md").read_text(), flags=re.M)
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name not in HELPERS)
    assert sorted(f"{r}.py" for r in rows) == scripts


def test_output_names_files_and_stamps_reports(tmp_path, capsys):
    parser = runlib.benchmark_parser("benchmarks/example.py", "An example.", quick="tiny")
    args = runlib.parse_args(parser, ["--quick", "--out", str(tmp_path / "out"), "--threads", "0"])
    assert args.output.name == "example_quick" and args.output.command.startswith("python -m benchmarks.example --quick")
    report = args.output.report(["# Title", "", "body"])
    lines = report.read_text().splitlines()
    assert report.name == "example_quick.md" and lines[0] == "# Title" and lines[3:] == ["", "body"]
    assert re.fullmatch(r"Made by `python -m benchmarks\.example --quick --out \S+ --threads 0` at commit .+ UTC\.", lines[2])
    path = args.output.csv(pd.DataFrame({"a": [1, 2]}), "_part", stamp=True)
    assert path.name == "example_quick_part.csv" and path.read_text().startswith("# Made by `python -m benchmarks.example")
    assert list(pd.read_csv(path, comment="#")["a"]) == [1, 2]
    assert runlib.parse_args(parser, []).output.name == "example"
    with pytest.raises(ValueError, match="repeats >= 1"):
        runlib.best_time(lambda: None, 0)


@pytest.mark.slow
def test_batch_recipe_quick(tmp_path):
    done = script("batch_recipe.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "batch_recipe_quick.csv")
    assert len(frame) == 8 and (frame["test"] > 0).all() and (frame["epochs_run"] == 1).all()
    assert set(frame["batch"]) == {100, 500} and (frame["images"] == 8000).all()
    assert "## Time to quality" in (tmp_path / "batch_recipe_quick.md").read_text()


@pytest.mark.slow
def test_sweep_bsc_quick(tmp_path):
    """The README's sweep through the command line: the CSV, the figures and a stamped report of its means."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.sweep_bsc", "--quick", "--out", str(tmp_path), "--jobs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ,
                                                                                     "COMMSIM_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "sweep_bsc_quick.md").read_text()
    assert runlib.read_provenance(text)["command"].startswith("python -m benchmarks.sweep_bsc --quick")
    assert "| eps | necst | vq+ideal |" in text and "| 0.3 |" in text
    assert {"results.csv", "curves.csv", "distortion_vs_eps.png", "recon_necst.png"} <= {p.name for p in (tmp_path / "quick").iterdir()}

# -- downstream.py and chains.py: their statistics on made-up data, their quick forms ---------------

def test_downstream_classifier_fits_chooses_its_decay_on_validation_and_is_deterministic():
    import torch

    from benchmarks import downstream

    gen = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.nn.functional.one_hot(y, 3).float() * 2 + 0.3 * torch.randn(300, 3, generator=gen)  # separable, 3 classes
    clf = downstream.fit_classifier((x[:200], y[:200]), (x[200:], y[200:]), decays=(1e-3, 10.0), classes=3)
    assert set(clf.val_accuracy) == {1e-3, 10.0} and clf.decay == max(clf.val_accuracy, key=clf.val_accuracy.get)
    assert (clf.predict(x[200:]) == y[200:]).float().mean() > 0.95
    labels, conf = clf.confidence(x[200:])
    assert torch.equal(labels, clf.predict(x[200:])) and ((conf > 1 / 3) & (conf <= 1)).all()
    again = downstream.fit_classifier((x[:200], y[:200]), (x[200:], y[200:]), decays=(1e-3, 10.0), classes=3)
    assert torch.equal(again.weight, clf.weight)
    with pytest.raises(ValueError, match="at least one weight decay"):
        downstream.fit_classifier((x, y), (x, y), decays=())


def test_downstream_paired_accuracy_and_mcnemar_on_made_up_correctness():
    from benchmarks import downstream

    a = np.ones((2, 100), dtype=bool)
    b = a.copy()
    b[:, :20] = False  # b wrong on 20 images where a is right, in both seeds
    result = downstream.paired_accuracy(a, b)
    assert result["diff"] == pytest.approx(0.2) and result["diff_low"] > 0.1 and result["diff_high"] <= 0.3
    assert result["seeds_better"] == 2 and result["mcnemar_p"] == [pytest.approx(2 * 0.5**20)] * 2
    assert downstream.paired_accuracy(a, a)["diff"] == 0 and downstream.mcnemar_p(a[0], a[0]) == 1.0
    row = downstream.accuracy_row(a[0] & (np.arange(100) < 90))
    assert row["accuracy"] == 0.9 and row["low"] < 0.9 < row["high"] and row["images"] == 100
    with pytest.raises(ValueError, match="different shapes"):
        downstream.paired_accuracy(a, b[:1])


def test_downstream_verdict_reads_the_paired_intervals():
    from benchmarks import downstream

    frame = pd.DataFrame([{"codec": "pixels", "features": "pixels", "accuracy": 0.9},
                          {"codec": "necst", "features": "sampled", "accuracy": 0.8},
                          {"codec": "iabf", "features": "sampled+bsc", "accuracy": 0.7}])
    rows = [{"comparison": "iabf - necst", "eps": 0.1, "features": f, "diff": d, "diff_low": d - 0.01, "diff_high": d + 0.01,
             "seeds_better": 3, "seeds": 3, "mcnemar_p": "0.01"} for f, d in (("sampled", 0.05), ("sampled+bsc", 0.0))]
    text = "\n".join(downstream.verdict(rows, frame))
    assert "partly supported" in text and "0.700 to 0.800" in text and "raw pixels 0.900" in text
    rows[1]["diff"], rows[1]["diff_low"], rows[1]["diff_high"] = -0.05, -0.06, -0.04
    assert "mixed" in "\n".join(downstream.verdict(rows, frame))


def test_chain_stats_on_made_up_chains():
    from benchmarks import chains

    labels = np.array([[3, 5, 7, 1],
                       [3, 5, 2, 1],
                       [3, 5, 2, 4],
                       [3, 6, 2, 4]])  # 3 steps of 4 chains: one never leaves, the others leave at 3, 1, 2
    stats = chains.chain_stats(labels, np.full(labels.shape, 0.95))
    assert stats["steps"] == 3 and stats["chains"] == 4 and stats["never_leave"] == 0.25
    assert stats["median_leave"] == 2.5  # of 1, 2, 3, inf
    assert [stats[f"count_{c}"] for c in range(10)] == [0, 1, 3, 3, 2, 2, 1, 0, 0, 0]
    share = np.array([1, 3, 3, 2, 2, 1]) / 12
    assert stats["visit_entropy"] == pytest.approx(-(share * np.log2(share)).sum())
    assert stats["classes_visited"] == 6 and stats["distinct_per_chain"] == pytest.approx((1 + 2 + 2 + 2) / 4)
    assert stats["final_entropy"] == pytest.approx(2.0) and stats["confident"] == 1.0
    collapsed = chains.chain_stats(np.full((5, 4), 7), np.full((5, 4), 0.5))
    assert collapsed["visit_entropy"] == 0 and collapsed["never_leave"] == 1 and np.isinf(collapsed["median_leave"])
    with pytest.raises(ValueError, match="at least one step"):
        chains.chain_stats(labels[:1], labels[:1])


def test_bit_information_is_exact_on_made_up_codes():
    from benchmarks import chains

    labels = np.arange(8) % 2
    probs = np.stack([labels.astype(float),   # the class itself: 1 bit about x and about y
                      np.full(8, 0.5),        # a fair coin: a full marginal, no information
                      np.zeros(8),            # dead
                      np.arange(8) // 4 * 1.0], 1)  # another deterministic bit, independent of the class
    info = chains.bit_information(probs, labels)
    np.testing.assert_allclose(info["h_marginal"], [1, 1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(info["mi_image"], [1, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(info["mi_class"], [1, 0, 0, 0], atol=1e-12)
    spread = chains.spread(info)
    assert spread["bits_90"] == 2 and spread["top10_share"] == 1 and spread["dead_bits"] == 1 and spread["live_bits"] == 3
    assert spread["mi_image_sum"] == pytest.approx(2) and spread["mi_class_sum"] == pytest.approx(1)


def test_chains_verdict_pairs_the_seeds():
    from benchmarks import chains

    def row(codec, seed, entropy):
        return {"codec": codec, "eps": 0.1, "seed": seed, "visit_entropy": entropy, "never_leave": 0.5, "confidence": 0.7,
                "bits_90": 20, "dead_bits": 5, "classes_1pct": 9, "distinct_per_chain": 3.0,
                "median_leave": 4.0, "top10_share": 0.1}

    frame = pd.DataFrame([row("necst", 0, 1.0), row("iabf", 0, 2.0), row("necst", 1, 1.5), row("iabf", 1, 1.6)])
    assert "supported" in chains.verdict(frame)[0] and "2/2 seeds" in chains.verdict(frame)[1]
    frame.loc[3, "visit_entropy"] = 1.4
    assert "inconclusive" in chains.verdict(frame)[0]


def test_downstream_and_chains_refuse_bad_arguments_before_any_work(tmp_path, capsys):
    from benchmarks import chains, downstream

    for main, args in ((downstream.main, ["--seeds", "0"]), (downstream.main, ["--eps", "0.7"]),
                       (downstream.main, ["--abf-seeds", "11"]), (chains.main, ["--chains", "0"]),
                       (chains.main, ["--steps", "5000"])):
        assert main([*args, "--out", str(tmp_path / "out")]) == 2
        assert capsys.readouterr().err.startswith("Error: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_downstream_and_chains_quick(tmp_path):
    """downstream.py trains its three 1-epoch models into the (test) cache; chains.py reuses two of them."""
    done = script("downstream.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("as one ensemble") == 3
    frame = pd.read_csv(tmp_path / "downstream_quick.csv")
    assert len(frame) == 1 + 3 * 3 and frame["accuracy"].between(0, 1).all() and frame.loc[0, "accuracy"] > 0.8  # pixels
    paired = pd.read_csv(tmp_path / "downstream_quick_paired.csv")
    assert sorted(set(paired["comparison"])) == ["abf - necst", "iabf - necst"] and len(paired) == 6
    assert "**Verdict (IABF vs NECST" in (tmp_path / "downstream_quick.md").read_text()
    done = script("chains.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "as one ensemble" not in done.stdout  # the models of downstream.py, from the cache
    frame = pd.read_csv(tmp_path / "chains_quick.csv")
    assert sorted(frame["codec"]) == ["iabf", "necst"] and (frame["steps"] == 20).all() and (frame["chains"] == 10).all()
    assert (frame[[f"count_{c}" for c in range(10)]].sum(axis=1) == 200).all()
    assert len(pd.read_csv(tmp_path / "chains_quick_bits.csv")) == 200
    assert (tmp_path / "chains_quick.png").stat().st_size > 10_000
    assert "Verdict on \"less mode collapse\"" in (tmp_path / "chains_quick.md").read_text()


def test_precision_report_pairs_the_two_grids(tmp_path):
    """benchmarks/precision.py on made-up records (no training): cells paired over seeds, the seed-spread
    rule both ways, the lambda choice of each grid, the committed table beside it, the timing kept."""
    from benchmarks import precision

    runs, rng = tmp_path / "runs", np.random.default_rng(2)
    base = rng.normal(30, 2, size=50)
    train = {"epochs": 1}
    for p, shift in (("fp32", 0.0), ("bf16", 0.05)):
        for seed in range(2):
            for codec, test in (("necst", 30.0), ("abf", 31.0)):
                value = test + seed * 0.2 + shift + (1.0 if codec == "abf" and p == "bf16" else 0.0)  # abf: off by 1 in bf16
                write(runs / p, fake_record(runlib.spec(codec, 0.2, seed, precision=p, **train), value, per_image=base + value - 30))
            lam_seed0 = {0.01: 29.0, 0.001: 29.5 if p == "fp32" else 28.5}  # bf16 picks the other lambda
            for lam, test in lam_seed0.items():
                if seed == 0:
                    write(runs / p, fake_record(runlib.spec("iabf", 0.2, 0, lam=lam, precision=p, **train), test, per_image=base))
            if seed == 1:
                chosen = 0.01 if p == "fp32" else 0.001
                write(runs / p, fake_record(runlib.spec("iabf", 0.2, 1, lam=chosen, precision=p, **train), 29.2, per_image=base))
    (runs / "timing.json").write_text('{"bf16": [{"seconds": 500.0, "machine": "A"}, {"seconds": 100.0, "machine": "A"}], '
                                      '"fp32": [{"seconds": 60.0, "machine": "A"}, {"seconds": 30.0, "machine": "B"}]}')
    committed = tmp_path / "table1.csv"
    pd.DataFrame([{"dataset": "mnist", "role": "main", "codec": "necst", "eps": 0.2, "test": t} for t in (30.0, 30.4)]).to_csv(committed)
    args = ["--epochs", "1", "--seeds", "2", "--eps", "0.2", "--lambdas", "0.01", "0.001", "--runs", str(runs),
            "--out", str(tmp_path), "--table1", str(committed)]
    assert precision.main(args) == 0
    frame = pd.read_csv(tmp_path / "precision.csv").set_index("codec")
    assert frame.loc["necst", "diff"] == pytest.approx(0.05) and bool(frame.loc["necst", "within_spread"])
    assert frame.loc["abf", "diff"] == pytest.approx(1.05) and not bool(frame.loc["abf", "within_spread"])
    assert frame.loc["iabf", "lam_fp32"] == 0.01 and frame.loc["iabf", "lam_bf16"] == 0.001
    assert frame.loc["necst", "table1_mean"] == pytest.approx(30.2) and pd.isna(frame.loc["abf", "table1_mean"])
    text = (tmp_path / "precision.md").read_text()
    assert "- bf16: 10.0 min (600 s) wall on A" in text and "(500 + 100 s: a deadline split it)" in text
    assert "- fp32: 60 s on A + 30 s on B (1.5 min in all): trained on 2 machines" in text
    assert "**2 of 3 cells** have bf16 within the seed spread" in text and "fp32 {0.2: 0.01}, bf16 {0.2: 0.001}" in text
    assert "abf at eps 0.2, not within spread: fp32 s0 31.00 (best 1/1 budget), s1 31.20 (best 1/1 budget); bf16 s0 32.05" in text
    assert "At eps 0.2, seed 0 (the selection runs): lambda 0.01: fp32 29.00, bf16 29.00; lambda 0.001: fp32 29.50, bf16 28.50." in text
    assert precision.main(["--seeds", "0"]) == 2


def test_short_budget_summary_judges_every_seed_against_anchor_and_seconds(tmp_path):
    """benchmarks/short_budget.py's table on made-up records: a budget meets the anchor only when every
    seed does, the seconds only when the slowest seed does; the fastest budget that meets the anchor is named."""
    from benchmarks import short_budget

    records = []
    for epochs, tests, walls in ((10, (17.0, 16.0), (6.0, 7.0)), (20, (16.0, 16.4), (9.0, 11.0)), (30, (15.0, 15.5), (15.0, 16.0))):
        for seed, (test, wall) in enumerate(zip(tests, walls)):
            r = fake_record(runlib.spec("necst", 0.1, seed, epochs=epochs, threads=2), test)
            records.append({**r, "train_images": 8000, "wall_seconds": wall})
    frame = short_budget.summarize(records, [10, 20, 30], anchor=16.45, seconds=10.0).set_index("epochs")
    assert list(frame["meets_anchor"]) == [False, True, True] and list(frame["within_seconds"]) == [True, False, False]
    assert frame.loc[20, "wall_max"] == 11.0 and frame.loc[20, "images"] == 160_000
    args = type("A", (), {"eps": 0.1, "anchor": 16.45, "seconds": 10.0, "precision": "auto", "threads": 2, "seeds": 2})()
    text = "\n".join(short_budget.report(args, frame.reset_index(), "0 0 0"))
    assert "**20 epochs**, 10.0 s mean (11.0 s max)" in text and "is **not met**" in text
    assert short_budget.main(["--seeds", "0", "--out", str(tmp_path)]) == 2 and not list(tmp_path.iterdir())


def test_newcomer_large_idx_set_loads_as_the_idx_data_set(tmp_path):
    """benchmarks/newcomer.py --large: the synthetic IDX files are what `--dataset idx` reads (sizes,
    the default 1/6 validation split, shifted copies of the embedded digits)."""
    from benchmarks import newcomer
    from commsim.data import load_dataset

    folder = newcomer.write_large_idx(tmp_path / "idx", train=1200, test=300)
    source = load_dataset("idx", str(folder))
    assert (source.size("train"), source.size("val"), source.size("test")) == (1000, 200, 300)
    embedded = load_dataset("mnist")
    first = embedded.images[embedded.splits["train"][0], 0]
    train = source.images[source.splits["train"]]
    assert train[0, 0].sum() == first.sum()  # a copy of the first digit, rolled: every pixel kept
    shifted = sum(not np.array_equal(train[i, 0], embedded.images[embedded.splits["train"][i], 0]) for i in range(50))
    assert shifted > 30  # most copies moved (a shift of 0 in both axes is 1 in 25)
