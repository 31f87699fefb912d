"""A user-supplied audio tagger's probability for a window's class (``avs-synth build --tagger``).

The energy / flatness score (:mod:`avs_synth.audio.audibility`) says whether something sounds;
a tagger trained on VGGSound or AudioSet says whether *the labelled class* sounds. The user gives:

- a TorchScript file (``torch.jit.save`` of a scripted or traced module; never a pickle: nothing
  in it runs as Python) mapping a float32 mono window ``[1, samples]`` at the build's window rate
  (16 kHz by default) to class scores ``[1, C]``;
- its label list: a UTF-8 text file, one label per line, in the model's output order (labels
  compared verbatim with the VGGSound label of the window's clip);
- how the scores become probabilities: ``sigmoid`` (multi-label taggers, e.g. AudioSet),
  ``softmax`` (single-label classifiers) or ``none`` (the model outputs probabilities).

The model runs in each worker on one thread (the same sums whatever the worker count, so the
shards stay byte-identical across ``--workers``); a window whose class is not in the label list
gets no probability.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from avs_synth.errors import DataFormatError

TaggerActivation = Literal["sigmoid", "softmax", "none"]
TAGGER_ACTIVATIONS: tuple[str, ...] = get_args(TaggerActivation)


@dataclass(frozen=True)
class TaggerConfig:
    """A checked tagger: where it is, what it is, and its labels.

    Args:
        path: the TorchScript file (absolute paths differ between machines: the build's plan
            identifies the model by ``sha256``).
        sha256: the file's digest.
        labels: the output classes, in order.
        activation: ``sigmoid``, ``softmax`` or ``none``.
    """

    path: Path
    sha256: str
    labels: tuple[str, ...]
    activation: TaggerActivation = "sigmoid"


def read_tagger_labels(path: Path) -> tuple[str, ...]:
    """One label a line (blank lines not allowed: the line number is the output index).

    Raises:
        DataFormatError: not UTF-8, an empty or repeated label, or no label (file and line named).
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        label = line.strip()
        if not label:
            raise DataFormatError(
                path, "empty label (one label a line, in output order)", line=number
            )
        if label in seen:
            raise DataFormatError(path, f"label {label!r} listed twice", line=number)
        seen.add(label)
    if not lines:
        raise DataFormatError(path, "no label in the file")
    return tuple(line.strip() for line in lines)


def _load(path: Path):
    import torch

    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataFormatError(path, f"not a TorchScript file (torch.jit.save): {first}") from None
    model.eval()
    return model


def load_tagger(
    model: Path, labels: Path, *, activation: TaggerActivation, sample_rate: int
) -> TaggerConfig:
    """Check a tagger once, before a build: the file loads as TorchScript and maps a second of
    silence ``[1, sample_rate]`` to ``[1, len(labels)]`` finite scores.

    Raises:
        FileNotFoundError: a file is missing.
        DataFormatError: the model or the labels are not what they must be (file named).
    """
    if activation not in TAGGER_ACTIVATIONS:
        raise ValueError(
            f"tagger activation must be one of {TAGGER_ACTIVATIONS}, got {activation!r}"
        )
    model, labels = Path(model), Path(labels)
    for path in (model, labels):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tagger file not found")
    names = read_tagger_labels(labels)
    config = TaggerConfig(
        path=model.resolve(),
        sha256=hashlib.sha256(model.read_bytes()).hexdigest(),
        labels=names,
        activation=activation,
    )
    scores = _scores(_load(model), np.zeros(sample_rate, dtype=np.float32), model)
    if scores.shape != (len(names),):
        raise DataFormatError(
            model,
            f"the model maps [1, {sample_rate}] to {list(scores.shape)} scores; "
            f"{labels} lists {len(names)} labels",
        )
    return config


def _scores(model, window: np.ndarray, path: Path) -> np.ndarray:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))[None])
    except RuntimeError as error:
        raise DataFormatError(path, f"the model failed on a window: {error}") from None
    finally:
        torch.set_num_threads(threads)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        raise DataFormatError(path, "the model must return one tensor of class scores [1, C]")
    scores = out[0].double().numpy()
    if not np.all(np.isfinite(scores)):
        raise DataFormatError(path, "the model returned a NaN or infinite score")
    return scores


_LOADED: dict[str, object] = {}


def tagger_probability(tagger: TaggerConfig, window: np.ndarray, label: str) -> float | None:
    """The tagger's probability that ``label`` sounds in ``window`` (None when the tagger has no
    such label). The model is loaded once per process."""
    if label not in tagger.labels:
        return None
    model = _LOADED.get(tagger.sha256)
    if model is None:
        if hashlib.sha256(tagger.path.read_bytes()).hexdigest() != tagger.sha256:
            raise DataFormatError(tagger.path, "the tagger file changed since the build began")
        model = _LOADED[tagger.sha256] = _load(tagger.path)
    scores = _scores(model, window, tagger.path)
    if tagger.activation == "sigmoid":
        probs = 1.0 / (1.0 + np.exp(-scores))
    elif tagger.activation == "softmax":
        shifted = np.exp(scores - scores.max())
        probs = shifted / shifted.sum()
    else:
        probs = np.clip(scores, 0.0, 1.0)
    return float(probs[tagger.labels.index(label)])
