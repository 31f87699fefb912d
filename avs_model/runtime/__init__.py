"""What training and evaluation share: the experiment config (``TrainConfig``, saved in every
checkpoint), the checkpoint format, device and process group, mixed precision, the progress bar.

May import :mod:`avs_model.modeling` and :mod:`avs_model.data`; not evaluation or training.
"""
