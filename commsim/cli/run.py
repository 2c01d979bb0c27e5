"""``commsim run``: evaluate one codec over one channel on the test split."""
from __future__ import annotations

from pathlib import Path

import click

from commsim.cli.checks import args, budget, channel_params, check_codec, check_output, open_source, say, start_work
from commsim.cli.options import CodecName, channel_options, common_options, dataset_options, decoder_input_option, epochs_option, training_options


@click.command("run")
@click.option("--codec", required=True, type=CodecName(), help="Codec to run.")
@channel_options()
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="Trained codec (default: cache, else train).")
@click.option("--train-eps", type=float, default=None, help="Training eps of the learned codec (default: --eps).")
@click.option("--train-channel", type=click.Choice(["bsc", "same"]), default="bsc", show_default=True,
              help="Channel a learned codec is trained over: the BSC at --train-eps, or the same channel and parameters as the run.")
@decoder_input_option("Decoder input of a learned codec that must be trained or looked up in the cache (hard or soft).")
@epochs_option()
@click.option("--save-recon", type=click.Path(dir_okay=False), default=None, help="PNG of originals above reconstructions.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N test images.")
@training_options
@dataset_options
@common_options
def command(**options):
    """Evaluate a codec over a channel on the test split and print the metrics."""
    import torch

    from commsim.channels import get_channel
    from commsim.codecs import build
    from commsim.core.images import save_grid
    from commsim.core.protocol import Request
    from commsim.pipeline import Pipeline, distortion_metric

    o = args(options)
    params = channel_params(o, o.channel_name)
    request = Request(o.dataset, o.bits, o.channel_name, params, o.seed,
                      budget(o, train_channel=o.train_channel, train_eps=o.train_eps, checkpoint=o.checkpoint),
                      device=o.device, data_path=o.data_path)
    check_codec(o.codec, request)
    check_output(o.save_recon, ".png", "--save-recon")
    source = open_source(o)
    request = request.replace(device=str(start_work(o.device)))
    made = build(o.codec, source, request, notify=say)
    pipeline = Pipeline(source, made.codec, get_channel(o.channel_name))
    result = pipeline.evaluate("test", seed=o.seed, limit=o.limit, **params)
    labels = {"codec": o.codec, "channel": o.channel_name, **{k: f"{v:g}" for k, v in params.items()}, "bits": str(o.bits)}
    for line in result.table(labels, distortion_metric(source)):
        click.echo(line)
    if made.checkpoint is not None:
        how = "given" if o.checkpoint is not None else "trained now" if made.trained else "cached"
        click.echo(f"checkpoint: {Path(made.checkpoint).name} (trained at {made.codec.origin}; {how})")
    if o.save_recon:
        x = next(iter(source.batches("test", 8)))[0].to(pipeline.device)
        with torch.no_grad():
            x_hat, _, _ = pipeline(x, torch.Generator(device=x.device).manual_seed(o.seed), **params)
        click.echo(f"reconstructions: {save_grid([x, x_hat], o.save_recon)}")
