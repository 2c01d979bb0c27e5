"""``commsim sample``: the Markov chain x -> noisy code -> x of a learned codec, as a PNG grid."""
from __future__ import annotations

import click

from commsim.cli.checks import args, budget, channel_params, check_codec, check_output, open_source, say, start_work
from commsim.cli.options import CodecName, channel_options, common_options, dataset_options, epochs_option


@click.command("sample")
@click.option("--codec", required=True, type=CodecName())
@channel_options(help_text="Channel of the chain (eps defaults to 0.1 where it has one); registered or module:NAME.")
@click.option("--steps", type=click.IntRange(min=1, max=100_000), default=50, show_default=True)
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True, help="Keep a row every N steps.")
@click.option("--count", type=click.IntRange(min=1, max=64), default=8, show_default=True, help="Chains (images per row).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None)
@epochs_option()
@click.option("--out", type=click.Path(dir_okay=False), default="chain.png", show_default=True)
@dataset_options
@common_options
def command(**options):
    """Run the Markov chain x -> noisy code -> x from test images (equation 32 of the IABF paper); save a PNG grid."""
    import torch

    from commsim.channels import get_channel
    from commsim.codecs import build, entry
    from commsim.core.images import save_grid
    from commsim.core.protocol import Request
    from commsim.sampling import check_chain, markov_chain

    o = args(options)
    if not entry(o.codec).chains:
        raise click.BadParameter(f"codec {o.codec!r} is not a learned codec: a chain needs a trained decoder", param_hint="--codec")
    params = channel_params(o, o.channel_name, defaults={"eps": 0.1})
    request = Request(o.dataset, o.bits, o.channel_name, params, o.seed, budget(o, checkpoint=o.checkpoint),
                      device=o.device, data_path=o.data_path)
    check_codec(o.codec, request)
    check_chain(o.steps, o.every)
    check_output(o.out, ".png", "--out")
    source = open_source(o)
    request = request.replace(device=str(start_work(o.device)))
    made = build(o.codec, source, request, notify=say)
    model = made.codec
    x0 = source.tensors("test")[0][:o.count].to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(o.seed)
    rows = markov_chain(model, get_channel(o.channel_name), x0, o.steps, o.every, generator, **params)
    labels = ["x0 (test images)"] + [f"step {o.every * i}" for i in range(1, len(rows))]
    click.echo(f"chain: {save_grid(rows, o.out, labels=labels)} ({len(rows)} rows, every {o.every} steps)")
    how = "given" if o.checkpoint is not None else "trained now" if made.trained else "cached"
    click.echo(f"checkpoint: {made.checkpoint.name} (trained at {model.origin}; {how})")
