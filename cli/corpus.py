"""`avs-synth sample-corpus`: a thin wrapper over
:func:`avs_synth.sample_corpus.writer.write_sample_corpus`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from avs_synth.sample_corpus.summary import SIZE_PRESETS
from avs_synth_cli.common import examples, fail, os_error_text

SAMPLE_CORPUS_EXAMPLES = examples(
    "avs-synth sample-corpus sample_corpus/",
    "avs-synth sample-corpus sample_corpus/ --size tiny --no-mp4 --seed 1",
)
SizePreset = Literal[tuple(SIZE_PRESETS)]  # type: ignore[valid-type]


def sample_corpus(
    out: Annotated[Path, typer.Argument(help="Folder to write the corpus into.")],
    seed: Annotated[int, typer.Option(help="Random seed; equal seeds give identical files.")] = 0,
    size: Annotated[SizePreset, typer.Option(help="Corpus size preset.")] = "small",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a sample corpus already in OUT.")
    ] = False,
    mp4: Annotated[
        bool, typer.Option("--mp4/--no-mp4", help="Also write mp4 clips (AAC, through PyAV).")
    ] = True,
) -> None:
    """Write a small corpus (synthetic pictures and sounds, real category ids) in the real on-disk
    formats of LVIS v1, COCO 2017, Open Images V7, VGGSound and AVSBench S4 / MS3."""
    from avs_synth.sample_corpus.writer import write_sample_corpus  # imports torch: only here

    start = time.perf_counter()
    try:
        summary = write_sample_corpus(out, seed=seed, size=size, overwrite=overwrite, mp4=mp4)
    except OSError as error:  # OUT holds other files, is a file, or cannot be written
        raise fail(os_error_text(error)) from None
    counts = ", ".join(f"{k}={v}" for k, v in summary.counts().items())
    typer.echo(f"sample corpus written to {out} in {time.perf_counter() - start:.1f} s: {counts}")
