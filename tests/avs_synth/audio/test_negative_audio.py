"""Silence and noise windows of class-less negatives: seeded, at their stated levels."""

from __future__ import annotations

import numpy as np
import pytest

from avs_synth.audio.negative_audio import ZERO_FLOOR_DBFS, level_dbfs, negative_window


def test_windows_are_a_function_of_seed_and_key() -> None:
    a, policy_a = negative_window("noise", 16000, seed=3, key="k1")
    b, policy_b = negative_window("noise", 16000, seed=3, key="k1")
    assert policy_a == policy_b and np.array_equal(a, b)
    c, _ = negative_window("noise", 16000, seed=4, key="k1")
    assert not np.array_equal(a, c)


def test_levels_and_policies_over_many_keys() -> None:
    seen = {"silence": set(), "noise": set()}
    for n in range(40):
        for kind in seen:
            samples, policy = negative_window(kind, 8000, seed=0, key=f"key{n}")
            assert samples.dtype == np.float32 and samples.shape == (8000,)
            level = level_dbfs(samples)
            seen[kind].add(policy)
            if policy == "zeros":
                assert not samples.any() and level == ZERO_FLOOR_DBFS
            elif policy == "floor":
                assert -80.5 <= level <= -59.5
            else:
                assert -30.5 <= level <= -11.5
    assert seen == {"silence": {"zeros", "floor"}, "noise": {"white", "pink"}}


def test_pink_noise_has_more_power_low() -> None:
    for n in range(20):
        samples, policy = negative_window("noise", 16000, seed=1, key=f"p{n}")
        if policy == "pink":
            power = np.abs(np.fft.rfft(samples)) ** 2
            assert power[10:200].mean() > 10 * power[4000:8000].mean()
            return
    pytest.fail("no pink window in 20 keys")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no synthetic audio"):
        negative_window("absent", 10, seed=0, key="k")
