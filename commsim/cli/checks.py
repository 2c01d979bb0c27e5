"""What a command does with its options before and at the start of work (no command lives here):
checks that name the flag to fix, the budget and channel parameters of the options, the data, and
the thread policy. Heavy modules are imported inside the helpers, when a command runs."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import click

from commsim.core.files import check_writable


@contextlib.contextmanager
def hint(flag: str):
    """A ``ValueError`` in the block names ``flag`` (as click's own option errors do)."""
    try:
        yield
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint=flag) from None


def check_bits(names, bits: int) -> None:
    """Every codec of ``names`` takes ``bits`` channel bits (an error names ``--bits``)."""
    from commsim.codecs import entry

    with hint("--bits"):
        for name in names:
            entry(name).check_bits(bits)


def check_codec(name: str, request) -> None:
    """Codec ``name`` can serve ``request`` (bits first, named ``--bits``); before any work."""
    from commsim.codecs import check

    check_bits([name], request.bits)
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

    given = {"epochs": o.epochs, "images": o.images, "precision": o.precision, "seed": o.seed, "recipe": getattr(o, "recipe", None),
             "estimator": getattr(o, "estimator", None), "decoder_input": getattr(o, "decoder_input", "hard")}
    return Budget(**{**given, **fields})


def swept(o, flags: dict[str, str]) -> tuple[str, list[float], dict]:
    """``(parameter, values, fixed parameters)`` of a sweep's range options (``flags``: flag -> parameter)."""
    from commsim.channels.params import parse_assignments, swept_parameter
    from commsim.sweep import parse_values

    param, text = swept_parameter({flag: (p, getattr(o, f"{p}_range")) for flag, p in flags.items()}, o.vary)
    fixed = parse_assignments(o.extra)
    if param in fixed:
        raise click.BadParameter(f"{param} is swept; do not fix it with --param too", param_hint="--param")
    return param, parse_values(text), fixed
