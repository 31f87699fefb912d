"""Category matching: the vocabularies, name normalisation, the candidate rule, the verification
table ``matches.csv``, and reviewing it in the terminal (with pictures of the examples) or in
the FiftyOne App.

May import :mod:`avs_synth.sources`, :mod:`avs_synth.audio` and the shared modules.
"""
