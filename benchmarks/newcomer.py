"""A newcomer's first steps, timed idle and next to another CPU-bound process, in one run.

1. The README's main command, ``commsim run --codec iabf --channel bsc --eps 0.2``, on a fresh cache
   (so it trains), once on an otherwise idle machine and once while one other CPU-bound process
   (a busy loop) runs. Issue 12's target: loaded <= 1.5 x idle.
2. Optionally (``--tests``) the README's default test run (``python -m pytest -q``), idle and loaded.
   Target: under 3 minutes on 2 cores with another CPU-bound process running.

Writes ``newcomer.md`` and ``newcomer.csv`` in ``--out`` (``--quick``: ``newcomer_quick.*``). Each measurement starts a fresh process with
a fresh ``COMMSIM_HOME``; the busy loop is a separate Python process started before and killed after.

    python -m benchmarks.newcomer                 # the main command, idle and loaded
    python -m benchmarks.newcomer --tests         # plus the test suite, idle and loaded
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
    args = runlib.parse_args(parser, argv)
    rows = []
    for loaded in (False, True):
        with tempfile.TemporaryDirectory() as home:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "COMMSIM_THREADS")}
            env["COMMSIM_HOME"] = home
            command = MAIN + (["--epochs", "1", "--limit", "100"] if args.quick else [])
            seconds, tail = timed(command, env, loaded)
            rows.append({"what": "commsim run --codec iabf --channel bsc --eps 0.2 (fresh cache: trains)",
                         "load": "one busy loop" if loaded else "idle", "seconds": round(seconds, 1),
                         **training_seconds(Path(home)), "output": tail})
            print(rows[-1], flush=True)
    if args.tests:
        for loaded in (False, True):
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "COMMSIM_THREADS")}
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
    lines.append("\nLast lines of each command's output:\n")
    lines += [f"- {r['what']}, {r['load']}: `{r['output']}`" for r in rows]
    args.output.report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
