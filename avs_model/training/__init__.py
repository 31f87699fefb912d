"""Training: the loop (``engine``), setting up and resuming a run, ``avs-train pretrain`` and
``avs-train finetune``, and the run log (CSV, TensorBoard).

May import every other stage of :mod:`avs_model`.
"""
