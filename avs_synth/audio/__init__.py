"""Audio: decoding clips (soundfile; PyAV for media containers), the two resamplers (AVSBench's
moviepy-over-FFmpeg path, band-limited), choosing and cutting windows, opening clips for
windowing, what a decoded file must satisfy, and the VGGish log-mel frontend that AVSBench's
audio input is computed with.

May import the shared modules of :mod:`avs_synth` only (not another stage).
"""
