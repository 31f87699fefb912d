"""The seeded order: fixed values (the shards' bytes depend on them), and the sort's key."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from avs_synth.seeded_order import seeded_key, seeded_sorted, seeded_uniform


def test_keys_are_fixed_across_versions_and_machines():
    # blake2b-64 of "0\x1fsplit\x1fabc": a changed value would change every build's output
    digest = hashlib.blake2b(b"0\x1fsplit\x1fabc", digest_size=8).digest()
    assert seeded_key(0, "split", "abc") == int.from_bytes(digest, "big")
    assert seeded_key(0, "a") != seeded_key(1, "a") != seeded_key(0, "b")
    assert 0 <= seeded_uniform(3, "x") < 1


@given(
    st.lists(st.text(max_size=6) | st.integers(), unique_by=str, max_size=40),
    st.integers(0, 2**32),
    st.text(max_size=5),
)
def test_seeded_sorted_orders_by_the_key_then_the_identity(items, seed, salt):
    expected = sorted(items, key=lambda item: (seeded_key(seed, salt, item), str(item)))
    assert seeded_sorted(items, seed=seed, identity=lambda item: item, salt=salt) == expected
