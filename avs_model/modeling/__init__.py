"""The model (as DETR's ``models/``): AuTR and its parts, their config and builders, the matcher,
the criterion and the loss functions.

Imports no other stage of :mod:`avs_model` (not data, runtime, evaluation or training); from
:mod:`avs_synth` only the audio frontend.
"""
