"""``commsim plot``: figures from a sweep's or a BER run's CSV."""
from __future__ import annotations

import click


@click.command("plot")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for the figures (default: beside the CSV).")
@click.option("--no-recon", is_flag=True, help="Skip the grids of example reconstructions.")
@click.option("--channel", "channels", multiple=True, metavar="FILE.py:NAME",
              help="A user channel module the reconstructions may load (a CSV never loads one by itself); repeatable.")
def command(results, out, no_recon, channels):
    """Plot distortion vs channel parameter (PNG + PDF), the mismatch heat map and reconstructions;
    BER/BLER curves for a `commsim ber` CSV."""
    from commsim.plotting import plot_results

    written = plot_results(results, out, reconstructions=not no_recon, channels=channels)
    for note in written["notes"]:
        click.echo(f"note: {note}")
    for path in written["files"]:
        click.echo(f"wrote {path}")
