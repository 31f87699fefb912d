"""``avs-synth sample-corpus``: synthetic categories, pictures and sounds written in the real
on-disk formats of LVIS, COCO, Open Images, VGGSound and AVSBench, for the tests and the demo.

May import :mod:`avs_synth.matching`, :mod:`avs_synth.sources`, :mod:`avs_synth.audio` and the
shared modules; not :mod:`avs_synth.building` (the corpus is an input of the build, not its
output).
"""
