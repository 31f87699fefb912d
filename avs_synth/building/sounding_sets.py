"""Which of a picture's classes sound together in its multi-source triplets (``sources``,
``mixes_per_picture`` of :class:`~avs_synth.building.config.BuildConfig`).

A picture gives up to ``mixes_per_picture`` distinct sets of sounding classes, the rest of its
classes silent. Mix ``m`` orders the classes by its own seeded order (mix 0's is the one of the
build before ``mixes_per_picture``, so one mix per picture plans as before) and draws its count
with the configured weights among the counts the picture allows; it takes the first set of that
count, in that order, that no earlier mix took (the other counts, in configured order, when every
set of the drawn count is taken). Every choice is a seeded order or draw
(:mod:`avs_synth.seeded_order`), so the sets depend only on the seed and the picture.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

from avs_synth.seeded_order import seeded_sorted, seeded_uniform

T = TypeVar("T")


def sounding_sets(
    classes: Sequence[T],
    *,
    identity: Callable[[T], str],
    picture: str,
    seed: int,
    sources: Sequence[tuple[int, float]],
    mixes: int,
) -> list[tuple[list[T], list[T]]]:
    """Up to ``mixes`` distinct ``(sounding, silent)`` splits of a picture's ``classes``.

    Args:
        classes: the picture's positive candidates, one per audio class.
        identity: a stable, unique identity of a candidate (its triplet key).
        picture: the picture's key (seeds the count draws).
        seed: the build seed.
        sources: ``((count, weight), ...)``, the configured source counts.
        mixes: how many distinct sets to give at most.

    Returns:
        The sets in mix order, each sounding list and silent list in the mix's seeded order;
        empty when no configured count fits the picture, shorter than ``mixes`` when its sets
        run out.
    """
    feasible = [(k, w) for k, w in sources if k <= len(classes)]
    if not feasible:
        return []
    taken: set[frozenset[str]] = set()
    out: list[tuple[list[T], list[T]]] = []
    for mix in range(mixes):
        ordered = seeded_sorted(
            classes, seed=seed, identity=identity, salt="sources" if mix == 0 else f"sources-{mix}"
        )
        draw = seeded_uniform(seed, "source-count", picture, *((mix,) if mix else ()))
        chosen = _untaken(ordered, _drawn_count(feasible, draw), feasible, taken, identity)
        if chosen is None:
            break
        keys = frozenset(identity(c) for c in chosen)
        taken.add(keys)
        out.append((chosen, [c for c in ordered if identity(c) not in keys]))
    return out


def _drawn_count(feasible: Sequence[tuple[int, float]], draw: float) -> int:
    """The source count that ``draw`` (uniform in [0, 1)) picks with the feasible weights."""
    total = sum(w for _, w in feasible)
    acc = 0.0
    for k, w in feasible:
        acc += w / total
        if draw < acc:
            return k
    return feasible[-1][0]


def _untaken(
    ordered: Sequence[T],
    count: int,
    feasible: Sequence[tuple[int, float]],
    taken: set[frozenset[str]],
    identity: Callable[[T], str],
) -> list[T] | None:
    """The first set of ``count`` classes of ``ordered`` (combinations in order) not ``taken``;
    the other feasible counts when every set of ``count`` is taken; None when all are. At most
    ``len(taken) + 1`` sets of each count are looked at."""
    for k in (count, *(k for k, _ in feasible if k != count)):
        for combo in itertools.combinations(ordered, k):
            if frozenset(identity(c) for c in combo) not in taken:
                return list(combo)
    return None
