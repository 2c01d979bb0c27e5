"""``commsim train``: train a codec over a channel and save its checkpoint."""
from __future__ import annotations

import click

from commsim.cli.checks import args, budget, channel_params, check_codec, check_output, open_source, start_work
from commsim.cli.options import CodecName, channel_options, common_options, dataset_options, decoder_input_option, epochs_option, training_options


@click.command("train")
@click.option("--codec", required=True, type=CodecName(), help="Learned codec to train.")
@channel_options(help_text="Channel the codec is trained over (eps defaults to 0.1 where it has one).")
@decoder_input_option("What the learned decoder reads: hard decisions of the LLRs, or soft probabilities sigmoid(llr).")
@epochs_option("Training budget in epochs (the paper's set-up used 200 with --recipe paper)")
@click.option("--patience", type=click.IntRange(min=0), default=None,
              help="Stop after this many epochs without validation gain (0 = never) [default: the recipe's].")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint file (default: the cache).")
@training_options
@dataset_options
@common_options
def command(**options):
    """Train a learned codec over a channel (the BSC by default) and save a safetensors checkpoint."""
    from commsim.channels import get_channel
    from commsim.codecs import entry
    from commsim.core.protocol import Request
    from commsim.learned.training import DEFAULT_TRAIN_EPS
    from commsim.pipeline import Pipeline, distortion_metric

    o = args(options)
    params = channel_params(o, o.channel_name, defaults={"eps": DEFAULT_TRAIN_EPS})
    request = Request(o.dataset, o.bits, o.channel_name, params, o.seed,
                      budget(o, train_channel="same", patience=o.patience), device=o.device, data_path=o.data_path)
    check_codec(o.codec, request)
    check_output(o.out, ".safetensors", "--out")
    source = open_source(o)
    start_work(o.device)
    learned, facts, path = entry(o.codec).train(request, source, o.out)
    metric = distortion_metric(source)
    test = Pipeline(source, learned, get_channel(o.channel_name)).evaluate("test", seed=o.seed, **params).metrics[metric]
    click.echo(f"trained {o.codec} on {source.name}, {o.bits} bits over {facts['over']}: {facts['summary']}, "
               f"test {metric} {test.mean:.4f} [{test.low:.4f}, {test.high:.4f}] (n={test.count}), {facts['seconds']:.0f} s")
    click.echo(f"checkpoint: {path} (trained over {facts['over']})")
