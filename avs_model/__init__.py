"""AuTR (audio-aware query-enhanced transformer) for audio-visual segmentation.

One sub-package per stage, each importing only those below it (checked by import-linter in
``make test``):

- :mod:`~avs_model.training`: the training loop, runs, ``pretrain`` and ``finetune``, run logs;
- :mod:`~avs_model.evaluation`: metrics, inference, the evaluation loop, ``evaluate``, ``predict``;
- :mod:`~avs_model.runtime`: what training and evaluation share: the experiment config saved in
  every checkpoint, checkpoints, devices and processes, mixed precision, the progress bar;
- :mod:`~avs_model.data` (the synthetic stream, augmentation, audio bank, AVSBench) and
  :mod:`~avs_model.modeling` (the model, matcher, criterion and losses), independent of each
  other.

:mod:`avs_model` reads shards through :mod:`avs_synth.schema` and AVSBench through
:mod:`avs_synth.sources`; it never imports :mod:`avs_synth.building`, :mod:`avs_synth.matching`
or :mod:`avs_synth.sample_corpus`.
"""
