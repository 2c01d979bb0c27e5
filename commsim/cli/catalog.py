"""``commsim catalog`` (hidden, for developers): check or rewrite the generated catalog of names."""
from __future__ import annotations

import json

import click

from commsim.core import catalog
from commsim.core.files import atomic_write


def build_catalog() -> dict:
    """The catalog (:mod:`commsim.core.catalog`) from the live registries (imports every block: slow)."""
    from commsim import CHANNELS, CODECS, DATASETS
    from commsim.core.device import DEVICES
    from commsim.fec import CHANNEL_CODES
    from commsim.learned.estimators import ESTIMATORS
    from commsim.core.protocol import DEFAULT_IMAGES, PRECISIONS
    from commsim.learned.training import DECODER_INPUTS, DEFAULT_ESTIMATOR, DEFAULT_RECIPE, MAX_EPOCHS, RECIPES
    from commsim.source_codes import SOURCE_CODES

    registries = {"codecs": CODECS, "channels": CHANNELS, "datasets": DATASETS, "channel_codes": CHANNEL_CODES,
                  "source_codes": SOURCE_CODES}
    built = {section: {name: registries[section].describe(name) for name in registries[section].names()}
             for section in catalog.SECTIONS}
    built["choices"] = {"recipes": list(RECIPES), "estimators": list(ESTIMATORS), "devices": list(DEVICES),
                        "decoder_inputs": list(DECODER_INPUTS), "precisions": list(PRECISIONS)}
    built["defaults"] = {"images": DEFAULT_IMAGES, "max_epochs": MAX_EPOCHS, "recipe": DEFAULT_RECIPE,
                         "estimator": DEFAULT_ESTIMATOR}
    return built


@click.command("catalog", hidden=True)
@click.option("--write", is_flag=True, help="Rewrite commsim/core/catalog.json from the registries.")
def command(write):
    """(For developers) check the generated catalog of names against the registries, or rewrite it."""
    from commsim.cli import UserError

    built = build_catalog()
    if write:
        with atomic_write(catalog.CATALOG_FILE, "w") as fh:
            fh.write(json.dumps(built, indent=1) + "\n")
        click.echo(f"wrote {catalog.CATALOG_FILE}")
    elif built != catalog.load():
        raise UserError(f"{catalog.CATALOG_FILE} is stale; run `commsim catalog --write`")
    else:
        click.echo("catalog up to date")
