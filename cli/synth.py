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

from avs_synth_cli.build import build, inspect  # noqa: E402

app.command("build")(build)
app.command("inspect")(inspect)

from avs_synth_cli.match import match, review_matches  # noqa: E402

app.command("match")(match)
app.command("review-matches")(review_matches)

from avs_synth_cli.corpus import sample_corpus  # noqa: E402

app.command("sample-corpus")(sample_corpus)

from avs_synth_cli.import_data import app as import_app  # noqa: E402

app.add_typer(import_app, name="import")
