"""Which real clip a ``silence`` / ``noise`` negative takes (``--noise-from``, ``--silence-from``).

By default these negatives are synthesized in the worker (:mod:`avs_synth.audio.negative_audio`)
and the plan gives them no clip. With ``noise_from`` ``ambience`` / ``both`` a noise negative
takes a clip of an ambience class without a visual match (:mod:`avs_synth.audio.ambience`), with
``silence_from`` ``quiet`` / ``both`` a silence negative takes any usable clip of its split, in
which the worker looks for a window below ``quiet_dbfs``
(:func:`avs_synth.audio.windows.choose_quiet_window`). The plan decodes no audio: it only
pairs, round robin over each split's pool in seeded order; ``both`` decides per sample by a
seeded coin (synthetic where the split's pool is empty).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from avs_synth.audio.ambience import shipped_ambience_classes
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import assign_clips
from avs_synth.records import AudioClip
from avs_synth.seeded_order import seeded_sorted, seeded_uniform

REAL_SOURCE = {"noise": "ambience", "silence": "quiet"}
"""The ``noise_from`` / ``silence_from`` value that takes a synthetic kind's audio from a clip."""

RealPools = dict[tuple[str, str], list[AudioClip]]


def negative_source(kind: str, config: BuildConfig) -> str:
    """``noise_from`` for ``noise``, ``silence_from`` for ``silence``."""
    return config.noise_from if kind == "noise" else config.silence_from


def ambience_labels(config: BuildConfig, matched: Iterable[str]) -> set[str]:
    """The ambience classes a build draws noise clips from: the shipped list less the ``matched``
    audio classes (empty when noise is synthetic only)."""
    if "noise" not in config.negatives or config.noise_from == "synthetic":
        return set()
    return set(shipped_ambience_classes()) - set(matched)


def real_negative_pools(
    ambience_clips: list[AudioClip], pools: RealPools, config: BuildConfig
) -> RealPools:
    """``(split, kind) -> clips`` of the real ``noise`` (the ambience clips, split as every class's
    clips are) and ``silence`` (every usable clip of the split: ``pools``) negatives, in seeded
    order."""
    out: RealPools = defaultdict(list)
    if config.noise_from != "synthetic":
        unique = list({clip.clip_id: clip for clip in ambience_clips}.values())
        ambience_split = assign_clips(unique, config.fractions, seed=config.seed)
        for clip in unique:
            if clip.clip_id in ambience_split:
                out[(ambience_split[clip.clip_id], "noise")].append(clip)
    if config.silence_from != "synthetic":
        for (split, _), pool in sorted(pools.items()):
            out[(split, "silence")].extend(pool)
    return {
        k: seeded_sorted(v, seed=config.seed, identity=lambda c: c.clip_id, salt=f"real-{k[1]}")
        for k, v in out.items()
    }


def lacks_real_clip(kind: str, split: str, config: BuildConfig, real_pools: RealPools) -> bool:
    """True when a ``kind`` negative of ``split`` must take a real clip and the pool has none."""
    return negative_source(kind, config) == REAL_SOURCE[kind] and not real_pools.get((split, kind))


def real_negative_clip(
    kind: str, split: str, key: str, n: int, *, config: BuildConfig, real_pools: RealPools
) -> AudioClip | None:
    """The clip of the ``n``-th ``kind`` negative of ``split`` (None: synthesized): with
    ``ambience`` / ``quiet`` always (round robin over the split's pool), with ``both`` when a
    seeded coin says so and the pool has a clip."""
    source = negative_source(kind, config)
    pool = real_pools.get((split, kind), [])
    if source == "synthetic" or not pool:
        return None
    if source == "both" and seeded_uniform(config.seed, "negative-source", key) < 0.5:
        return None
    return pool[n % len(pool)]
