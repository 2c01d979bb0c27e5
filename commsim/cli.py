"""The ``commsim`` command line: ``list``, ``train``, ``run``, ``sweep``, ``plot``, ``sample``.

Every bad input ends in one line ``Error: ...`` on stderr and exit code 2, with nothing written.

Start-up is light: names for ``--help``, ``list`` and the options' choices come from the generated
catalog (:mod:`commsim.core.catalog`), and each command imports the heavy modules (torch, the codecs)
when it runs. The CLI is the only module that defers imports this way.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import traceback
import warnings
from pathlib import Path

import click

from commsim import __version__
from commsim.core import catalog
from commsim.core.files import CacheWarning, atomic_write, check_writable

class UserError(click.ClickException):
    """A bad input found while a command runs: one line, exit code 2."""

    exit_code = 2


def one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


class OneLineWarnings:
    """Shows commsim's own warnings (an ignored cache entry) as one line on stderr, each text once per
    command; other warnings as Python shows them."""

    def __init__(self, others):
        self.others = others
        self.seen: set[str] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, CacheWarning):
            self.others(message, category, filename, lineno, file, line)
        elif str(message) not in self.seen:
            self.seen.add(str(message))
            click.echo(f"warning: {message}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``with`` / ``finally`` block (worker pools, Ray, locks,
    partial files) cleans up on the way out; the command then exits with 143."""


@contextlib.contextmanager
def stopped_by_sigterm():
    """Within the block (a command run in the main thread), SIGTERM raises :class:`Terminated`."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner's): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CommsimGroup(click.Group):
    """Turns user errors (bad options, unknown names, bad files) into one line and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        with warnings.catch_warnings(), stopped_by_sigterm():
            warnings.simplefilter("always", CacheWarning)
            warnings.showwarning = OneLineWarnings(warnings.showwarning)
            try:
                return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.exceptions.Exit as exc:
                sys.exit(exc.exit_code)
            except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # Ctrl-C or SIGTERM: the blocks cleaned up
                cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__
                if isinstance(cause, Terminated):
                    click.echo("Error: stopped (SIGTERM); the rows and files finished so far are kept", err=True)
                    sys.exit(143)
                click.echo("Error: interrupted (Ctrl-C); the rows and files finished so far are kept", err=True)
                sys.exit(130)
            except click.ClickException as exc:  # click may spread one message over lines (e.g. the choices)
                message = " ".join(line.strip() for line in exc.format_message().splitlines() if line.strip())
                click.echo(f"Error: {message}", err=True)
                sys.exit(2)
            except (ValueError, OSError) as exc:
                click.echo(f"Error: {one_line(exc)}", err=True)
                sys.exit(2)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as exc:  # CheckpointError, ChannelModuleError, ... are ValueErrors
            if ctx.params.get("show_traceback"):
                traceback.print_exception(exc)
            raise UserError(one_line(exc)) from None


@click.group(cls=CommsimGroup)
@click.option("--traceback", "show_traceback", is_flag=True,
              help="On an error, print the whole traceback (e.g. of a user channel module) before the one-line message.")
@click.version_option(__version__, prog_name="commsim")
def cli(show_traceback):
    """Simulate Source -> Encoder -> Channel -> Decoder links with learned and separated codes."""


@cli.command("list")
def list_blocks():
    """Print the registered codecs, source codes, channel codes, channels and data sets."""
    for section in catalog.SECTIONS:
        click.echo(f"{catalog.TITLES[section]}:")
        entries = catalog.load()[section]
        if section == "codecs":  # every SOURCE+CODE pair is a codec: one line, the parts listed below
            entries = {**{n: t for n, t in entries.items() if "+" not in n}, catalog.SEPARATED_LINE[0]: catalog.SEPARATED_LINE[1]}
        for name, text in entries.items():
            click.echo(f"  {name:<18} {text}")


def build_catalog() -> dict:
    """The catalog (:mod:`commsim.core.catalog`) from the live registries (imports every block: slow)."""
    from commsim import CHANNELS, CODECS, DATASETS
    from commsim.core.device import DEVICES
    from commsim.fec import CHANNEL_CODES
    from commsim.source_codes import SOURCE_CODES
    from commsim.learned.estimators import ESTIMATORS
    from commsim.learned.training import DECODER_INPUTS, DEFAULT_EPOCHS, DEFAULT_ESTIMATOR, DEFAULT_RECIPE, MAX_EPOCHS, RECIPES

    registries = {"codecs": CODECS, "channels": CHANNELS, "datasets": DATASETS, "channel_codes": CHANNEL_CODES,
                  "source_codes": SOURCE_CODES}
    built = {section: {name: registries[section].describe(name) for name in registries[section].names()}
             for section in catalog.SECTIONS}
    built["choices"] = {"recipes": list(RECIPES), "estimators": list(ESTIMATORS), "devices": list(DEVICES),
                        "decoder_inputs": list(DECODER_INPUTS)}
    built["defaults"] = {"epochs": DEFAULT_EPOCHS, "max_epochs": MAX_EPOCHS, "recipe": DEFAULT_RECIPE,
                         "estimator": DEFAULT_ESTIMATOR}
    return built


@cli.command("catalog", hidden=True)
@click.option("--write", is_flag=True, help="Rewrite commsim/core/catalog.json from the registries.")
def catalog_command(write):
    """(For developers) check the generated catalog of names against the registries, or rewrite it."""
    import json

    built = build_catalog()
    if write:
        with atomic_write(catalog.CATALOG_FILE, "w") as fh:
            fh.write(json.dumps(built, indent=1) + "\n")
        click.echo(f"wrote {catalog.CATALOG_FILE}")
    elif built != catalog.load():
        raise UserError(f"{catalog.CATALOG_FILE} is stale; run `commsim catalog --write`")
    else:
        click.echo("catalog up to date")


MAX_SEED = 2**62
"""Largest --seed: seeds with their named offsets stay within torch's 64-bit generator seeds."""


def check_bits(codec: str, bits: int) -> int:
    """``--bits`` within what the codec and memory can hold (the reason in the message)."""
    cls = registered_codec(codec)
    try:
        return cls.check_bits(bits)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bits") from None


def registered_codec(name: str):
    """The codec class of a registered name (the package's ``CODECS`` arrives filled)."""
    from commsim import CODECS

    return CODECS.get(name)


def start_work(device: str):
    """Before the first expensive step: the device (checked) and the CPU threads (:mod:`commsim.core.threads`)."""
    from commsim.core import threads
    from commsim.core.device import resolve_device

    resolved = resolve_device(device)
    threads.configure()
    return resolved


def check_output(path: str | None, suffix: str, flag: str) -> None:
    """``path`` ends in ``suffix`` and can be written (checked before any work)."""
    if path is None:
        return
    if not path.lower().endswith(suffix):
        raise click.BadParameter(f"must end in {suffix}", param_hint=flag)
    try:
        check_writable(path)
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def check_checkpoint(path: str | None) -> None:
    if path is not None and not Path(path).is_file():
        raise click.BadParameter(f"checkpoint {path} does not exist; train one with `commsim train`", param_hint="--checkpoint")


def say(message: str) -> None:
    """A notice for the user (stderr, so that stdout keeps the results)."""
    click.echo(message, err=True)


def checkpoint_line(path, metadata: dict, how: str) -> str:
    from commsim.learned.zoo import describe_training

    return f"checkpoint: {Path(path).name} (trained at {describe_training(metadata)}; {how})"


def dataset_options(f):
    f = click.option("--data-path", type=click.Path(), default=None, help="Folder or file for file-based data sets.")(f)
    return click.option("--dataset", type=click.Choice(catalog.names("datasets")), default="mnist", show_default=True,
                        help="Data set (the embedded digits by default).")(f)


def common_options(f):
    f = click.option("--device", type=click.Choice(catalog.names("devices")), default="auto", show_default=True,
                     help="auto = CUDA when available, else CPU.")(f)
    f = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seed of every random draw.")(f)
    return click.option("--bits", type=click.IntRange(min=1), default=100, show_default=True,
                        help="Channel bits per image (m).")(f)


def training_options(f):
    """``--recipe`` and ``--estimator`` of a training (``None``: the defaults, or any cached checkpoint)."""
    f = click.option("--estimator", type=click.Choice(catalog.names("estimators")), default=None,
                     help=f"Gradient estimator of a training [default: {catalog.default('estimator')}].")(f)
    return click.option("--recipe", type=click.Choice(catalog.names("recipes")), default=None,
                        help=f"Training recipe: 'paper' = constant Adam 1e-3 as in the reference [default: {catalog.default('recipe')}].")(f)


def open_source(dataset: str, data_path: str | None):
    from commsim.data import load_dataset

    return load_dataset(dataset, data_path)


def training_channel_options(f):
    """``--channel``, ``--eps``, ``--ebno-db``, ``--param`` and ``--decoder-input`` of a training."""
    f = click.option("--decoder-input", type=click.Choice(catalog.names("decoder_inputs")), default="hard", show_default=True,
                     help="What the learned decoder reads: hard decisions of the LLRs, or soft probabilities sigmoid(llr).")(f)
    f = click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
                     help="Other parameters of the training channel (e.g. gilbert_elliott's p_gb), repeatable.")(f)
    f = click.option("--ebno-db", type=float, default=None, help="Eb/N0 in dB of an awgn training channel.")(f)
    f = click.option("--eps", type=float, default=None,
                     help="eps of the training channel (bsc crossover, bec erasure, z) [default: 0.1].")(f)
    return click.option("--channel", "channel_name", type=click.Choice(catalog.names("channels")), default="bsc",
                        show_default=True, help="Channel the codec is trained over.")(f)


def training_channel(channel_name: str, eps, ebno_db, extra: tuple[str, ...]) -> dict:
    """The training channel's parameters from the options (checked); ``eps`` defaults to 0.1 where the
    channel has one."""
    from commsim.channels import get_channel

    if eps is None and "eps" in get_channel(channel_name).params and not any(i.strip().startswith("eps=") for i in extra):
        eps = 0.1
    return channel_params(channel_name, eps, ebno_db, extra)


def check_trains_over(codec: str, channel_name: str) -> None:
    """abf / iabf train over the BSC only (checked before any work)."""
    if channel_name != "bsc" and getattr(registered_codec(codec).objective_class, "folds_bsc_only", False):
        raise click.BadParameter(f"{codec} trains over the BSC only (its adversarial noise is bit flips at the training eps); "
                                 f"train necst over {channel_name}", param_hint="--channel")


@cli.command()
@click.option("--codec", required=True, type=click.Choice(catalog.names("codecs")), help="Learned codec to train.")
@training_channel_options
@click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=catalog.default("epochs"), show_default=True,
              help="Training budget in epochs (the same default as run/sweep; the paper's set-up used 200 with --recipe paper).")
@click.option("--patience", type=click.IntRange(min=0), default=None,
              help="Stop after this many epochs without validation gain (0 = never) [default: the recipe's].")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint file (default: the cache).")
@training_options
@dataset_options
@common_options
def train(codec, channel_name, eps, ebno_db, extra, decoder_input, epochs, patience, out, recipe, estimator, dataset, data_path,
          bits, seed, device):
    """Train a learned codec over a channel (the BSC by default) and save a safetensors checkpoint."""
    from commsim.channels import get_channel
    from commsim.learned.training import TrainConfig
    from commsim.learned.zoo import train_and_save
    from commsim.pipeline import Pipeline, distortion_metric

    if not getattr(registered_codec(codec), "learned", False):
        raise click.UsageError(f"codec {codec!r} is a separated scheme and needs no training; use `commsim run`")
    check_bits(codec, bits)
    params = training_channel(channel_name, eps, ebno_db, extra)
    check_trains_over(codec, channel_name)
    check_output(out, ".safetensors", "--out")
    config = TrainConfig(epochs=epochs, seed=seed, patience=patience, recipe=recipe, estimator=estimator,
                         channel=channel_name, channel_params=params, decoder_input=decoder_input)
    source = open_source(dataset, data_path)
    start_work(device)
    learned, result, path = train_and_save(codec, source, bits, config, out=out, device=device)
    metric = distortion_metric(source)
    test = Pipeline(source, learned, get_channel(channel_name)).evaluate("test", seed=seed, **params).metrics[metric]
    over = config.describe_channel() + (f", {decoder_input} decoder input" if decoder_input != "hard" else "")
    click.echo(f"trained {codec} on {source.name}, {bits} bits over {over}: best epoch {result.best_epoch}/{len(result.history)}, "
               f"val {metric} {result.val_value:.4f}, test {metric} {test.mean:.4f} "
               f"[{test.low:.4f}, {test.high:.4f}] (n={test.count}), {result.seconds:.0f} s")
    click.echo(f"checkpoint: {path} (trained over {over})")


def parse_param_assignments(items: tuple[str, ...]) -> dict[str, float]:
    """``--param NAME=VALUE`` options -> ``{NAME: float(VALUE)}`` (:mod:`commsim.channels.params`)."""
    from commsim.channels.params import parse_assignments

    return parse_assignments(items)


def channel_params(channel_name: str, eps, ebno_db, extra: tuple[str, ...]) -> dict:
    """Collect channel parameters from --eps / --ebno-db / --param NAME=VALUE and check them."""
    import torch

    from commsim.channels import get_channel

    channel = get_channel(channel_name)
    from commsim.channels.params import merge_params

    if eps is not None and "eps" not in channel.params:
        raise click.BadParameter(f"channel {channel_name!r} has no eps; its parameters are {', '.join(channel.params)}", param_hint="--eps")
    if ebno_db is not None and "ebno_db" not in channel.params:
        raise click.BadParameter(f"channel {channel_name!r} has no ebno_db", param_hint="--ebno-db")
    params = merge_params({"eps": ("--eps", eps), "ebno_db": ("--ebno-db", ebno_db)}, parse_param_assignments(extra))
    required = [n for n, p in channel.params.items() if p.default is None and n not in params]
    if required:
        flag = "--eps" if required[0] == "eps" else f"--param {required[0]}=VALUE"
        raise click.BadParameter(f"channel {channel_name!r} needs {required[0]}; pass {flag}", param_hint=flag.split()[0])
    channel.check_params(params, torch.zeros(1, 1))
    return params


def run_train_eps(codec: str, channel_name: str, params: dict, train_eps: float | None) -> float | None:
    """The training eps of a learned codec for ``run``: ``--train-eps``, else the channel's eps when
    a codec can be trained at it (<= 0.5), else 0.1 (with a notice saying so)."""
    if not getattr(registered_codec(codec), "learned", False):
        return None
    if train_eps is None:
        eps = params.get("eps")
        train_eps = eps if eps is not None and eps <= 0.5 else 0.1
        if eps is None:
            say(f"note: channel {channel_name} has no eps; using a codec trained over the BSC at eps {train_eps:g} "
                f"(--train-eps to choose, --train-channel same to train over {channel_name})")
        elif eps > 0.5:
            say(f"note: eps {eps:g} > 0.5; using a codec trained at eps {train_eps:g} (--train-eps to choose)")
    if not 0 <= train_eps <= 0.5:
        raise click.BadParameter(f"must be in [0, 0.5], got {train_eps:g}", param_hint="--train-eps")
    return train_eps


def run_train_config(codec: str, channel_name: str, params: dict, train_channel: str, train_eps: float | None,
                     epochs: int, seed: int, recipe=None, estimator=None, decoder_input: str = "hard"):
    """The training configuration of a learned codec for ``run`` (``None`` for a separated scheme):
    over the BSC at :func:`run_train_eps` (``--train-channel bsc``, the default), or over the run's
    own channel and parameters (``--train-channel same``; ``--train-eps`` then replaces its eps)."""
    from commsim.learned.training import TrainConfig

    if not getattr(registered_codec(codec), "learned", False):
        return None
    if train_channel == "bsc":
        return TrainConfig(eps=run_train_eps(codec, channel_name, params, train_eps), epochs=epochs, seed=seed,
                           recipe=recipe, estimator=estimator, decoder_input=decoder_input)
    check_trains_over(codec, channel_name)
    train_params = dict(params)
    if train_eps is not None:
        if "eps" not in train_params:
            raise click.BadParameter(f"channel {channel_name!r} has no eps to train at", param_hint="--train-eps")
        train_params["eps"] = train_eps
    return TrainConfig(epochs=epochs, seed=seed, recipe=recipe, estimator=estimator, channel=channel_name,
                       channel_params=train_params, decoder_input=decoder_input)


def build_run_codec(codec, source, bits, channel, params, checkpoint, config, seed, device, dataset):
    """``(codec, line saying which checkpoint)`` through the one factory (:func:`commsim.codecs.make_codec`):
    separated schemes are built for the channel; learned codecs come from ``checkpoint``, else the
    cache entry of the training ``config``, else training."""
    from commsim.codecs import make_codec

    learned = getattr(registered_codec(codec), "learned", False)
    if not learned and checkpoint is not None:
        raise click.BadParameter(f"codec {codec!r} is a separated scheme and takes no checkpoint", param_hint="--checkpoint")
    budget = (checkpoint or config) if learned else None  # separated: the neural source code's own default budget
    made = make_codec(codec, source, bits, channel, params, seed, budget, device=device, dataset=dataset, notify=say)
    if not learned:
        return made.codec, None
    how = "given" if checkpoint is not None else "trained now" if made.trained else "cached"
    return made.codec, checkpoint_line(made.checkpoint, made.codec.metadata, how)


@cli.command()
@click.option("--codec", required=True, type=click.Choice(catalog.names("codecs")), help="Codec to run.")
@click.option("--channel", "channel_name", type=click.Choice(catalog.names("channels")), default="bsc", show_default=True)
@click.option("--eps", type=float, default=None, help="Channel eps (bsc, bec, z).")
@click.option("--ebno-db", type=float, default=None, help="Eb/N0 in dB (awgn).")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Other channel parameters, repeatable.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="Trained codec (default: cache, else train).")
@click.option("--train-eps", type=float, default=None, help="Training eps of the learned codec (default: --eps).")
@click.option("--train-channel", type=click.Choice(["bsc", "same"]), default="bsc", show_default=True,
              help="Channel a learned codec is trained over: the BSC at --train-eps, or the same channel and parameters as the run.")
@click.option("--decoder-input", type=click.Choice(catalog.names("decoder_inputs")), default="hard", show_default=True,
              help="Decoder input of a learned codec that must be trained or looked up in the cache (hard or soft).")
@click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=catalog.default("epochs"), show_default=True, help="Budget if a codec must be trained.")
@click.option("--save-recon", type=click.Path(dir_okay=False), default=None, help="PNG of originals above reconstructions.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N test images.")
@training_options
@dataset_options
@common_options
def run(codec, channel_name, eps, ebno_db, extra, checkpoint, train_eps, train_channel, decoder_input, epochs, save_recon,
        limit, recipe, estimator, dataset, data_path, bits, seed, device):
    """Evaluate a codec over a channel on the test split and print the metrics."""
    import torch

    from commsim.channels import get_channel
    from commsim.core.images import save_grid
    from commsim.pipeline import Pipeline, distortion_metric

    params = channel_params(channel_name, eps, ebno_db, extra)
    check_bits(codec, bits)
    check_output(save_recon, ".png", "--save-recon")
    check_checkpoint(checkpoint)
    source = open_source(dataset, data_path)
    start_work(device)
    config = run_train_config(codec, channel_name, params, train_channel, train_eps, epochs, seed, recipe, estimator,
                              decoder_input)
    model, used = build_run_codec(codec, source, bits, channel_name, params, checkpoint, config, seed, device, dataset)
    channel = get_channel(channel_name)
    pipeline = Pipeline(source, model, channel)
    result = pipeline.evaluate("test", seed=seed, limit=limit, **params)
    print_table(codec, channel_name, params, bits, result, distortion_metric(source))
    if used:
        click.echo(used)
    if save_recon:
        x = next(iter(source.batches("test", 8)))[0].to(pipeline.device)
        with torch.no_grad():
            x_hat, _, _ = pipeline(x, torch.Generator(device=x.device).manual_seed(seed), **params)
        click.echo(f"reconstructions: {save_grid([x, x_hat], save_recon)}")


def print_table(codec, channel, params, bits, result, metric):
    m = result.metrics
    cells = {"codec": codec, "channel": channel, **{k: f"{v:g}" for k, v in params.items()}, "bits": str(bits),
             metric: f"{m[metric].mean:.4f} [{m[metric].low:.4f}, {m[metric].high:.4f}]",
             "psnr_db": f"{m['psnr_db'].mean:.2f}", "ber": f"{m['ber'].mean:.4f}"}
    if "failure_rate" in m:
        cells["failures"] = f"{m['failure_rate'].mean:.3f}"
    cells["images"] = str(result.images)
    widths = {k: max(len(k), len(v)) for k, v in cells.items()}
    click.echo("  ".join(k.ljust(widths[k]) for k in cells))
    click.echo("  ".join(v.ljust(widths[k]) for k, v in cells.items()))
    click.echo(f"[low, high]: 95 % confidence interval of the mean {metric} over the {result.images} test images")


def channel_choice(value: str) -> str:
    """A registered channel name or a user module path ``module:NAME`` / ``file.py:NAME``."""
    channels = catalog.names("channels")
    if ":" not in value and value not in channels:
        raise click.BadParameter(f"unknown channel {value!r}; choose one of {', '.join(channels)} "
                                 "or give a Python path module:NAME", param_hint="--channel")
    return value


@cli.command()
@click.option("--codec", "codecs", required=True, help="Comma-separated codecs, e.g. necst,iabf,jpeg+ldpc.")
@click.option("--channel", "channel_name", default="bsc", show_default=True,
              help="Registered channel or a user channel as module:NAME or path/file.py:NAME.")
@click.option("--eps", "eps_range", default=None, help="eps values: START:STOP:STEP or a list 0.1,0.2.")
@click.option("--ebno-db", "ebno_range", default=None, help="Eb/N0 values in dB (awgn), same syntax.")
@click.option("--vary", default=None, metavar="NAME=RANGE", help="Any other channel parameter to sweep.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Fixed channel parameters.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Evaluation seeds per point.")
@click.option("--train-eps", default="same", show_default=True,
              help="'same' (train at each test eps) or a list of training eps (mismatch grid).")
@click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=catalog.default("epochs"), show_default=True, help="Budget of on-demand training.")
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
@common_options
def sweep(codecs, channel_name, eps_range, ebno_range, vary, extra, seeds, train_eps, epochs, limit, jobs, executor,
          ray_address, cpus_per_task, gpus_per_task, point_timeout, resume, out, recipe, estimator, dataset, data_path, bits,
          seed, device):
    """Evaluate every codec at every channel value; write one CSV row per point as it finishes."""
    import torch

    from commsim.channels.loading import resolve_channel
    from commsim.channels.params import swept_parameter
    from commsim.sweep import LocalExecutor, SweepSpec, parse_values, run_sweep
    from commsim.core.threads import available_cores
    from commsim.core.workers import check_jobs

    runner = sweep_executor(executor, jobs, ray_address, cpus_per_task, gpus_per_task, device)
    names = list(dict.fromkeys(c.strip() for c in codecs.split(",") if c.strip()))  # each codec once
    if not names:
        raise click.BadParameter(f"no codec in {codecs!r}; give comma-separated names, e.g. necst,iabf", param_hint="--codec")
    for name in names:
        check_bits(name, bits)
    jobs = check_jobs(jobs or 1, available_cores())
    channel_choice(channel_name)
    channel = resolve_channel(channel_name)
    param, text = swept_parameter({"--eps": ("eps", eps_range), "--ebno-db": ("ebno_db", ebno_range)}, vary)
    values = parse_values(text)
    if param not in channel.params:
        raise click.BadParameter(f"channel {channel_name!r} has no parameter {param!r}; it has {', '.join(channel.params)}")
    fixed = parse_param_assignments(extra)
    if param in fixed:
        raise click.BadParameter(f"{param} is swept; do not fix it with --param too", param_hint="--param")
    for value in values:
        channel.check_params({**fixed, param: value}, torch.zeros(1, 1))
    train_list = None if train_eps.strip() == "same" else parse_values(train_eps)
    for e in train_list or []:
        if not 0 <= e <= 0.5:
            raise click.BadParameter(f"training eps must be in [0, 0.5], got {e:g}", param_hint="--train-eps")
    out_dir = Path(out)
    spec = SweepSpec(codecs=names, channel=channel_name, param=param, values=values, bits=bits, dataset=dataset,
                     data_path=data_path, seeds=seeds, train_eps=train_list, fixed=fixed, epochs=epochs,
                     train_seed=seed, limit=limit, device=str(start_work(device if runner is None else "cpu")),
                     recipe=recipe, estimator=estimator, point_timeout=point_timeout)
    spec.points()
    try:  # checked without creating anything: the folder is made only when the sweep starts
        check_writable(out_dir / "results.csv")
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    if (out_dir / "results.csv").exists() and not resume:
        raise click.BadParameter(f"{out_dir / 'results.csv'} exists; pass --resume to continue it or choose another --out",
                                 param_hint="--out")
    open_source(dataset, data_path)
    path = run_sweep(spec, out_dir / "results.csv", resume=resume, executor=runner or LocalExecutor(jobs))
    click.echo(f"results: {path}")


def sweep_executor(executor: str, jobs, ray_address, cpus_per_task, gpus_per_task, device: str):
    """``None`` for the local executor (``--jobs``), else a :class:`~commsim.ray_executor.RayExecutor`
    with its options checked (and Ray's presence) before anything starts."""
    ray_options = {"--ray-address": ray_address, "--cpus-per-task": cpus_per_task, "--gpus-per-task": gpus_per_task}
    if executor == "local":
        given = [flag for flag, value in ray_options.items() if value is not None]
        if given:
            raise click.BadParameter(f"{given[0]} is an option of --executor ray", param_hint=given[0])
        return None
    from commsim.ray_executor import RayCluster, RayExecutor, import_ray

    if jobs is not None:
        raise click.BadParameter("--jobs is for --executor local; Ray runs as many tasks at once as its CPUs allow "
                                 "(--cpus-per-task each)", param_hint="--jobs")
    cluster = RayCluster(address=ray_address, cpus_per_task=1.0 if cpus_per_task is None else cpus_per_task,
                         gpus_per_task=gpus_per_task or 0.0)
    if device not in ("auto", cluster.device):
        raise click.BadParameter(f"with --executor ray the device follows --gpus-per-task ({cluster.device} here); "
                                 f"pass --gpus-per-task 1 (or a fraction) for cuda", param_hint="--device")
    import_ray()
    return RayExecutor(cluster)


@cli.command()
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for the figures (default: beside the CSV).")
@click.option("--no-recon", is_flag=True, help="Skip the grids of example reconstructions.")
@click.option("--channel", "channels", multiple=True, metavar="FILE.py:NAME",
              help="A user channel module the reconstructions may load (a CSV never loads one by itself); repeatable.")
def plot(results, out, no_recon, channels):
    """Plot distortion vs channel parameter (PNG + PDF), the mismatch heat map and reconstructions;
    BER/BLER curves for a `commsim ber` CSV."""
    from commsim.plotting import plot_results

    written = plot_results(results, out, reconstructions=not no_recon, channels=channels)
    for note in written["notes"]:
        click.echo(f"note: {note}")
    for path in written["files"]:
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--code", "codes", multiple=True, required=True, metavar="FAMILY(N,K)",
              help="A channel code, repeatable: e.g. 'polar(128,64)', 'ldpc(128,64,max_iters=20)', 'conv(140,64)'.")
@click.option("--channel", "channel_name", default="awgn", show_default=True,
              help="Registered channel or a user channel as module:NAME or path/file.py:NAME.")
@click.option("--ebno-db", "ebno_range", default=None, help="Eb/N0 values in dB per information bit (awgn): START:STOP:STEP or a list.")
@click.option("--snr-db", "snr_range", default=None, help="Es/N0 values in dB per channel bit (awgn), same syntax.")
@click.option("--eps", "eps_range", default=None, help="eps values (bsc, bec, z), same syntax.")
@click.option("--vary", default=None, metavar="NAME=RANGE", help="Any other channel parameter to sweep.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Fixed channel parameters.")
@click.option("--errors", type=int, default=100, show_default=True, help="Stop a point after this many block errors.")
@click.option("--max-frames", type=int, default=100_000, show_default=True, help="Stop a point after this many frames.")
@click.option("--no-early-stop", is_flag=True, help="Simulate every value (default: a curve stops after an error-free point).")
@click.option("--resume", is_flag=True, help="Continue an existing ber.csv: skip finished points.")
@click.option("--out", type=click.Path(file_okay=False), default="results/ber", show_default=True,
              help="Output folder (ber.csv and the BLER figure).")
@click.option("--no-plot", is_flag=True, help="Write the CSV only.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--device", type=click.Choice(catalog.names("devices")), default="auto", show_default=True,
              help="auto = CUDA when available, else CPU.")
def ber(codes, channel_name, ebno_range, snr_range, eps_range, vary, extra, errors, max_frames, no_early_stop, resume,
        out, no_plot, seed, device):
    """Bit and block error rates of channel codes alone: every code at every channel value (CSV + figure)."""
    from commsim.ber import BerSpec, run_ber
    from commsim.channels.params import swept_parameter
    from commsim.plotting import plot_ber
    from commsim.sweep import parse_values

    channel_choice(channel_name)
    param, text = swept_parameter({"--ebno-db": ("ebno_db", ebno_range), "--snr-db": ("snr_db", snr_range),
                                   "--eps": ("eps", eps_range)}, vary)
    fixed = parse_param_assignments(extra)
    if param in fixed:
        raise click.BadParameter(f"{param} is swept; do not fix it with --param too", param_hint="--param")
    csv_path = Path(out) / "ber.csv"
    try:  # checked without creating anything
        check_writable(csv_path)
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    if csv_path.exists() and not resume:
        raise click.BadParameter(f"{csv_path} exists; pass --resume to continue it or choose another --out", param_hint="--out")
    spec = BerSpec(codes=[c for spec_text in codes for c in spec_text.split(";")], channel=channel_name, param=param,
                   values=parse_values(text), fixed=fixed, target_block_errors=errors, max_frames=max_frames,
                   early_stop=not no_early_stop, seed=seed, device=str(start_work(device)))
    path = run_ber(spec, csv_path, resume=resume)
    click.echo(f"results: {path}")
    if not no_plot:
        for written in plot_ber(path)["files"]:
            click.echo(f"wrote {written}")


MAX_CHAIN_STEPS = 100_000
"""Most steps of a ``sample`` chain (each step codes and decodes every chain once)."""
MAX_CHAIN_ROWS = 64
"""Most rows of a ``sample`` grid (64 rows of 64 chains is a PNG of about 5,900 x 5,900 pixels)."""


@cli.command()
@click.option("--codec", required=True, type=click.Choice(catalog.names("codecs")))
@click.option("--eps", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="BSC eps of the chain.")
@click.option("--steps", type=click.IntRange(min=1, max=MAX_CHAIN_STEPS), default=50, show_default=True)
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True, help="Keep a row every N steps.")
@click.option("--count", type=click.IntRange(min=1, max=64), default=8, show_default=True, help="Chains (images per row).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None)
@click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=catalog.default("epochs"), show_default=True, help="Budget if a codec must be trained.")
@click.option("--out", type=click.Path(dir_okay=False), default="chain.png", show_default=True)
@dataset_options
@common_options
def sample(codec, eps, steps, every, count, checkpoint, epochs, out, dataset, data_path, bits, seed, device):
    """Run the Markov chain x -> noisy code -> x from test images (equation 32 of the IABF paper); save a PNG grid."""
    import torch

    from commsim.channels import get_channel
    from commsim.core.images import save_grid
    from commsim.learned.training import TrainConfig
    from commsim.sampling import markov_chain

    if not getattr(registered_codec(codec), "learned", False):
        raise click.BadParameter(f"codec {codec!r} is not a learned codec", param_hint="--codec")
    check_bits(codec, bits)
    if steps // every + 1 > MAX_CHAIN_ROWS:
        raise click.BadParameter(f"{steps} steps kept every {every} make {steps // every + 1} rows of images, more than "
                                 f"{MAX_CHAIN_ROWS}; raise --every or lower --steps", param_hint="--steps")
    check_output(out, ".png", "--out")
    check_checkpoint(checkpoint)
    source = open_source(dataset, data_path)
    start_work(device)
    model, used = build_run_codec(codec, source, bits, "bsc", {"eps": eps}, checkpoint,
                                  TrainConfig(eps=min(eps, 0.5), epochs=epochs, seed=seed), seed, device, dataset)
    x0 = source.tensors("test")[0][:count].to(model.device)
    rows = markov_chain(model, get_channel("bsc"), x0, steps, every, torch.Generator(device=model.device).manual_seed(seed), eps=eps)
    labels = ["x0 (test images)"] + [f"step {every * i}" for i in range(1, len(rows))]
    click.echo(f"chain: {save_grid(rows, out, labels=labels)} ({len(rows)} rows, every {every} steps)")
    click.echo(used)


def main():
    cli()


if __name__ == "__main__":
    main()
