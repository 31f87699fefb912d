"""16-bit FLAC: encoding float or int16 samples deterministically, shared by every stage.

The shard schema stores audio windows with it, the sample corpus writes clips with it, and
reading back (:func:`avs_synth.audio.decode.load_audio`, or soundfile as float) gives
``int16 / 32768``, the AVSBench convention.
"""

from __future__ import annotations

import io
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:  # torch is imported only by callers that hand tensors (a plan needs no torch)
    import torch


def _to_int16(samples: np.ndarray | torch.Tensor) -> np.ndarray:
    """``[N]`` or ``[N, C]`` samples as int16 PCM: float audio is scaled by 32768 (the inverse
    of reading ``int16 / 32768``), rounded and clipped; int16 is kept as is."""
    if hasattr(samples, "detach"):  # a torch.Tensor
        samples = samples.detach().cpu().numpy()
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2):
        raise ValueError(f"samples must be [N] or [N, C], got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"samples must be float or int16, got {samples.dtype}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain NaN or infinity")
    scaled = np.rint(samples.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def encode_flac(samples: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """Encode samples as 16-bit FLAC bytes (deterministic: the same input gives the same bytes).

    Args:
        samples: ``[N]`` or ``[N, C]`` float samples in [-1, 1) or int16 PCM. Floats are
            quantised to ``round(x * 32768)`` so reading back with :func:`load_audio` (or soundfile
            as float) gives ``x`` to within 1/65536.
        sample_rate: the rate to record in the stream.
    """
    pcm = _to_int16(samples)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, int(sample_rate), format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def write_flac(
    path: str | PathLike[str], samples: np.ndarray | torch.Tensor, sample_rate: int
) -> Path:
    """Write :func:`encode_flac`'s bytes to ``path`` (parent folders are created) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_flac(samples, sample_rate))
    return path
