"""Seeded, platform-independent ordering: the build's only source of randomness.

Every choice the build makes (which picture goes to which split, which clip a triplet gets, which
candidates survive a cap) is an order by :func:`seeded_key`, a keyed BLAKE2 hash of the seed and
the item's identity. Unlike Python's ``hash`` or a shared ``random.Random``, it gives the same
order in every process, on every machine and whatever else is in the list, so the build is
byte-identical across worker counts and partitions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

_SEPARATOR = "\x1f"


def seeded_key(seed: int, *parts: object) -> int:
    """A 64-bit integer fixed by ``seed`` and ``parts`` (their ``str``), uniform over items."""
    text = _SEPARATOR.join([str(int(seed)), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def seeded_sorted(
    items: Iterable[T], *, seed: int, identity: Callable[[T], object], salt: str
) -> list[T]:
    """``items`` in the order of ``seeded_key(seed, salt, identity(item))`` (ties by identity).

    Args:
        items: what to order.
        seed: the build seed.
        identity: a stable, unique identity for each item (a key string, a clip id).
        salt: names the decision, so that two decisions over the same items are independent.
    """
    prefix = f"{int(seed)}{_SEPARATOR}{salt}{_SEPARATOR}"  # seeded_key(seed, salt, ...)'s text

    def key(item: T) -> tuple[int, str]:
        name = str(identity(item))
        digest = hashlib.blake2b((prefix + name).encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big"), name

    return sorted(items, key=key)


def seeded_uniform(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``parts``."""
    return seeded_key(seed, *parts) / 2.0**64
