"""A newcomer's first steps, timed idle and next to another CPU-bound process, in one run.

1. The README's main command, ``commsim run --codec iabf --channel bsc --eps 0.2``, on a fresh cache
   (so it trains), once on an otherwise idle machine and once while one other CPU-bound process
   (a busy loop) runs. Issue 12's target: loaded <= 1.5 x idle.
2. Optionally (``--tests``) the README's default test run (``python -m pytest -q``), idle and loaded.
   Target: under 3 minutes on 2 cores with another CPU-bound process running.
3. Optionally (``--large``) the same command on a 60,000-image IDX training set (``--dataset idx``), idle:
   the embedded digits tiled with random shifts of up to 2 pixels, 10,000 test images the same way (the
   size of MNIST's files; the content does not change the cost). Issue 17's target: at most 2 x the
   embedded data's idle run (the default budget is 600k images seen, whatever the data's size).

Writes ``newcomer.md`` and ``newcomer.csv`` in ``--out`` (``--quick``: ``newcomer_quick.*``). Each measurement starts a fresh process with
a fresh ``COMMSIM_HOME``; the busy loop is a separate Python process started before and killed after.

    python -m benchmarks.newcomer                 # the main command, idle and loaded
    python -m benchmarks.newcomer --tests         # plus the test suite, idle and loaded
    python -m benchmarks.newcomer --large         # plus the main command on a 60,000-image IDX set, idle
    python -m benchmarks.newcomer --quick         # a 1-epoch run, to check the script itself
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import runlib

ROOT = Path(__file__).resolve().parents[1]
MAIN = ["-m", "commsim.cli", "run", "--codec", "iabf", "--channel", "bsc", "--eps", "0.2"]
BUSY = "import time\nwhile True:\n    pass\n"
EMBEDDED = "commsim run --codec iabf --channel bsc --eps 0.2 (fresh cache: trains)"
LARGE = "the same on a 60,000-image IDX set (--dataset idx; fresh cache: trains)"


def timed(args: list[str], env: dict, loaded: bool) -> tuple[float, str]:
    """Wall seconds of ``python args`` (and its last output lines), with a busy loop beside it if ``loaded``."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if loaded else None
    try:
        if busy:
            time.sleep(1.0)  # the loop is running before the command starts
        done, seconds, _ = runlib.timed(lambda: subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                                                               capture_output=True, text=True))
    finally:
        if busy:
            busy.kill()
            busy.wait()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    tail = [line.strip() for line in done.stdout.splitlines() if line.strip()][-4:]  # the result table, CI line, checkpoint
    return seconds, " | ".join(tail)


def write_large_idx(folder: Path, train: int = 60_000, test: int = 10_000, seed: int = 0) -> Path:
    """MNIST-size IDX files in ``folder``: the embedded digits (train and validation splits for the training
    files, the test split for the test files) tiled to ``train`` / ``test`` images, each copy shifted by
    up to 2 pixels at random."""
    import numpy as np

    from commsim.data import load_dataset

    source, rng = load_dataset("mnist"), np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def tiled(split_names, n):
        idx = np.concatenate([source.splits[s] for s in split_names])
        pick = idx[np.arange(n) % len(idx)]
        images = source.images[pick, 0].copy()
        for i, (dy, dx) in enumerate(rng.integers(-2, 3, size=(n, 2))):
            images[i] = np.roll(images[i], (int(dy), int(dx)), axis=(0, 1))
        return images.astype(np.uint8), source.labels[pick].astype(np.uint8)

    for prefix, splits, n in (("train", ("train", "val"), train), ("t10k", ("test",), test)):
        images, labels = tiled(splits, n)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(np.array([2051, n, 28, 28], ">u4").tobytes() + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, n], ">u4").tobytes() + labels.tobytes())
    return folder


def newcomer_env() -> dict:
    """This process's environment without the thread settings a newcomer would not have set."""
    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "COMMSIM_THREADS")}


def training_seconds(home: Path) -> dict:
    """``train_seconds`` and ``train_threads`` of the one checkpoint the command trained under ``home``
    (its metadata: the training alone, without start-up, data loading and the test evaluation)."""
    from commsim.learned.checkpoints import read_metadata
    found = sorted(home.rglob("*.safetensors"))
    if len(found) != 1:
        raise SystemExit(f"expected one trained checkpoint under the fresh cache, found {len(found)}")
    metadata = read_metadata(found[0])
    return {"train_seconds": round(float(metadata["train_seconds"]), 1), "train_threads": int(metadata["train_threads"])}


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="1-epoch training on 100 images", threads=False)
    parser.add_argument("--tests", action="store_true", help="also time the default test run")
    parser.add_argument("--large", action="store_true", help="also time the main command on a 60,000-image IDX set, idle")
    args = runlib.parse_args(parser, argv)
    rows = []
    for loaded in (False, True):
        with tempfile.TemporaryDirectory() as home:
            env = newcomer_env()
            env["COMMSIM_HOME"] = home
            command = MAIN + (["--epochs", "1", "--limit", "100"] if args.quick else [])
            seconds, tail = timed(command, env, loaded)
            rows.append({"what": EMBEDDED,
                         "load": "one busy loop" if loaded else "idle", "seconds": round(seconds, 1),
                         **training_seconds(Path(home)), "output": tail})
            print(rows[-1], flush=True)
    if args.large:
        with tempfile.TemporaryDirectory() as home:
            data = write_large_idx(Path(home) / "idx", *((600, 100) if args.quick else ()))
            env = newcomer_env()
            env["COMMSIM_HOME"] = str(Path(home) / "cache")
            command = MAIN + ["--dataset", "idx", "--data-path", str(data)] + (["--epochs", "1"] if args.quick else [])
            seconds, tail = timed(command, env, False)
            rows.append({"what": LARGE, "load": "idle", "seconds": round(seconds, 1),
                         **training_seconds(Path(home) / "cache"), "output": tail})
            print(rows[-1], flush=True)
    if args.tests:
        for loaded in (False, True):
            env = newcomer_env()
            seconds, tail = timed(["-m", "pytest", "-q", "-p", "no:cacheprovider"], env, loaded)
            rows.append({"what": "python -m pytest (default run)", "load": "one busy loop" if loaded else "idle",
                         "seconds": round(seconds, 1), "output": tail})
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    args.output.csv(frame)
    lines = [f"# A newcomer's first run, idle and next to one CPU-bound process{' (QUICK: 1 epoch)' if args.quick else ''}", "",
             f"Machine: {runlib.machine()}, Python {platform.python_version()}. The loaded runs share the "
             "machine with one `while True: pass` process; nothing else of ours was running.", "",
             "| what | load | seconds | of which training (threads) |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['load']} | {r['seconds']} | "
              + (f"{r['train_seconds']} ({r['train_threads']})" if pd.notna(r.get("train_seconds")) else "") + " |"
              for _, r in frame.iterrows()]
    for what in frame["what"].unique():
        part = frame[frame["what"] == what].set_index("load")["seconds"]
        if len(part) == 2:
            lines.append(f"\n{what}: loaded / idle = **{part['one busy loop'] / part['idle']:.2f}**")
    large, embedded = frame[frame["what"] == LARGE], frame[(frame["what"] == EMBEDDED) & (frame["load"] == "idle")]
    if len(large) and len(embedded):
        ratio = lambda column: large[column].iloc[0] / embedded[column].iloc[0]
        lines.append(f"\n60,000-image set / embedded digits, idle: **{ratio('seconds'):.2f}** for the whole command, "
                     f"{ratio('train_seconds'):.2f} for the training (issue 17's target: at most 2)")
    lines.append("\nLast lines of each command's output:\n")
    lines += [f"- {r['what']}, {r['load']}: `{r['output']}`" for r in rows]
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
