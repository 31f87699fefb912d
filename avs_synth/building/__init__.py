"""``avs-synth build``: its config and inputs, the plan, splits, the shard builder and writer, the
manifest and report, the run (parallel, resumable, partitionable) and ``inspect`` (text, the
HTML page, FiftyOne).

May import :mod:`avs_synth.matching`, :mod:`avs_synth.sources`, :mod:`avs_synth.audio` and the
shared modules; not :mod:`avs_synth.sample_corpus`.
"""
