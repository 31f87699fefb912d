"""avs-synth: synthetic (image, mask, audio) triplets for annotation-free AVS.

The data flow, one sub-package per stage (each may import only the stages below it; checked by
import-linter in ``make test``):

- :mod:`~avs_synth.sources` and :mod:`~avs_synth.audio`: reading the raw datasets (one reader per
  dataset) and audio (decoding, windows, the VGGish log-mel frontend);
- :mod:`~avs_synth.matching`: which visual categories sound like which VGGSound classes;
- :mod:`~avs_synth.building`: composing triplets and writing WebDataset shards;
  :mod:`~avs_synth.sample_corpus`: a corpus in every source's real format, for tests and the demo.

The modules at this level are shared by every stage and import no stage: ``schema`` (the shard
sample format), ``records`` (what the readers yield), ``masks``, ``flac``, ``errors``,
``safe_paths``, ``safe_pickle``, ``seeded_order``, ``overlay`` (masks drawn over pictures) and
``pages`` (static HTML pages of pictures with their sound, for shards and predictions alike).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("avs-synth")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
