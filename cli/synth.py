"""`avs-synth`: build the synthetic audio-visual segmentation dataset."""

from __future__ import annotations

import typer

from avs_synth_cli.common import setup

app = typer.Typer(
    name="avs-synth",
    help="Build synthetic (image, mask, audio) triplets for audio-visual segmentation.",
    no_args_is_help=True,
    add_completion=False,
)
app.callback()(setup)

# Commands are registered by the modules below (one per concept, each a thin wrapper).
