"""``commsim list``: the registered blocks, from the generated catalog (fast: imports nothing heavy)."""
from __future__ import annotations

import click

from commsim.core import catalog


@click.command("list")
def command():
    """Print the registered codecs, source codes, channel codes, channels and data sets."""
    for section in catalog.SECTIONS:
        click.echo(f"{catalog.TITLES[section]}:")
        entries = catalog.load()[section]
        if section == "codecs":  # every SOURCE+CODE pair is a codec: one line, the parts listed below
            entries = {**{n: t for n, t in entries.items() if "+" not in n}, catalog.SEPARATED_LINE[0]: catalog.SEPARATED_LINE[1]}
        for name, text in entries.items():
            click.echo(f"  {name:<18} {text}")
