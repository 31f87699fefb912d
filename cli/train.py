"""`avs-train`: pretrain, fine-tune, evaluate and run AuTR."""

from __future__ import annotations

import typer

from avs_synth_cli.common import setup

app = typer.Typer(
    name="avs-train",
    help="Train, fine-tune, evaluate and run the AuTR audio-visual segmentation model.",
    no_args_is_help=True,
    add_completion=False,
)
app.callback()(setup)
