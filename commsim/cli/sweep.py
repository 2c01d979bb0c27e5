"""``commsim sweep``: every codec at every channel value, one CSV row per point."""
from __future__ import annotations

from pathlib import Path

import click

from commsim.cli.checks import args, check_bits, check_new_csv, open_source, start_work, swept
from commsim.cli.options import ChannelName, MAX_SEED, dataset_options, device_option, epochs_option, range_options, training_options


@click.command("sweep")
@click.option("--codec", "codecs", required=True, help="Comma-separated codecs, e.g. necst,iabf,jpeg+ldpc.")
@click.option("--channel", "channel_name", type=ChannelName(), default="bsc", show_default=True,
              help="Registered channel or a user channel as module:NAME or path/file.py:NAME.")
@range_options(("--eps", "eps", "eps values: START:STOP:STEP or a list 0.1,0.2."),
               ("--ebno-db", "ebno_db", "Eb/N0 values in dB (awgn), same syntax."))
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Evaluation seeds per point.")
@click.option("--train-eps", default="same", show_default=True,
              help="'same' (train at each test eps) or a list of training eps (mismatch grid).")
@epochs_option("Budget of on-demand training, in epochs")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N test images.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Parallel processes for the points (local executor) [default: 1].")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (--jobs processes); ray: Ray tasks, on this machine or a cluster (pip install 'commsim[ray]').")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join (HOST:PORT or auto) [default: start an embedded Ray on this machine].")
@click.option("--cpus-per-task", type=float, default=None, help="CPUs (torch threads) per Ray task; fractions share a core [default: 1].")
@click.option("--gpus-per-task", type=float, default=None, help="GPUs per Ray task (fractions share a GPU; > 0 runs on CUDA) [default: 0].")
@click.option("--point-timeout", type=float, default=None, metavar="SECONDS",
              help="Stop the sweep (finished rows kept) when one point takes longer, e.g. a user channel that hangs.")
@click.option("--resume", is_flag=True, help="Continue an existing results.csv: skip finished points.")
@click.option("--out", type=click.Path(file_okay=False), default="results", show_default=True, help="Output folder.")
@training_options
@dataset_options
@click.option("--bits", type=click.IntRange(min=1), default=100, show_default=True, help="Channel bits per image (m).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seed of the trainings.")
@device_option
def command(**options):
    """Evaluate every codec at every channel value; write one CSV row per point as it finishes."""
    from commsim.ray_executor import executor_from_options
    from commsim.sweep import SweepSpec, parse_values, run_sweep

    o = args(options)
    runner = executor_from_options(o.executor, jobs=o.jobs, address=o.ray_address, cpus_per_task=o.cpus_per_task,
                                   gpus_per_task=o.gpus_per_task, device=o.device)
    param, values, fixed = swept(o, {"--eps": "eps", "--ebno-db": "ebno_db"})
    train_eps = None if o.train_eps.strip() == "same" else parse_values(o.train_eps)
    spec = SweepSpec(codecs=o.codecs.split(","), channel=o.channel_name, param=param, values=values, bits=o.bits,
                     dataset=o.dataset, data_path=o.data_path, seeds=o.seeds, train_eps=train_eps, fixed=fixed,
                     epochs=o.epochs, images=o.images, precision=o.precision, train_seed=o.seed, limit=o.limit, recipe=o.recipe, estimator=o.estimator,
                     point_timeout=o.point_timeout)
    check_bits(spec.codecs, spec.bits)
    spec.check()
    csv = Path(o.out) / "results.csv"
    check_new_csv(csv, o.resume)  # checked without creating anything: the folder is made only when the sweep starts
    open_source(o)
    spec.device = str(start_work(runner.device_for(o.device)))
    click.echo(f"results: {run_sweep(spec, csv, resume=o.resume, executor=runner)}")
