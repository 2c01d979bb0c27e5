"""Training runs shared by ``table1.py`` and ``convergence.py``: one JSON record per run, resumable.

A run is a dict of plain fields (:func:`spec`): codec, training eps, seed and the training
configuration (budget, recipe, estimator, batch size, peak learning rate, IABF's lambda, the VIMCO
and infomax forms, torch threads).
Its name (:func:`run_name`) spells out every field that is not the default, so the same
configuration has the same name in every runs folder and a benchmark can reuse another's records.

:func:`train_record` trains one model and :func:`save_record` writes ``RUNS/NAME.json`` with:

- ``history``: per epoch, the training loss, the validation distortion (the recipe's draws), the wall
  and CPU seconds of training + validation, and the test distortion of the current weights with one
  channel draw (test seed 0; for learning curves only, never for model selection);
- ``evals``: the best-validation weights at each eps of :data:`EVAL_EPS` and the training eps:
  validation (:data:`VAL_DRAWS` draws) and test distortion per test draw (seeds :data:`TEST_SEEDS`);
- ``per_image``: the per-image test distortion at the training eps, averaged over the test draws (the
  same seeds give every codec the same channel and sampling draws: paired comparisons).

:func:`run_specs` trains the runs that have no record yet through commsim's one executor interface
(:meth:`commsim.sweep.Executor.map`): single-threaded worker processes (:class:`commsim.sweep.LocalExecutor`),
or Ray tasks (``--executor ray``, :func:`add_executor_options`; :class:`commsim.ray_executor.RayExecutor`:
each task returns its record and this
process writes it, so no shared folder is needed); with a ``deadline`` it starts no run after it (the
records written so far stay). It is the one entry point of parallel trainings: an executor swap changes it alone.

The other half is the convention every benchmark follows (``benchmarks/README.md``, "Writing a
benchmark"): :func:`benchmark_parser` and :func:`parse_args` (``--out``, ``--quick``, ``--threads``,
the command line), :class:`Output` (the result files ``NAME[_quick]*``, each report with the
:func:`provenance` line), :func:`timed` / :func:`best_time` (wall and CPU seconds, CUDA synchronised)
and :func:`machine` / :func:`load_average` (what the numbers ran on) and :func:`markdown_table`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from commsim.core.files import atomic_write
from commsim.core.protocol import DEFAULT_EPOCHS
from commsim.learned.training import DEFAULT_ESTIMATOR, DEFAULT_RECIPE, RECIPES, TrainConfig  # the library's defaults: one copy

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
"""The default ``--out`` of every benchmark."""
EVAL_EPS = (0.1, 0.2, 0.3, 0.4)
"""Every run is also evaluated at these eps (cheap next to training): mismatch ablations need no retraining."""
TEST_SEEDS = (0, 1, 2)
"""Test draws: the first one alone is the single-draw score of the earlier tables."""
VAL_DRAWS = 3
DEFAULTS = {"dataset": "mnist", "bits": 100, "epochs": DEFAULT_EPOCHS, "recipe": DEFAULT_RECIPE, "estimator": DEFAULT_ESTIMATOR, "lam": None,
            "vimco": "paper", "infomax_on": "clean", "threads": 1, "batch_size": None, "lr": None,
            "precision": "fp32", "train_size": None, "data_path": None}
"""``batch_size`` / ``lr`` ``None``: the recipe's batch size and (peak) rate. ``train_size`` ``None``: the whole
training split, else its first ``train_size`` images (:func:`commsim.data.load_dataset`); ``data_path``: the
files of a file data set (``omniglot``, ``cifar10``, ``idx``...), not in the run's name (keep one data set's
runs per folder)."""


def spec(codec: str, eps: float, seed: int, **fields) -> dict:
    """A run: ``codec`` trained at ``eps`` from ``seed``, the other fields from :data:`DEFAULTS`.

    A ``batch_size`` or an ``lr`` equal to the recipe's is
    stored as ``None`` (the default), so the same training has one name whichever way it is asked for."""
    unknown = set(fields) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown run fields {sorted(unknown)}")
    out = {"codec": codec, "eps": float(eps), "seed": int(seed), **DEFAULTS, **fields}
    if out["batch_size"] is not None:
        if int(out["batch_size"]) < 1:
            raise ValueError(f"batch_size must be >= 1 (or None: the default), got {out['batch_size']}")
        default = RECIPES[out["recipe"]].batch_size if out["recipe"] in RECIPES else None
        out["batch_size"] = None if int(out["batch_size"]) == default else int(out["batch_size"])
    if out["lr"] is not None:
        if not float(out["lr"]) > 0:
            raise ValueError(f"lr must be positive (or None: the recipe's), got {out['lr']}")
        out["lr"] = None if out["recipe"] in RECIPES and float(out["lr"]) == RECIPES[out["recipe"]].lr else float(out["lr"])
    if out["train_size"] is not None:
        if isinstance(out["train_size"], bool) or int(out["train_size"]) != out["train_size"] or int(out["train_size"]) < 1:
            raise ValueError(f"train_size must be a whole number >= 1 (or None: the whole split), got {out['train_size']!r}")
        out["train_size"] = int(out["train_size"])
    out["name"] = run_name(out)
    return out


def run_name(s: dict) -> str:
    """``mnist-necst-eps0.1-s0-onecycle-st-e100`` plus every other non-default field."""
    name = f"{s['dataset']}-{s['codec']}-eps{s['eps']:g}-s{s['seed']}-{s['recipe']}-{s['estimator']}-e{s['epochs']}"
    if s["lam"] is not None:
        name += f"-lam{s['lam']:g}"
    if s["estimator"] == "vimco" and s["vimco"] != DEFAULTS["vimco"]:
        name += f"-vimco_{s['vimco']}"
    if s["codec"] == "iabf" and s["infomax_on"] != DEFAULTS["infomax_on"]:
        name += f"-infomax_{s['infomax_on']}"
    if s.get("precision", "fp32") != "fp32":
        name += f"-{s['precision']}"
    if s["threads"] != 1:
        name += f"-t{s['threads']}"
    if s.get("batch_size") is not None:  # records from before these fields have neither
        name += f"-b{s['batch_size']}"
    if s.get("lr") is not None:
        name += f"-lr{s['lr']:g}"
    if s.get("train_size") is not None:
        name += f"-n{s['train_size']}"
    return name


def save_record(record: dict, runs: str | Path) -> dict:
    """Write ``runs/NAME.json`` (whole or not at all) and return the record."""
    with atomic_write(Path(runs) / f"{record['name']}.json", "w") as fh:
        fh.write(json.dumps(record))
    return record


def task_config(task: dict):
    """The :class:`~commsim.learned.training.TrainConfig` of a run."""
    from commsim.learned.training import TrainConfig

    objective = {"lam": task["lam"]} if task["lam"] is not None else {}
    return TrainConfig(eps=task["eps"], epochs=task["epochs"], seed=task["seed"], objective=objective,
                       recipe=task["recipe"], estimator=task["estimator"], vimco=task["vimco"],
                       infomax_on=task["infomax_on"], lr=task.get("lr"),
                       batch_size=task.get("batch_size"),  # None: the recipe's (records from before the field too)
                       precision=task.get("precision", "fp32"))


def train_record(task: dict, device: str = "cpu", curve: bool = True) -> dict:
    """Train and evaluate one run on ``device`` (in a worker process or a Ray task) and return its record
    (with ``curve``, its history has the test distortion of each epoch's weights, one draw; without, the
    training runs no per-epoch hook). ``wall_seconds``: the wall time of ``train_and_save`` (the codec's
    build, the training with its validation and hook, the checkpoint)."""
    import tempfile

    import torch

    from commsim.learned.zoo import train_and_save
    from commsim.data import load_dataset

    torch.set_num_threads(task["threads"])
    source = load_dataset(task["dataset"], task.get("data_path"), train_size=task.get("train_size"))
    config = task_config(task)
    started, load_before = dt.datetime.now(dt.timezone.utc), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        codec, result, _ = train_and_save(task["codec"], source, task["bits"], config, out=Path(scratch) / "m.safetensors",
                                          device=device, progress=False,
                                          on_epoch=learning_curve(source, task["eps"]) if curve else None)
        wall = time.perf_counter() - start
    return {**evaluated_record(task, device, source, codec, config, result, started, load_before), "wall_seconds": wall}


def learning_curve(source, eps: float) -> Callable:
    """The per-epoch hook of a run: the test distortion of the current weights at ``eps``, one channel draw
    (the first of :data:`TEST_SEEDS`; for learning curves only, never for model selection)."""
    from commsim.channels import BSC
    from commsim.pipeline import Pipeline, distortion_metric

    metric = distortion_metric(source)

    def hook(codec, row):
        return {f"test_{metric}": Pipeline(source, codec, BSC()).evaluate("test", seed=TEST_SEEDS[0], eps=eps).metrics[metric].mean}
    return hook


def train_group_records(tasks: list[dict], device: str = "cpu") -> list[dict]:
    """Train runs that differ only in eps, seed and lambda as one batched ensemble
    (:func:`commsim.learned.zoo.train_and_save_many`) and evaluate each as :func:`train_record` does (the
    same per-epoch test curve); their records say ``ensemble`` (the members); a member's ``train_seconds``
    is its share of the ensemble's."""
    import tempfile

    import torch

    from commsim.learned.zoo import train_and_save_many
    from commsim.data import load_dataset

    torch.set_num_threads(tasks[0]["threads"])
    source = load_dataset(tasks[0]["dataset"], tasks[0].get("data_path"), train_size=tasks[0].get("train_size"))
    configs = [task_config(t) for t in tasks]
    started, load_before = dt.datetime.now(dt.timezone.utc), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        made = train_and_save_many(tasks[0]["codec"], source, tasks[0]["bits"], configs, device=device, progress=False,
                                   outs=[Path(scratch) / f"{t['name']}.safetensors" for t in tasks],
                                   on_epoch=[learning_curve(source, t["eps"]) for t in tasks])
    return [{**evaluated_record(t, device, source, codec, config, result, started, load_before), "ensemble": len(tasks)}
            for t, config, (codec, result, _) in zip(tasks, configs, made)]


def evaluated_record(task: dict, device: str, source, codec, config, result, started, load_before: float) -> dict:
    """The record of a trained run: validation and test at every eps of :data:`EVAL_EPS` (and its own), the
    per-image test distortion, the training's history and times."""
    import torch

    from commsim.channels import BSC
    from commsim.learned.training import seed_streams
    from commsim.pipeline import Pipeline, distortion_metric

    metric = distortion_metric(source)
    pipeline = Pipeline(source, codec, BSC())
    # validation draws of the evaluation: the training's own validation stream (the same draws it selected on)
    val_seeds = [int(v) for v in seed_streams(task["seed"])["validation"].generate_state(VAL_DRAWS)]
    evals, per_image = {}, None
    for eps in sorted({*EVAL_EPS, task["eps"]}):
        val = float(np.mean([pipeline.evaluate("val", seed=v, eps=eps).metrics[metric].mean for v in val_seeds]))
        tests = [pipeline.evaluate("test", seed=t, eps=eps) for t in TEST_SEEDS]
        evals[f"{eps:g}"] = {"val": val, "test_draws": [r.metrics[metric].mean for r in tests],
                             "test": float(np.mean([r.metrics[metric].mean for r in tests])),
                             "test_single_low": tests[0].metrics[metric].low,
                             "test_single_high": tests[0].metrics[metric].high}
        if eps == task["eps"]:
            per_image = torch.stack([r.per_image[metric] for r in tests]).mean(0)
    own = evals[f"{task['eps']:g}"]
    return {**task, "device": device, "metric": metric, "val": result.val_value, "best_epoch": result.best_epoch,
            "epochs_run": len(result.history), "stop": result.stop, "lr": config.lr, "patience": config.patience,
            "batch_size": config.batch_size, "train_images": source.size("train"),
            "test": own["test"], "test_single": own["test_draws"][0], "test_draws": own["test_draws"],
            "train_seconds": result.seconds, "train_cpu_seconds": result.cpu_seconds,
            "started_utc": started.strftime("%H:%M:%S"), "load_before": load_before, "load_after": os.getloadavg()[0],
            "evals": evals, "history": [{k: round(v, 6) if isinstance(v, float) else v for k, v in h.items()}
                                        for h in result.history], "per_image": [round(float(v), 4) for v in per_image]}


def _may_start(deadline: float | None) -> bool:
    return deadline is None or time.time() < deadline


def train_item(item: tuple[dict | list[dict], str]) -> list[dict]:
    """The records of one ``(task, device)`` or ``([tasks], device)`` (an ensemble; what the executor's tasks run)."""
    tasks, device = item
    return train_group_records(tasks, device) if isinstance(tasks, list) else [train_record(tasks, device)]


MEMBER_FIELDS = ("eps", "seed", "lam", "name")
"""What the members of one ensemble may differ in (the rest of a run's fields they share)."""


def ensemble_groups(tasks: list[dict], parts: int, most: int = 36) -> list[dict | list[dict]]:
    """``tasks`` as executor items: those that differ only in :data:`MEMBER_FIELDS` stacked into ensembles,
    each such set dealt over up to ``parts`` groups (one per worker) of at most ``most``; a lone task stays a task."""
    from commsim.core.protocol import group_requirements

    shared = lambda t: json.dumps({k: v for k, v in t.items() if k not in MEMBER_FIELDS}, sort_keys=True)
    return [g if len(g) > 1 else g[0] for g in group_requirements(tasks, parts=parts, most=most, together=shared)]


def load_done(*folders: Path) -> dict:
    """The records in ``folders`` by name (the first folder wins a name found twice)."""
    done = {}
    for folder in reversed([Path(f) for f in folders]):
        if folder.is_dir():
            done.update({p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")
                         if not p.stem.startswith(("_", "."))})  # ".NAME-*.json": a write cut short
    return done


def parse_deadline(text: str | None) -> float | None:
    """``"13:05"`` (UTC, today) -> a ``time.time()`` value; ``None`` -> no deadline."""
    if not text:
        return None
    try:
        hours, minutes = (int(v) for v in text.split(":"))
        when = dt.datetime.now(dt.timezone.utc).replace(hour=hours, minute=minutes, second=0, microsecond=0)
    except ValueError:
        raise ValueError(f"--deadline takes HH:MM (UTC), got {text!r}") from None
    return when.timestamp()


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """``--executor local|ray``, ``--ray-address``, ``--cpus-per-task``, ``--gpus-per-task`` (as ``commsim sweep``)
    and ``--ensembles`` (for :func:`run_specs`)."""
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: --jobs worker processes; ray: Ray tasks (pip install 'commsim[ray]')")
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (HOST:PORT or auto; default: embedded)")
    parser.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs per Ray task (at least the run's threads)")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs per Ray task (> 0: the trainings run on CUDA)")
    parser.add_argument("--ensembles", action="store_true",
                        help="train runs that differ only in eps, seed and lambda as batched ensembles, one per worker "
                             "(the same records; weights match single trainings in distribution, not bit for bit)")


def cluster_from_args(args: argparse.Namespace):
    """``None`` (local) or a checked :class:`commsim.ray_executor.RayCluster`; ``ValueError`` on a bad
    option, a missing Ray or an address that does not answer (before any training)."""
    if args.executor == "local":
        return None
    from commsim.ray_executor import RayCluster, check_reachable, import_ray

    import_ray()
    cluster = RayCluster(address=args.ray_address, cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task)
    if cluster.address:
        check_reachable(cluster.address)
    return cluster


def run_specs(specs: list[dict], runs: Path, jobs: int, done: dict, deadline: float | None = None,
              cluster=None, ensembles: bool = False) -> list[str]:
    """Train the ``specs`` without a record in ``done`` (which gains the new ones), ``jobs`` at a time
    (with a Ray ``cluster``: as many as it holds), in the given order; start none after ``deadline``.
    With ``ensembles``, runs that differ only in eps, seed and lambda train as batched ensembles, one per
    worker (:func:`ensemble_groups`; their records carry the same per-epoch test curve). Returns the names left untrained."""
    todo = [s for s in dict((s["name"], s) for s in specs).values() if s["name"] not in done]
    if not todo:
        return []
    runs.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} trainings to run ({len(specs) - len(todo)} already done)", flush=True)
    from commsim.ray_executor import RayExecutor
    from commsim.sweep import LocalExecutor

    # the one executor interface of commsim (Executor.map): local worker processes or Ray tasks
    executor = RayExecutor(cluster) if cluster is not None else LocalExecutor(jobs)
    device = cluster.device if cluster is not None else "cpu"
    start = time.perf_counter()
    items = ensemble_groups(todo, parts=jobs if cluster is None else 1) if ensembles else todo
    first = lambda item: item[0][0] if isinstance(item[0], list) else item[0]
    results = executor.map(train_item, [(t, device) for t in items], may_start=lambda: _may_start(deadline),
                           cpus=lambda item: first(item)["threads"])  # a 2-thread run holds 2 CPUs on Ray
    finished = 0
    for record in (r for _, records in results for r in records):
        finished += 1
        done[record["name"]] = save_record(record, runs)
        print(f"[{finished}/{len(todo)}] {record['name']}: test {record['metric']} {record['test']:.3f} "
              f"(single draw {record['test_single']:.3f}, val {record['val']:.3f}, best epoch "
              f"{record['best_epoch']}/{record['epochs_run']} {record['stop']}, {record['train_seconds']:.0f} s) "
              f"elapsed {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    left = [t["name"] for t in todo if t["name"] not in done]
    if left:
        print(f"deadline: {len(left)} trainings not started: {', '.join(left)}", flush=True)
    return left


def ensemble_share(source, members: int, device: str = "cpu", **config) -> float:
    """Seconds a member's share of the last epoch's training takes, for ``members`` NECST members (100 bits;
    eps 0.1-0.4 by turns, a seed per round of four) trained as one batched ensemble with ``config``
    (:class:`~commsim.learned.training.TrainConfig` fields, e.g. ``epochs``, ``batch_size``, ``precision``;
    no plateau stop). ``source.size("train") / share`` is the ensemble's images/s, ``share * members`` its epoch."""
    from commsim.learned.ensemble import train_ensemble
    from commsim.learned.training import TrainConfig
    from commsim.learned.zoo import build_codec

    configs = [TrainConfig(eps=(0.1, 0.2, 0.3, 0.4)[i % 4], seed=i // 4, patience=0, **config) for i in range(members)]
    codecs = [build_codec("necst", source, 100, seed=c.seed).to(device) for c in configs]
    results = train_ensemble(codecs, source, configs, progress=False)
    return results[0].history[-1]["train_seconds"]  # a member's train_seconds: its share of the epoch


# -- the convention: command line, result files, timing, machine --------------------------------

def benchmark_parser(file: str, doc: str | None, quick: str | None, threads: bool = True,
                     out: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark shares: ``--out FOLDER`` (default ``benchmarks/results``), ``--quick``
    (``quick`` says what it shrinks; its result files are named ``NAME_quick.*``; ``None``: no quick form)
    and ``--threads N`` (torch threads, default 1, 0: torch's default). ``file`` is the script's
    ``__file__``: the program is ``python -m benchmarks.NAME``, the result files ``NAME*``."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{Path(file).stem}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if out:
        parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files (default benchmarks/results)")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=f"{quick} (a smoke test; writes NAME_quick.*)")
    else:
        parser.set_defaults(quick=False)
    if threads:
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser``'s arguments plus ``args.output`` (an :class:`Output` in ``--out``, named after the script,
    ``_quick`` with ``--quick``, stamped with this command line); sets torch's threads from ``--threads``."""
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    name = parser.prog.rsplit(".", 1)[-1] + ("_quick" if args.quick else "")
    args.output = Output(getattr(args, "out", RESULTS), name, " ".join([parser.prog, shlex.join(argv)]).strip())
    if getattr(args, "threads", 0) > 0:
        import torch

        torch.set_num_threads(args.threads)
    return args


def usage_error(exc: Exception) -> int:
    """Say ``Error: ...`` on stderr and return 2, the exit status of a bad argument (before any work)."""
    print(f"Error: {exc}", file=sys.stderr)
    return 2


@dataclass(frozen=True)
class Output:
    """A benchmark's result files: ``folder/NAME{part}{suffix}`` (``table1_quick.md``,
    ``convergence_summary.csv``); reports and stamped CSVs carry :func:`provenance` of ``command``."""

    folder: Path
    name: str
    command: str

    def path(self, suffix: str, part: str = "") -> Path:
        """``folder/NAME{part}{suffix}``, the folder made."""
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        return Path(self.folder) / f"{self.name}{part}{suffix}"

    def report(self, lines: list[str], part: str = "") -> Path:
        """Write ``lines`` as ``NAME{part}.md`` (whole or not at all) with the provenance line after the
        title, and say so."""
        lines = [*lines[:1], "", provenance(self.command), *lines[1:]] if lines else [provenance(self.command)]
        return self._write(self.path(".md", part), "\n".join(lines).rstrip("\n") + "\n")

    def csv(self, frame, part: str = "", stamp: bool = False) -> Path:
        """Write the DataFrame ``frame`` as ``NAME{part}.csv`` (no index); with ``stamp``, a first line
        ``# `` + the provenance line (read it back with ``pd.read_csv(path, comment="#")``)."""
        text = frame.to_csv(index=False)
        return self._write(self.path(".csv", part), (f"# {provenance(self.command)}\n" if stamp else "") + text)

    @staticmethod
    def _write(path: Path, text: str) -> Path:
        with atomic_write(path, "w") as fh:
            fh.write(text)
        print(f"wrote {path}", flush=True)
        return path


def pyplot():
    """matplotlib's ``pyplot`` on the non-interactive Agg backend (benchmarks draw files, never windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` (whole or not at all; the format from the suffix, 110 dpi) and close it."""
    from commsim.core.files import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    pyplot().close(fig)
    return path


def provenance(command: str) -> str:
    """One line naming the ``command`` and the commit (:func:`git_commit`) that made a result, and when."""
    return f"Made by `{command}` at commit {git_commit()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC."


PROVENANCE = re.compile(r"^(?:# )?Made by `(?P<command>[^`]+)` at commit (?P<commit>[0-9a-f]{7,40})(?P<local> \+ local changes)?, "
                        r"(?P<date>\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?) UTC\.", re.M)
"""The line :func:`provenance` writes (a stamped CSV's first line is ``# `` + it); a line written after the fact from
git history says so after the full stop (``Made by ... UTC. Reconstructed: ...``). ``unknown`` is no commit."""


def read_provenance(text: str) -> dict | None:
    """The first provenance line of a result file's ``text`` (:data:`PROVENANCE`): ``{"command", "commit", "local",
    "date"}`` (``local``: made with uncommitted changes), or ``None`` when it has none."""
    found = PROVENANCE.search(text)
    return None if found is None else {**found.groupdict(), "local": bool(found["local"])}


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table as report lines: ``header``, the separator, one line per row (cells as given, else ``str``)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def sync(device: str = "cpu") -> None:
    """Wait for the CUDA work queued so far (nothing on the CPU): a timer then reads finished work."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, float, float]:
    """``(fn(), wall seconds, CPU seconds of this process)``, ``device`` synchronised before and after."""
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start, time.process_time() - cpu


def best_time(fn: Callable[[], Any], repeats: int, device: str = "cpu", warmup: int = 1) -> tuple[Any, float]:
    """``(fn(), the least wall seconds of repeats calls)`` after ``warmup`` untimed calls (tables, caches)."""
    if repeats < 1:
        raise ValueError(f"best_time needs repeats >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        out, seconds, _ = timed(fn, device)
        best = min(best, seconds)
    return out, best


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """``"<CPU model>, 2 CPU cores"``: what a report's seconds were measured on."""
    return f"{cpu_model()}, {os.cpu_count()} CPU cores"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, ``"1.2 0.9 0.8"`` (a shared machine makes seconds indicative)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def git_commit() -> str:
    """The commit the benchmarks run at, ``+ local changes`` when tracked files other than the results
    differ from it (``unknown`` without git)."""
    import subprocess

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    return commit + (" + local changes" if git("status", "--porcelain", "--untracked-files=no", "--", "..", ":!results") else "")
