"""The ``commsim`` command line: one module per command in this package (``list``, ``train``, ``run``,
``sweep``, ``plot``, ``ber``, ``sample``; ``catalog`` for developers), each mostly options and one call
into the library. A new command is one new module here that defines ``command`` (a click command):
:func:`add_commands` finds it.

Every bad input ends in one line ``Error: ...`` on stderr and exit code 2, with nothing written: the
library raises ``ValueError`` / ``OSError`` with the message, and :class:`CommsimGroup` prints it.

Start-up is light: names for ``--help``, ``list`` and the options' choices come from the generated
catalog (:mod:`commsim.core.catalog`), and each command imports the heavy modules (torch, the codecs)
when it runs. The CLI is the only package that defers imports this way.
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import signal
import sys
import traceback
import warnings

import click

from commsim import __version__
from commsim.core.files import OneLineWarning

HELPERS = ("options", "checks")
"""Modules of this package that are not commands."""


class UserError(click.ClickException):
    """A bad input found while a command runs: one line, exit code 2."""

    exit_code = 2


def one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


class OneLineWarnings:
    """Shows commsim's own warnings (an ignored cache entry, emulated bf16) as one line on stderr, each text once per
    command; other warnings as Python shows them."""

    def __init__(self, others):
        self.others = others
        self.seen: set[str] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, OneLineWarning):
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
            warnings.simplefilter("always", OneLineWarning)
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


def add_commands(group: click.Group) -> None:
    """Add the ``command`` of every module of this package (but :data:`HELPERS`) to ``group``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in HELPERS:
            continue
        group.add_command(importlib.import_module(f"{__name__}.{info.name}").command)


add_commands(cli)


def main():
    cli()
