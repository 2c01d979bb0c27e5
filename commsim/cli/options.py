"""Options shared by the commands (no command lives here): the option decorators and their value
types; what is done with the options is in :mod:`commsim.cli.checks`."""
from __future__ import annotations

import click

from commsim.core import catalog

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


class ImagesBudget(click.ParamType):
    """A budget in training images seen: ``800000``, ``800k``, ``1.2M``."""

    name = "images"

    def convert(self, value, param, ctx):
        from commsim.core.protocol import parse_images  # no torch: protocol imports the standard library only

        try:
            return parse_images(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def epochs_option(help_text: str = "Budget if a codec must be trained, in epochs"):
    """The training budget (``--epochs`` or ``--images``) and its ``--precision``."""
    def decorate(f):
        f = click.option("--precision", type=click.Choice(catalog.names("precisions")), default="auto", show_default=True,
                         help="Training precision: auto = bf16 where the device has bf16 matrix units (CUDA >= 8.0, "
                              "AVX-512-BF16 / AMX CPUs), else fp32.")(f)
        f = click.option("--images", type=ImagesBudget(), default=None,
                         help=f"Budget in training images seen, e.g. 800k [default: {catalog.default('images'):,}, whatever the "
                              "data set's size].")(f)
        return click.option("--epochs", type=click.IntRange(1, catalog.default("max_epochs")), default=None,
                            help=f"{help_text} (instead of --images).")(f)
    return decorate


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
