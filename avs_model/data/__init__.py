"""What feeds the model: the synthetic shard stream (and its clip samples), joint augmentation,
the audio bank that re-pairs train audio, the AVSBench dataset, and the frame batches the loops
consume.

Imports no other stage of :mod:`avs_model` (independent of :mod:`avs_model.modeling`).
"""
