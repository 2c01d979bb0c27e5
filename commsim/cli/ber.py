"""``commsim ber``: bit and block error rates of channel codes alone."""
from __future__ import annotations

from pathlib import Path

import click

from commsim.cli.checks import args, check_new_csv, start_work, swept
from commsim.cli.options import ChannelName, device_option, range_options, seed_option


@click.command("ber")
@click.option("--code", "codes", multiple=True, required=True, metavar="FAMILY(N,K)",
              help="A channel code, repeatable: e.g. 'polar(128,64)', 'ldpc(128,64,max_iters=20)', 'conv(140,64)'.")
@click.option("--channel", "channel_name", type=ChannelName(), default="awgn", show_default=True,
              help="Registered channel or a user channel as module:NAME or path/file.py:NAME.")
@range_options(("--ebno-db", "ebno_db", "Eb/N0 values in dB per information bit (awgn): START:STOP:STEP or a list."),
               ("--snr-db", "snr_db", "Es/N0 values in dB per channel bit (awgn), same syntax."),
               ("--eps", "eps", "eps values (bsc, bec, z), same syntax."))
@click.option("--errors", type=int, default=100, show_default=True, help="Stop a point after this many block errors.")
@click.option("--max-frames", type=int, default=100_000, show_default=True, help="Stop a point after this many frames.")
@click.option("--no-early-stop", is_flag=True, help="Simulate every value (default: a curve stops after an error-free point).")
@click.option("--resume", is_flag=True, help="Continue an existing ber.csv: skip finished points.")
@click.option("--out", type=click.Path(file_okay=False), default="results/ber", show_default=True,
              help="Output folder (ber.csv and the BLER figure).")
@click.option("--no-plot", is_flag=True, help="Write the CSV only.")
@seed_option
@device_option
def command(**options):
    """Bit and block error rates of channel codes alone: every code at every channel value (CSV + figure)."""
    from commsim.ber import BerSpec, run_ber
    from commsim.plotting import plot_ber

    o = args(options)
    param, values, fixed = swept(o, {"--ebno-db": "ebno_db", "--snr-db": "snr_db", "--eps": "eps"})
    csv = Path(o.out) / "ber.csv"
    check_new_csv(csv, o.resume)  # checked without creating anything
    spec = BerSpec(codes=[c for text in o.codes for c in text.split(";")], channel=o.channel_name, param=param,
                   values=values, fixed=fixed, target_block_errors=o.errors, max_frames=o.max_frames,
                   early_stop=not o.no_early_stop, seed=o.seed, device=str(start_work(o.device)))
    path = run_ber(spec, csv, resume=o.resume)
    click.echo(f"results: {path}")
    if not o.no_plot:
        for written in plot_ber(path)["files"]:
            click.echo(f"wrote {written}")
