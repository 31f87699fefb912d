"""Audio: decoding clips (soundfile; PyAV for media containers), the two resamplers (AVSBench's
moviepy-over-FFmpeg path, band-limited), choosing and cutting windows, opening clips for
windowing, what a decoded file must satisfy, the VGGish log-mel frontend that AVSBench's audio
input is computed with, the seeded silence / noise windows of class-less negatives and the list of
ambience classes whose real clips can stand in for them.

May import the shared modules of :mod:`avs_synth` only (not another stage).
"""
