"""The mask-area distribution of AVSBench S4's training masks, as ``--crop object``'s target.

``avs-synth build --crop object --avsbench ROOT`` (without ``--crop-area``) frames each positive so
that its mask covers a share of the crop drawn from how much of the frame S4's sounding objects
cover: :func:`measure_s4_mask_areas` reads every S4 train ground-truth mask (frame 1, the only
annotated train frame) with the project's official S4 reader
(:func:`avs_synth.sources.avsbench.read_official_mask`, PIL ``convert('1')`` as AVSBench's loader
does) and counts their area fractions in a :class:`~avs_synth.building.framing.MaskAreaHistogram`,
which the build records in its configuration and manifest. Only the train split is read: the
val / test masks are what a model is scored on.
"""

from __future__ import annotations

import logging
from os import PathLike

from avs_synth.building.framing import MaskAreaHistogram
from avs_synth.errors import DataFormatError
from avs_synth.sources.avsbench import AVSBenchReader, read_official_mask

logger = logging.getLogger(__name__)

S4_TRAIN_MASKS = "AVSBench S4 train ground-truth masks (frame 1, official S4 reading)"


def measure_s4_mask_areas(root: str | PathLike[str]) -> MaskAreaHistogram:
    """The area-fraction histogram of the S4 train masks under ``root``.

    A missing or unreadable mask is skipped (logged, counted in ``skipped``); an empty one is
    counted in ``empty`` and left out of the histogram.

    Raises:
        FileNotFoundError: no S4 layout under ``root``.
        DataFormatError: a malformed S4 meta CSV, or no train mask could be read.
    """
    reader = AVSBenchReader(root=root, subset="s4")
    fractions: list[float] = []
    empty = skipped = 0
    for video in reader.videos("train"):
        path = video.mask_paths[0]
        if path is None:
            skipped += 1
            continue
        try:
            mask = read_official_mask(path, "s4")
        except (FileNotFoundError, DataFormatError) as error:
            logger.warning("S4 mask skipped: %s", error)
            skipped += 1
            continue
        if mask.size == 0 or not mask.any():
            empty += 1
            continue
        fractions.append(float(mask.mean()))
    if not fractions:
        raise DataFormatError(
            reader.meta_csv,
            f"no readable non-empty S4 train mask ({skipped} skipped, {empty} empty)",
        )
    return MaskAreaHistogram.of_fractions(
        fractions, source=S4_TRAIN_MASKS, empty=empty, skipped=skipped
    )
