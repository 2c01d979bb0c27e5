"""Scaling of one sweep over executors, Ray's per-task overhead, and what a cluster would take.

The same 24-point sweep (with its trainings) is run, in one process one after the other, with:
``local --jobs 1``, ``local --jobs 2``, an embedded Ray with 1 CPU and one with 2 CPUs, each with a
fresh checkpoint cache (so each trains its codecs) and one torch thread per training / evaluation
(``COMMSIM_THREADS=1``). A sweep trains a codec's trainings as batched ensembles, one per worker
(``sweep.prepare``): one ensemble of 2 on 1 worker, 2 single trainings on 2, and an ensemble's weights
match single trainings in distribution only. So the rows are checked to be the same for executors
with the same number of workers (the separated codec's rows: for every executor), and the report
gives how far the learned rows of the other grouping are from ``local --jobs 1``'s. The sweep:
NECST trained at eps 0.1 and 0.2 (a small epoch budget) tested at 4 eps x 2 seeds (16 points) and
the separated ``vq+ideal`` at the same 4 eps x 2 seeds (8 points). The wall time of each run counts
everything a user waits for (Ray's start-up and shutdown included); ratios are to ``local --jobs 1``.

Ray's overhead is measured in the same run on an embedded Ray with 2 CPUs: start-up + shutdown, the
round trip of a no-op task (one at a time), the per-task cost of 1,000 no-op tasks submitted at once,
and shipping one 100-bit NECST checkpoint through the object store to a task (``ray.put`` + a task
that checks its sha256, minus the no-op round trip).

The estimates (converged Table 1; a 1,000-point sweep on 8 nodes x 1 GPU) come from a small list
scheduler (longest task first, dependencies respected: a point starts after its codec's training)
fed with the measured per-task times and overheads; the report states every assumption.

Usage::

    python -m benchmarks.scaling --quick     # a smoke test (tiny budget), < 1 min
    python -m benchmarks.scaling             # about 5 minutes on 2 cores

Writes ``benchmarks/results/scaling.md`` and ``scaling.csv`` (``--out``; ``--quick`` writes ``scaling_quick.*``).
"""
from __future__ import annotations

import hashlib
import heapq
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import runlib
from benchmarks.runlib import RESULTS
from commsim.learned.entry import SECONDS_PER_IMAGE, VALIDATION_SECONDS

PER_RUN = ["wall_seconds", "device", "host", "checkpoint_sha256"]
"""Columns that differ between two runs whatever the executor (the checkpoint's metadata holds its
training's wall time, hence its sha256)."""
KEYS = ["codec", "value", "train_eps", "seed"]
TABLE1_RECORDS = RESULTS / "table1_runs_converged"


def sweep_spec(quick: bool):
    from commsim.sweep import SweepSpec

    if quick:
        return SweepSpec(codecs=["necst", "vq+ideal"], channel="bsc", param="eps", values=[0.1, 0.2], seeds=1,
                         train_eps=[0.1, 0.2], bits=8, epochs=1, limit=50)
    return SweepSpec(codecs=["necst", "vq+ideal"], channel="bsc", param="eps", values=[0.05, 0.1, 0.2, 0.3], seeds=2,
                     train_eps=[0.1, 0.2], bits=100, epochs=10)


def executors():
    from commsim.ray_executor import RayCluster, RayExecutor
    from commsim.sweep import LocalExecutor

    return {"local --jobs 1": LocalExecutor(1), "local --jobs 2": LocalExecutor(2),
            "ray, 1 CPU": RayExecutor(RayCluster(num_cpus=1)), "ray, 2 CPUs": RayExecutor(RayCluster(num_cpus=2))}


def time_sweep(name: str, executor, spec, folder: Path) -> tuple[dict, pd.DataFrame, Path]:
    """Run the sweep with a fresh cache; its wall time, per-task times, rows and cache folder."""
    from commsim.learned.checkpoints import read_metadata
    from commsim.sweep import run_sweep

    home = folder / "home"
    os.environ["COMMSIM_HOME"] = str(home)
    _, wall, _ = runlib.timed(lambda: run_sweep(spec, folder / "results.csv", executor=executor, progress=False))
    rows = pd.read_csv(folder / "results.csv")
    trains = [read_metadata(p)["train_seconds"] for p in sorted((home / "checkpoints").glob("*.safetensors"))]
    workers = getattr(executor, "jobs", None) or executor.cluster.num_cpus  # local processes, or the Ray CPUs
    row = {"executor": name, "workers": int(workers), "wall_seconds": round(wall, 2),
           "points": len(rows), "trainings": len(trains),
           "train_seconds_mean": round(statistics.mean(trains), 2) if trains else None}
    for codec, group in rows.groupby("codec"):
        row[f"eval_seconds_mean[{codec}]"] = round(group["wall_seconds"].mean(), 3)
    print(f"{name}: {wall:.1f} s", flush=True)
    return row, rows.sort_values(KEYS).reset_index(drop=True), home


def noop() -> int:
    return 0


def checksum(blob: dict) -> str:
    return hashlib.sha256(blob["bytes"]).hexdigest()


def ray_overheads(checkpoint: Path | None, repeats: int) -> dict:
    """Start-up + shutdown, no-op round trip, amortised per-task cost, checkpoint shipping (seconds)."""
    from commsim.ray_executor import RayCluster, checkpoint_blob

    cluster = RayCluster(num_cpus=2)
    out = {}
    start = time.perf_counter()
    with cluster.connect() as ray:
        out["startup_seconds"] = time.perf_counter() - start
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        task = cluster.remote(ray, noop)
        ray.get([task.remote() for _ in range(4)])  # warm the workers
        _, seconds, _ = runlib.timed(lambda: [ray.get(task.remote()) for _ in range(repeats)])
        out["roundtrip_seconds"] = seconds / repeats
        many = 10 * repeats
        _, seconds, _ = runlib.timed(lambda: ray.get([task.remote() for _ in range(many)]))
        out["per_task_seconds_batched"] = seconds / many
        out["batched_tasks"] = many
        if checkpoint is not None:
            blob = checkpoint_blob(checkpoint)
            receive = cluster.remote(ray, checksum)
            times = []
            for _ in range(max(3, repeats // 20)):
                sha, seconds, _ = runlib.timed(lambda: ray.get(receive.remote(ray.put(blob))))
                if sha != blob["sha256"]:
                    raise RuntimeError("the checkpoint shipped to a Ray task arrived changed")
                times.append(seconds)
            out["checkpoint_bytes"] = len(blob["bytes"])
            out["checkpoint_ship_seconds"] = max(0.0, statistics.median(times) - out["roundtrip_seconds"])
        start = time.perf_counter()
    out["shutdown_seconds"] = time.perf_counter() - start
    return out


def schedule(tasks: list[dict], slots: int, overhead: float) -> float:
    """Wall time of ``tasks`` (``{"id", "seconds", "after": id or None}``) on ``slots`` parallel slots,
    longest ready task first, each paying ``overhead`` seconds; a task starts once its ``after`` is done."""
    done_at: dict = {}
    free = [0.0] * slots
    pending = sorted(tasks, key=lambda t: -t["seconds"])
    now = 0.0
    while pending:
        now = max(now, heapq.heappop(free))
        ready = [t for t in pending if t["after"] is None or done_at.get(t["after"], float("inf")) <= now]
        if not ready:  # wait for the earliest finishing dependency
            now = min(v for k, v in done_at.items() if v > now and any(t["after"] == k for t in pending))
            heapq.heappush(free, now)
            continue
        task = ready[0]
        pending.remove(task)
        done_at[task["id"]] = now + task["seconds"] + overhead
        heapq.heappush(free, done_at[task["id"]])
    return max(done_at.values(), default=0.0)


def table1_tasks() -> tuple[list[dict], str]:
    """Converged Table 1's trainings (phase 2's IABF seeds wait for phase 1's lambda choice) with the
    training seconds recorded in ``table1_runs_converged`` (one thread each, this machine)."""
    from benchmarks import table1

    seconds, source = {}, "the converged Table 1 records"
    records = [json.loads(p.read_text()) for p in TABLE1_RECORDS.glob("*.json")] if TABLE1_RECORDS.is_dir() else []
    for codec in ("necst", "abf", "iabf"):
        own = [r["train_seconds"] for r in records if r["codec"] == codec]
        seconds[codec] = statistics.mean(own) if own else (SECONDS_PER_IMAGE[codec, "fp32"] * 8000 + VALIDATION_SECONDS) * 100
    if not records:
        source = "commsim.learned.entry.SECONDS_PER_IMAGE (fp32) x 8,000 images x 100 epochs (no converged records found)"
    tasks = [{"id": f"iabf-{e}-lam{l}", "seconds": seconds["iabf"], "after": None} for e in table1.PAPER_EPS for l in table1.LAMBDAS]
    tasks += [{"id": f"{c}-{e}-{s}", "seconds": seconds[c], "after": None} for c in ("abf", "necst") for e in table1.PAPER_EPS
              for s in range(3)]
    tasks += [{"id": f"iabf-{e}-{s}", "seconds": seconds["iabf"], "after": f"iabf-{e}-lam{table1.LAMBDAS[-1]}"}
              for e in table1.PAPER_EPS for s in (1, 2)]
    return tasks, source + " (mean train seconds: " + ", ".join(f"{c} {v:.0f} s" for c, v in seconds.items()) + ")"


def thousand_point_tasks(eval_seconds: dict, train_seconds: dict) -> list[dict]:
    """1,000 points: NECST, ABF and IABF each trained at 4 eps (12 converged trainings), 50 points per
    trained codec (e.g. 5 test eps x 10 seeds: 600 points), plus 400 points of separated codecs
    (e.g. 2 codecs x 20 eps x 10 seeds)."""
    tasks = []
    for codec in ("necst", "abf", "iabf"):
        for e in range(4):
            tasks.append({"id": f"{codec}-{e}", "seconds": train_seconds[codec], "after": None})
            tasks += [{"id": f"{codec}-{e}-p{i}", "seconds": eval_seconds["learned"], "after": f"{codec}-{e}"}
                      for i in range(50)]
    tasks += [{"id": f"sep-{i}", "seconds": eval_seconds["separated"], "after": None} for i in range(400)]
    return tasks


def gpu_speedups(path: Path, default: float) -> tuple[dict, str]:
    """Speed of a GPU task over one CPU thread per codec's training and for a learned codec's evaluation,
    from ``benchmarks/gpu.py``'s CSV (ABF as IABF, the slower of the two measured), else ``default``."""
    speed = {"necst": default, "abf": default, "iabf": default, "eval": 1.0}
    if not path.is_file():
        return speed, (f"assumed {default:g}x for training, 1x for evaluation (not measured: no {path.name}; "
                       "run python -m benchmarks.gpu on a CUDA machine)")
    frame = pd.read_csv(path)
    train = frame[frame["section"] == "training"].pivot_table(index="codec", columns="device", values="seconds_per_epoch")
    for codec in ("necst", "iabf"):
        if codec in train.index and {"cpu", "cuda"} <= set(train.columns):
            speed[codec] = float(train.loc[codec, "cpu"] / train.loc[codec, "cuda"])
    speed["abf"] = speed["iabf"]
    parity = frame[frame["section"] == "parity"].set_index("device")["evaluate_seconds"]
    if {"cpu", "cuda"} <= set(parity.index):
        speed["eval"] = float(parity["cpu"] / parity["cuda"])
    return speed, (f"measured by benchmarks.gpu ({path.name}: CUDA against one CPU thread of the same machine; training: NECST {speed['necst']:.2f}x, IABF {speed['iabf']:.2f}x, ABF taken "
                   f"as IABF; a 1,000-image evaluation {speed['eval']:.2f}x)")


def machine_line() -> str:
    load = os.getloadavg()
    try:
        top = subprocess.run(["top", "-bn1"], capture_output=True, text=True, timeout=10).stdout.splitlines()[7:12]
    except (OSError, subprocess.SubprocessError):
        top = []
    busy = [" ".join(l.split()[8:9] + l.split()[11:12]) for l in top if l.split() and l.split()[8:9] != ["0.0"]]
    return (f"{runlib.machine()}, Python {platform.python_version()}; "
            f"load average {load[0]:.2f} at the end; busiest other processes (CPU %, command): {', '.join(busy) or 'none'}")


ESTIMATE_PLACES = [("this machine, ray 2 CPUs", 2, False), ("8 nodes x 1 GPU, 1 GPU per task", 8, True),
                   ("8 nodes x 1 GPU, 0.25 GPU per task (4 tasks share a GPU)", 32, True)]
"""Where the estimates are made: label, parallel slots, whether a task runs at the GPU's speed."""


def measure(spec, quick: bool) -> tuple[list[dict], dict, dict, float]:
    """Run the sweep on every executor (fresh caches in a scratch folder), then Ray's overheads: the rows
    of the results table (with ``ratio_to_local_jobs1``), each executor's sweep rows, the overheads and the
    total wall seconds."""
    results, frames, homes = [], {}, {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="commsim-scaling-") as scratch:
        for i, (name, executor) in enumerate(executors().items()):
            row, frames[name], homes[name] = time_sweep(name, executor, spec, Path(scratch) / str(i))
            results.append(row)
        checkpoint = next(iter(sorted((homes["ray, 2 CPUs"] / "checkpoints").glob("*.safetensors"))), None)
        overhead = ray_overheads(checkpoint, repeats=20 if quick else 200)
    total = time.perf_counter() - began
    for row in results:
        row["ratio_to_local_jobs1"] = round(row["wall_seconds"] / results[0]["wall_seconds"], 2)
    return results, frames, overhead, total


def same_rows(frames: dict, workers: dict[str, int]) -> dict[str, dict]:
    """Per executor (``workers``: its worker count, which sets how its trainings are grouped into
    ensembles): ``same`` (its rows, but for the :data:`PER_RUN` columns, are ``local --jobs 1``'s),
    ``same_grouping`` (they are those of the first executor with as many workers), ``separated_same``
    (its rows of codecs that train nothing are ``local --jobs 1``'s) and ``max_l2_diff`` (the largest
    |difference| in ``l2_per_image`` from ``local --jobs 1``)."""
    from commsim.codecs import entry
    from commsim.core.protocol import budget_reads

    strip = lambda frame: frame.drop(columns=PER_RUN)
    reference = strip(frames["local --jobs 1"])
    first = {}
    for name in frames:
        first.setdefault(workers[name], name)
    separated = reference["codec"].map(lambda c: not budget_reads(entry(c)))
    out = {}
    for name, frame in frames.items():
        mine = strip(frame)
        out[name] = {"same": mine.equals(reference), "same_grouping": mine.equals(strip(frames[first[workers[name]]])),
                     "separated_same": mine[separated.values].reset_index(drop=True).equals(reference[separated].reset_index(drop=True)),
                     "max_l2_diff": float((mine["l2_per_image"] - reference["l2_per_image"]).abs().max())}
    return out


def agreement(check: dict) -> str:
    """The table's cell for one executor's :func:`same_rows`."""
    if check["same"]:
        return "yes"
    return ("no: " + ("learned rows" if check["separated_same"] else "**separated rows too**")
            + f", max abs l2 difference {check['max_l2_diff']:.3g}"
            + ("" if check["same_grouping"] else "; **differs from its own grouping**"))


def estimate(local1: dict, overhead: dict, gpu_csv: Path, gpu_speedup: float) -> dict:
    """The converged Table 1 and the 1,000-point sweep at each of :data:`ESTIMATE_PLACES`, from the
    measured per-task times (``local1``: the ``local --jobs 1`` row) and Ray's ``overhead``; returns the
    estimates (label, Table 1 seconds, sweep seconds) and every input the report states."""
    table1, table1_source = table1_tasks()
    per_task = overhead["per_task_seconds_batched"] + overhead.get("checkpoint_ship_seconds", 0.0)
    startup = overhead["startup_seconds"] + overhead["shutdown_seconds"]
    eval_cpu = {"learned": local1.get("eval_seconds_mean[necst]", 0.1), "separated": local1.get("eval_seconds_mean[vq+ideal]", 0.5)}
    train_cpu = {t["id"].split("-")[0]: t["seconds"] for t in table1}
    gpu, gpu_source = gpu_speedups(gpu_csv, gpu_speedup)
    rows = []
    for label, slots, on_gpu in ESTIMATE_PLACES:
        speed = gpu if on_gpu else dict.fromkeys(gpu, 1.0)
        t1 = schedule([{**t, "seconds": t["seconds"] / speed[t["id"].split("-")[0]]} for t in table1], slots, per_task) + startup
        sweep = thousand_point_tasks({"learned": eval_cpu["learned"] / speed["eval"], "separated": eval_cpu["separated"]},
                                     {c: s / speed[c] for c, s in train_cpu.items()})
        rows.append((label, t1, schedule(sweep, slots, per_task) + startup))
    return {"rows": rows, "per_task": per_task, "startup": startup, "eval_cpu": eval_cpu, "table1_source": table1_source,
            "gpu_source": gpu_source}


def duration(seconds: float) -> str:
    """``"12.3 s"``, ``"4.5 min"`` or ``"1.6 h"``."""
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.1f} s"


def report(spec, quick: bool, results: list[dict], points: int, same: dict, overhead: dict, est: dict,
           total: float, load_at_start: float) -> list[str]:
    """The Markdown report: the executors' table, Ray's overheads, the estimates and their assumptions."""
    per_task, eval_cpu = est["per_task"], est["eval_cpu"]
    necst_epoch = (results[0]["train_seconds_mean"] or 0) / spec.epochs
    lines = [
        "# Scaling: the same sweep on the local and Ray executors",
        "",
        f"{total / 60:.1f} min in all; {machine_line()}.",
        "",
        *([f"**The machine was busy** (load average {load_at_start:.1f} at the start on {os.cpu_count()} cores): the "
           "parallel runs shared its cores with other jobs, so their ratios understate what 2 cores give; rerun on an idle "
           "machine for the scaling ratios (the overheads and per-task times are less affected).", ""]
          if load_at_start > 0.5 * (os.cpu_count() or 1) else []),
        f"The sweep: {points} points (necst trained at eps {', '.join(f'{e:g}' for e in spec.train_eps)} "
        f"for {spec.epochs} epoch{'s' if spec.epochs > 1 else ''}, {spec.bits} bits, tested at eps {', '.join(f'{v:g}' for v in spec.values)} x {spec.seeds} "
        f"seed{'s' if spec.seeds > 1 else ''}; vq+ideal at the same eps and seeds), {results[0]['trainings']} trainings, fresh cache per run, one torch "
        "thread per task. Wall time includes everything a user waits for (Ray start-up and shutdown too).",
        "",
        "| executor | wall (s) | ratio to local --jobs 1 | trainings | mean training (s) | mean point: necst (s) | mean point: vq+ideal (s) | rows = local --jobs 1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        lines.append(f"| {row['executor']} | {row['wall_seconds']:.1f} | {row['ratio_to_local_jobs1']:.2f} | {row['trainings']} | "
                     f"{row['train_seconds_mean']} | {row.get('eval_seconds_mean[necst]')} | {row.get('eval_seconds_mean[vq+ideal]')} | "
                     f"{agreement(same[row['executor']])} |")
    lines += [
        "",
        "Rows compared on every column except wall_seconds, device, host and checkpoint_sha256 (a checkpoint's metadata "
        "records its training's wall time, so two trainings of one configuration differ in sha256, not in weights). "
        "One worker trains the sweep's 2 NECST trainings as one batched ensemble, two workers as 2 single trainings: "
        "their weights match in distribution only, so learned rows differ between the groupings; the check is that "
        "executors with as many workers give the same rows, and that the separated codec's rows never differ.",
        "",
        "## Ray's overhead (embedded Ray, 2 CPUs, same run)",
        "",
        f"- start-up {overhead['startup_seconds']:.2f} s, shutdown {overhead['shutdown_seconds']:.2f} s",
        f"- no-op task round trip, one at a time: {overhead['roundtrip_seconds'] * 1e3:.2f} ms",
        f"- no-op tasks submitted at once ({overhead['batched_tasks']}): {overhead['per_task_seconds_batched'] * 1e3:.2f} ms per task",
    ]
    if "checkpoint_bytes" in overhead:
        lines.append(f"- shipping one checkpoint ({overhead['checkpoint_bytes'] / 1e6:.2f} MB) to a task through the object store "
                     f"(put + fetch + sha256 check, beyond a no-op round trip): {overhead['checkpoint_ship_seconds'] * 1e3:.2f} ms")
    lines += [
        "",
        "## Estimates",
        "",
        f"From a list scheduler (longest ready task first; a point starts after its training; IABF's seeds 1-2 after the "
        f"lambda selection run of their eps), each task paying {per_task * 1e3:.1f} ms of Ray overhead (batched no-op + one "
        f"checkpoint shipped), plus start-up and shutdown ({est['startup']:.1f} s).",
        "",
        f"- Converged Table 1: 40 trainings (8 IABF lambda-selection runs, 24 ABF/NECST runs, 8 IABF runs with the chosen "
        f"lambda), per-training times from {est['table1_source']}.",
        f"- 1,000-point sweep: NECST, ABF and IABF trained at 4 eps each (12 converged trainings, the same per-codec times), "
        f"50 points per trained codec (600) at {eval_cpu['learned']:.3f} s each, and 400 separated-codec points at "
        f"{eval_cpu['separated']:.3f} s each (the mean point times of `local --jobs 1` above"
        f"{', full test set' if not quick else ''}).",
        f"- GPU speed over one CPU thread: {est['gpu_source']}. Assumed: 4 tasks sharing a GPU (0.25 each) each keep that speed "
        "(small models leave a GPU mostly idle), separated codecs' points stay at this machine's CPU speed, each node has "
        "CPUs for its tasks, and the cluster is started beforehand (joining it costs about the embedded start-up).",
        "",
        "| where | converged Table 1 | 1,000-point sweep |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {duration(t1)} | {duration(t2)} |" for label, t1, t2 in est["rows"]]
    lines += [
        "",
        f"Ray's overhead is small next to the tasks: {per_task * 1e3:.1f} ms per task against {necst_epoch:.2f} s per "
        f"NECST epoch ({spec.bits} bits, one thread) and a {eval_cpu['learned']:.3f} s point; the 1,000-point sweep pays "
        f"about {1012 * per_task:.0f} s of it in all, spread over the slots. The long pole of Table 1 on 8+ slots is the "
        "longest training followed by its dependent phase (IABF selection, then IABF seeds), not the number of nodes.",
    ]
    return lines


def main(argv=None) -> int:
    parser = runlib.benchmark_parser(__file__, __doc__, quick="tiny budget", threads=False)
    parser.add_argument("--gpu-csv", type=Path, default=RESULTS / "gpu.csv",
                        help="benchmarks.gpu's CSV: measured CPU vs CUDA seconds per epoch and per evaluation")
    parser.add_argument("--gpu-speedup", type=float, default=3.0,
                        help="speed of one GPU task over one CPU thread where --gpu-csv has no measurement")
    args = runlib.parse_args(parser, argv)
    try:
        from commsim.ray_executor import import_ray

        import_ray()
    except ValueError as exc:
        return runlib.usage_error(exc)
    os.environ["COMMSIM_THREADS"] = "1"  # one torch thread per training / evaluation, whatever the executor
    import torch

    torch.set_num_threads(1)
    spec = sweep_spec(args.quick)
    load_at_start = os.getloadavg()[0]
    results, frames, overhead, total = measure(spec, args.quick)
    same = same_rows(frames, {r["executor"]: r["workers"] for r in results})
    args.output.csv(pd.DataFrame(results))
    est = estimate(results[0], overhead, args.gpu_csv, args.gpu_speedup)
    args.output.report(report(spec, args.quick, results, len(frames["local --jobs 1"]), same, overhead, est, total,
                              load_at_start))
    print("wall: " + ", ".join(f"{r['executor']} {r['wall_seconds']:.1f} s" for r in results))
    return 0 if all(c["same_grouping"] and c["separated_same"] for c in same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
