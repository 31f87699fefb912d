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

from avs_synth_cli.build import BUILD_EXAMPLES, INSPECT_EXAMPLES, build, inspect  # noqa: E402

app.command("build", epilog=BUILD_EXAMPLES)(build)
app.command("inspect", epilog=INSPECT_EXAMPLES)(inspect)

from avs_synth_cli.match import MATCH_EXAMPLES, REVIEW_EXAMPLES, match, review_matches  # noqa: E402

app.command("match", epilog=MATCH_EXAMPLES)(match)
app.command("review-matches", epilog=REVIEW_EXAMPLES)(review_matches)

from avs_synth_cli.corpus import SAMPLE_CORPUS_EXAMPLES, sample_corpus  # noqa: E402

app.command("sample-corpus", epilog=SAMPLE_CORPUS_EXAMPLES)(sample_corpus)

from avs_synth_cli.import_data import app as import_app  # noqa: E402

app.add_typer(import_app, name="import")
