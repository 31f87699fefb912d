"""Scoring and using a model: AVSBench's metrics, picking the sounding mask, the evaluation loop,
the frames kept for pictures (gallery) and the page of best / worst frames, scoring synthetic
splits and AVSBench, ``avs-train evaluate`` and ``avs-train predict``.

May import :mod:`avs_model.runtime`, :mod:`avs_model.data` and :mod:`avs_model.modeling`; not
:mod:`avs_model.training` (training validates with this package, not the reverse).
"""
