"""Audio: decoding clips (soundfile, FFmpeg), choosing and cutting windows, opening clips for
windowing, and the VGGish log-mel frontend that AVSBench's audio input is computed with.

May import the shared modules of :mod:`avs_synth` only (not another stage).
"""
