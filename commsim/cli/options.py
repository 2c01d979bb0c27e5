"""Options and small helpers shared by the commands (no command lives here). Heavy modules are
imported inside the helpers, when a command runs, so that ``--help`` stays fast."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import click

from commsim.core import catalog
from commsim.core.files import check_writable

MAX_SEED = 2**62
"""Largest --seed: seeds with their named offsets stay within torch's 64-bit generator seeds."""


class CodecName(click.ParamType):
    """A registered codec: the catalog's names (fast, for ``--help``), or one that user code registered
    at run time (the live registry is read only then)."""

    name = "codec"

    def convert(self, value, param, ctx):
        if value in catalog.names("codecs"):
            return value
        from commsim import CODECS

        if value in CODECS:
            return value
        self.fail(f"unknown codec {value!r}; see `commsim list` for the registered ones", param, ctx)


class ChannelName(click.ParamType):
    """A registered channel or a user module ``module:NAME`` / ``path/file.py:NAME``."""

    name = "channel"

    def convert(self, value, param, ctx):
        if ":" in value or value in catalog.names("channels"):
            return value
        self.fail(f"unknown channel {value!r}; choose one of {', '.join(catalog.names('channels'))} "
                  "or give a Python path module:NAME", param, ctx)


@contextlib.contextmanager
def hint(flag: str):
    """A ``ValueError`` in the block names ``flag`` (as click's own option errors do)."""
    try:
        yield
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint=flag) from None


def check_codec(name: str, request) -> None:
    """Codec ``name`` can serve ``request`` (bits first, named ``--bits``); before any work."""
    from commsim.codecs import check, entry

    with hint("--bits"):
        entry(name).check_bits(request.bits)
    check(name, request)


def args(options: dict) -> SimpleNamespace:
    """A command's options as attributes (commands take ``**options``: click passes one keyword per option)."""
    return SimpleNamespace(**options)


def say(message: str) -> None:
    """A notice for the user (stderr, so that stdout keeps the results)."""
    click.echo(message, err=True)


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


def check_new_csv(path, resume: bool) -> None:
    """``path`` (a results CSV) can be written and, unless resuming, does not exist (nothing is created)."""
    try:
        check_writable(path)
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    if path.exists() and not resume:
        raise click.BadParameter(f"{path} exists; pass --resume to continue it or choose another --out", param_hint="--out")


def open_source(o):
    from commsim.data import load_dataset

    return load_dataset(o.dataset, o.data_path)


def start_work(device: str):
    """Before the first expensive step: the device (checked) and the CPU threads (:mod:`commsim.core.threads`)."""
    from commsim.core import threads
    from commsim.core.device import resolve_device

    resolved = resolve_device(device)
    threads.configure()  # the library never reads the policy: only the command line applies it
    return resolved


def channel_params(o, channel: str, defaults: dict | None = None) -> dict:
    """The parameters of ``channel`` from ``--eps`` / ``--ebno-db`` / ``--param`` (checked)."""
    from commsim.channels import get_channel
    from commsim.channels.params import collect_params

    return collect_params(get_channel(channel), channel, {"eps": ("--eps", o.eps), "ebno_db": ("--ebno-db", o.ebno_db)},
                          o.extra, defaults)


def budget(o, **fields):
    """The :class:`~commsim.core.protocol.Budget` of the options (``fields`` override them)."""
    from commsim.core.protocol import Budget

    given = {"epochs": o.epochs, "seed": o.seed, "recipe": getattr(o, "recipe", None),
             "estimator": getattr(o, "estimator", None), "decoder_input": getattr(o, "decoder_input", "hard")}
    return Budget(**{**given, **fields})


def dataset_options(f):
    f = click.option("--data-path", type=click.Path(), default=None, help="Folder or file for file-based data sets.")(f)
    return click.option("--dataset", type=click.Choice(catalog.names("datasets")), default="mnist", show_default=True,
                        help="Data set (the embedded digits by default).")(f)


def seed_option(f):
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seed of every random draw.")(f)


def device_option(f):
    return click.option("--device", type=click.Choice(catalog.names("devices")), default="auto", show_default=True,
                        help="auto = CUDA when available, else CPU.")(f)


def common_options(f):
    f = device_option(seed_option(f))
    return click.option("--bits", type=click.IntRange(min=1), default=100, show_default=True,
                        help="Channel bits per image (m).")(f)


def epochs_option(help_text: str = "Budget if a codec must be trained."):
    return click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=catalog.default("epochs"),
                        show_default=True, help=help_text)


def training_options(f):
    """``--recipe`` and ``--estimator`` of a training (``None``: the defaults, or any cached checkpoint)."""
    f = click.option("--estimator", type=click.Choice(catalog.names("estimators")), default=None,
                     help=f"Gradient estimator of a training [default: {catalog.default('estimator')}].")(f)
    return click.option("--recipe", type=click.Choice(catalog.names("recipes")), default=None,
                        help=f"Training recipe: 'paper' = constant Adam 1e-3 as in the reference [default: {catalog.default('recipe')}].")(f)


def decoder_input_option(help_text: str):
    return click.option("--decoder-input", type=click.Choice(catalog.names("decoder_inputs")), default="hard",
                        show_default=True, help=help_text)


def channel_options(default: str = "bsc", help_text: str = "Registered channel or a user channel as module:NAME or path/file.py:NAME."):
    """``--channel`` with ``--eps``, ``--ebno-db`` and ``--param NAME=VALUE`` for its parameters."""
    def decorate(f):
        f = click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Other channel parameters, repeatable.")(f)
        f = click.option("--ebno-db", type=float, default=None, help="Eb/N0 in dB (awgn).")(f)
        f = click.option("--eps", type=float, default=None, help="Channel eps (bsc, bec, z).")(f)
        return click.option("--channel", "channel_name", type=ChannelName(), default=default, show_default=True, help=help_text)(f)
    return decorate


def range_options(*names: tuple[str, str, str]):
    """Swept-value options ``(flag, parameter, help)`` plus ``--vary NAME=RANGE`` and ``--param``."""
    def decorate(f):
        f = click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Fixed channel parameters.")(f)
        f = click.option("--vary", default=None, metavar="NAME=RANGE", help="Any other channel parameter to sweep.")(f)
        for flag, param, text in reversed(names):
            f = click.option(flag, f"{param}_range", default=None, help=text)(f)
        return f
    return decorate


def swept(o, flags: dict[str, str]) -> tuple[str, list[float], dict]:
    """``(parameter, values, fixed parameters)`` of a sweep's range options (``flags``: flag -> parameter)."""
    from commsim.channels.params import parse_assignments, swept_parameter
    from commsim.sweep import parse_values

    param, text = swept_parameter({flag: (p, getattr(o, f"{p}_range")) for flag, p in flags.items()}, o.vary)
    fixed = parse_assignments(o.extra)
    if param in fixed:
        raise click.BadParameter(f"{param} is swept; do not fix it with --param too", param_hint="--param")
    return param, parse_values(text), fixed
