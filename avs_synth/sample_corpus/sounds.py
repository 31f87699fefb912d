"""Synthetic sound clips, one acoustic signature per sample-corpus audio class (16 kHz, mono).

Every VGGSound label of :mod:`avs_synth.sample_corpus.categories` has a recipe built from a few
ingredients: harmonic series on a pitch track (fundamental, number and roll-off of harmonics),
amplitude and frequency modulation (siren sweeps, vibrato, blade slap), band-limited noise
(rumble, hiss, breath) and event patterns (barks, meows, hoof beats, key clicks, plucked notes).
All parameters are drawn at random per clip, so no two clips are equal, while each class keeps
its own pitch range, spectral envelope and rhythm. Like real VGGSound clips, some clips have
near-silent stretches (only a faint noise floor) and every clip has background noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from avs_synth.sample_corpus.categories import CATEGORIES

SAMPLE_RATE = 16_000


# --------------------------------------------------------------------------------------------
# Ingredients. Events are synthesised on their own slice and added into the clip.
# --------------------------------------------------------------------------------------------

_TABLE_SIZE = 4096


@functools.lru_cache(maxsize=256)
def _wavetable(amps: tuple[float, ...]) -> np.ndarray:
    """One period of ``sum_k amps[k-1] sin(k x)``, tabulated (+1 wrap-around sample)."""
    grid = np.arange(_TABLE_SIZE) * (2.0 * math.pi / _TABLE_SIZE)
    table = np.zeros(_TABLE_SIZE + 1)
    for k, a in enumerate(amps, start=1):
        table[:-1] += a * np.sin(k * grid)
    table[-1] = table[0]
    table.flags.writeable = False
    return table


def _osc(
    amps: list[float], f0: np.ndarray | float, m: int, sr: int, *, phase0: float = 0.0
) -> np.ndarray:
    """``m`` samples of the harmonic series ``sum_k amps[k-1] sin(k phase)`` on pitch ``f0``.

    Wavetable synthesis: one period is tabulated and read at the running phase, so the cost does
    not grow with the number of harmonics. Harmonics above 7.6 kHz at the highest pitch are
    dropped (no aliasing).
    """
    f0_arr = np.broadcast_to(np.asarray(f0, dtype=np.float64), (m,))
    top = float(f0_arr.max()) if m else 1.0
    keep = max(1, min(len(amps), int(7600.0 // max(top, 1.0))))
    table = _wavetable(tuple(float(a) for a in amps[:keep]))
    cycles = np.cumsum(f0_arr) / sr + phase0 / (2.0 * math.pi)
    pos = (cycles - np.floor(cycles)) * _TABLE_SIZE
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] * (1.0 - frac) + table[i + 1] * frac


def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int) -> np.ndarray:
    """White noise band-passed to [lo, hi] Hz (brick wall in the FFT domain), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _span(n: int, sr: int, start: float, length: float) -> tuple[int, int]:
    i0 = max(0, int(start * sr))
    return i0, min(n, max(i0, int((start + length) * sr)))


def _ramp_env(m: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack / release envelope over ``m`` samples."""
    tt = np.arange(m) / sr
    length = m / sr
    a = np.clip(tt / max(attack, 1e-4), 0.0, 1.0)
    r = np.clip((length - tt) / max(release, 1e-4), 0.0, 1.0)
    return a * r


def _decay_env(m: int, sr: int, tau: float, attack: float = 0.003) -> np.ndarray:
    tt = np.arange(m) / sr
    return np.exp(-tt / tau) * np.clip(tt / attack, 0.0, 1.0)


def _decay_len(n: int, sr: int, i0: int, tau: float) -> int:
    return max(0, min(n - i0, int(6.0 * tau * sr)))


def _event_times(rng: np.random.Generator, duration: float, rate: float, min_gap: float):
    """Onsets of a Poisson-like event train with a minimum gap."""
    times, t = [], rng.uniform(0.0, 1.0 / rate)
    while t < duration:
        times.append(t)
        t += min_gap + rng.exponential(1.0 / rate)
    return times


def _formant_filter(x: np.ndarray, f1: float, f2: float, sr: int) -> np.ndarray:
    """Emphasise two formant regions (resonance peaks at ``f1`` and ``f2``) in the FFT domain."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    gain = 1.0 / (1.0 + ((freqs - f1) / 110.0) ** 2) + 0.7 / (1.0 + ((freqs - f2) / 160.0) ** 2)
    return np.fft.irfft(spec * (gain + 0.05), len(x))


# --------------------------------------------------------------------------------------------
# Recipes: (rng, n, sr) -> float waveform (any level; normalised afterwards).
# --------------------------------------------------------------------------------------------


def _ambulance_siren(rng, n, sr):
    t = np.arange(n) / sr
    fc, dev = rng.uniform(650, 950), rng.uniform(220, 380)
    period = rng.uniform(0.3, 0.6) if rng.random() < 0.4 else rng.uniform(1.5, 3.5)
    f0 = fc + dev * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    x = _osc([1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14], f0, n, sr)  # odd harmonics: a square-ish horn
    centre = rng.uniform(0.2, 0.8) * t[-1]  # level swell of a passing vehicle
    swell = 0.4 + 0.6 / (1.0 + ((t - centre) / rng.uniform(2.0, 5.0)) ** 2)
    return x * swell + 0.06 * _band_noise(rng, n, 40, 400, sr)


def _cat_meowing(rng, n, sr):
    out = np.zeros(n)
    for start in _event_times(rng, n / sr - 1.0, 0.45, 0.6):
        i0, i1 = _span(n, sr, start, rng.uniform(0.5, 1.2))
        m = i1 - i0
        f_lo, f_hi = rng.uniform(600, 750), rng.uniform(950, 1200)
        f0 = f_lo + (f_hi - f_lo) * np.sin(math.pi * np.linspace(0.0, 1.0, m)) ** 0.7
        amps = [1.0, 0.45, 0.2, 0.08]  # a nearly pure, high glide
        out[i0:i1] += _ramp_env(m, sr, 0.08, 0.25) * _osc(amps, f0, m, sr)
    return out + 0.01 * rng.standard_normal(n)


def _dog_barking(rng, n, sr):
    out = np.zeros(n)
    noise = _band_noise(rng, n, 300, 2500, sr)
    amps = [1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    for group in _event_times(rng, n / sr - 1.0, 0.5, 0.8):
        for b in range(int(rng.integers(1, 4))):
            i0, i1 = _span(n, sr, group + b * rng.uniform(0.25, 0.4), rng.uniform(0.12, 0.22))
            m = i1 - i0
            f0 = rng.uniform(260, 420) * np.linspace(1.1, 0.75, m)  # a short, falling, rough bark
            bark = _osc(amps, f0, m, sr) + 1.3 * noise[i0:i1]
            out[i0:i1] += _ramp_env(m, sr, 0.01, 0.08) * bark
    return out + 0.01 * rng.standard_normal(n)


def _driving_buses(rng, n, sr):
    t = np.arange(n) / sr
    f0 = rng.uniform(38, 65) * (1.0 + 0.15 * np.sin(2 * math.pi * t / rng.uniform(4, 9)))
    engine = _osc([1.0 / k**0.7 for k in range(1, 14)], f0, n, sr)
    engine *= 1.0 + 0.3 * np.sin(2 * math.pi * 11.0 * t)
    x = 0.5 * engine + 0.9 * _band_noise(rng, n, 30, 350, sr)
    if rng.random() < 0.6:  # air-brake hiss
        i0, i1 = _span(n, sr, rng.uniform(1.0, t[-1] - 1.5), rng.uniform(0.4, 0.9))
        hiss = rng.standard_normal(i1 - i0) * 0.25
        x[i0:i1] += _ramp_env(i1 - i0, sr, 0.02, 0.3) * hiss
    return x


def _horse_clip_clop(rng, n, sr):
    stride = 1.0 / rng.uniform(1.4, 2.4)
    offsets = np.array([0.0, 0.22, 0.5, 0.72]) * stride
    out = np.zeros(n)
    hoof = _band_noise(rng, n, 1200, 3000, sr) + 0.6 * np.sin(
        2 * math.pi * rng.uniform(350, 600) * np.arange(n) / sr
    )
    t0 = rng.uniform(0, stride)
    while t0 < n / sr:
        for off in offsets:
            i0 = int((t0 + off + rng.normal(0, 0.008)) * sr)
            if 0 <= i0 < n:
                tau = rng.uniform(0.012, 0.02)
                m = _decay_len(n, sr, i0, tau)
                out[i0 : i0 + m] += (
                    rng.uniform(0.6, 1.0) * _decay_env(m, sr, tau) * hoof[i0 : i0 + m]
                )
        t0 += stride
    return out + 0.02 * rng.standard_normal(n)


def _lions_roaring(rng, n, sr):
    out = np.zeros(n)
    breath = _band_noise(rng, n, 150, 1200, sr)
    amps = [0.6, 1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1]
    rough_hz = rng.uniform(25, 35)
    for start in _event_times(rng, n / sr - 2.5, 0.25, 1.0):
        i0, i1 = _span(n, sr, start, rng.uniform(1.5, 2.8))
        m = i1 - i0
        f0 = np.linspace(rng.uniform(150, 210), rng.uniform(70, 95), m)
        rough = 1.0 + 0.5 * np.sin(2 * math.pi * rough_hz * np.arange(m) / sr)
        tone = _osc(amps, f0, m, sr) * rough + 0.7 * breath[i0:i1]
        out[i0:i1] += _ramp_env(m, sr, 0.3, 0.8) * tone
    return out + 0.02 * breath[::-1]


def _mynah_bird_singing(rng, n, sr):
    out = np.zeros(n)
    for start in _event_times(rng, n / sr - 0.3, 4.0, 0.06):
        i0, i1 = _span(n, sr, start, rng.uniform(0.05, 0.2))
        m = i1 - i0
        fa, fb = rng.uniform(1800, 4500), rng.uniform(1800, 4500)
        x = np.linspace(0.0, 1.0, m)
        f0 = fa + (fb - fa) * x + rng.uniform(100, 400) * np.sin(2 * math.pi * 3 * x)
        env = _ramp_env(m, sr, 0.01, 0.03)
        out[i0:i1] += rng.uniform(0.4, 1.0) * env * _osc([1.0, 0.25], f0, m, sr)
    return out + 0.01 * rng.standard_normal(n)


_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21, 24])
_GUITAR_SCALE = 82.41 * 2.0 ** (_MAJOR[:9] / 12)
_PIANO_SCALE = 261.63 * 2.0 ** (_MAJOR / 12)
_VIOLIN_SCALE = 196.0 * 2.0 ** (_MAJOR / 12)


def _playing_acoustic_guitar(rng, n, sr):
    out = np.zeros(n)
    amps = [1.0 / k**1.1 for k in range(1, 12)]
    for start in _event_times(rng, n / sr - 0.5, 1.6, 0.25):
        strum = rng.random() < 0.4
        notes = rng.choice(_GUITAR_SCALE, size=int(rng.integers(3, 6)) if strum else 1)
        for j, f in enumerate(notes):
            i0 = int((start + j * rng.uniform(0.012, 0.03)) * sr)
            tau = rng.uniform(0.25, 0.6)
            m = _decay_len(n, sr, i0, tau)
            tone = _osc(amps, float(f), m, sr, phase0=rng.uniform(0, 6))
            out[i0 : i0 + m] += _decay_env(m, sr, tau) * tone
    return out + 0.005 * rng.standard_normal(n)


def _playing_piano(rng, n, sr):
    out = np.zeros(n)
    amps = [1.0, 0.5, 0.35, 0.2, 0.12, 0.08, 0.05]
    for start in _event_times(rng, n / sr - 0.5, 1.8, 0.2):
        i0 = int(start * sr)
        chord = rng.random() < 0.35
        for f in rng.choice(_PIANO_SCALE, size=3 if chord else 1, replace=False):
            tau = rng.uniform(0.6, 1.5)
            m = min(n - i0, int(3.0 * tau * sr))
            env = 0.7 * _decay_env(m, sr, tau * 0.25) + 0.3 * _decay_env(m, sr, tau)
            out[i0 : i0 + m] += env * _osc(amps, float(f), m, sr, phase0=rng.uniform(0, 6))
        m = _decay_len(n, sr, i0, 0.008)
        out[i0 : i0 + m] += 0.3 * _decay_env(m, sr, 0.008) * rng.standard_normal(m)
    return out + 0.004 * rng.standard_normal(n)


def _typing_on_computer_keyboard(rng, n, sr):
    out = np.zeros(n)
    click = _band_noise(rng, n, 2000, 7000, sr) + 0.5 * np.sin(
        2 * math.pi * rng.uniform(250, 450) * np.arange(n) / sr
    )
    t = rng.uniform(0, 0.5)
    while t < n / sr:
        burst_end = t + rng.uniform(1.0, 3.0)
        while t < min(burst_end, n / sr):
            i0 = int(t * sr)
            tau = rng.uniform(0.004, 0.008)
            m = _decay_len(n, sr, i0, tau)
            out[i0 : i0 + m] += rng.uniform(0.5, 1.0) * _decay_env(m, sr, tau) * click[i0 : i0 + m]
            t += rng.uniform(0.07, 0.22)
        t += rng.uniform(0.3, 1.2)
    return out + 0.01 * rng.standard_normal(n)


def _helicopter(rng, n, sr):
    rate = rng.uniform(4.0, 7.0)
    out = np.zeros(n)
    slap = _band_noise(rng, n, 80, 1200, sr)
    t = rng.uniform(0, 1 / rate)
    while t < n / sr:
        i0 = int(t * sr)
        tau = rng.uniform(0.03, 0.05)
        m = _decay_len(n, sr, i0, tau)
        out[i0 : i0 + m] += _decay_env(m, sr, tau, attack=0.005) * slap[i0 : i0 + m]
        t += 1.0 / rate * rng.uniform(0.98, 1.02)
    whine = 0.05 * np.sin(2 * math.pi * rng.uniform(2500, 3500) * np.arange(n) / sr)
    return out + 0.3 * slap[::-1] + whine


def _race_car(rng, n, sr):
    dur = n / sr
    t = np.arange(n) / sr
    f0 = np.zeros(n)
    seg_start, f = 0.0, rng.uniform(150, 220)
    while seg_start < dur:
        i0, i1 = _span(n, sr, seg_start, rng.uniform(1.0, 2.2))
        top = rng.uniform(330, 480)
        f0[i0:i1] = np.linspace(f, top, i1 - i0)
        f = top * rng.uniform(0.6, 0.72)  # gear shift
        seg_start = i1 / sr if i1 > i0 else dur
    x = _osc([1.0 / k**0.6 for k in range(1, 16)], f0, n, sr)
    centre = rng.uniform(0.3, 0.7) * dur
    level = 0.3 + 0.7 / (1.0 + ((t - centre) / rng.uniform(1.5, 3.0)) ** 2)
    return x * level + 0.25 * _band_noise(rng, n, 100, 3000, sr)


_VOWELS = ((730, 1090), (270, 2290), (300, 870), (530, 1840), (660, 1720), (490, 1350))


def _male_speech(rng, n, sr):
    out = np.zeros(n)
    amps = [1.0 / k for k in range(1, 40)]
    base = rng.uniform(95, 135)
    t = 0.2 + rng.uniform(0, 0.4)
    while t < n / sr - 0.4:
        for _ in range(int(rng.integers(2, 7))):  # a word of a few syllables
            i0, i1 = _span(n, sr, t, rng.uniform(0.13, 0.28))
            m = i1 - i0
            if m < 16:
                break
            x = np.linspace(0.0, 1.0, m)
            f0 = base * (1.0 + 0.12 * np.sin(math.pi * x)) * (1.0 + rng.normal(0, 0.03))
            f1, f2 = _VOWELS[int(rng.integers(len(_VOWELS)))]
            voiced = _osc(amps, f0, m, sr, phase0=rng.uniform(0, 6))
            voiced = _formant_filter(
                voiced, f1 * rng.uniform(0.9, 1.1), f2 * rng.uniform(0.9, 1.1), sr
            )
            out[i0:i1] += voiced * np.sin(math.pi * x) ** 0.6
            if rng.random() < 0.3:  # a fricative after the syllable
                j1 = min(n, i1 + int(rng.uniform(0.05, 0.1) * sr))
                fric = _band_noise(rng, j1 - i1, 3500, 7000, sr) if j1 - i1 > 8 else 0.0
                out[i1:j1] += 0.15 * fric * np.hanning(j1 - i1)
            t = i1 / sr + rng.uniform(0.01, 0.05)
        t += rng.uniform(0.2, 0.6)
    return out + 0.003 * rng.standard_normal(n)


def _playing_violin(rng, n, sr):
    dur = n / sr
    t = np.arange(n) / sr
    f0 = np.full(n, _VIOLIN_SCALE[0])
    env = np.zeros(n)
    s = rng.uniform(0.0, 0.3)
    while s < dur:
        i0, i1 = _span(n, sr, s, rng.uniform(0.35, 1.4))
        if i1 <= i0:
            break
        f0[i0:i1] = rng.choice(_VIOLIN_SCALE)
        env[i0:i1] += _ramp_env(i1 - i0, sr, 0.06, 0.08)
        s = i1 / sr + rng.uniform(0.0, 0.08)
    vib = 1.0 + rng.uniform(0.006, 0.012) * np.sin(2 * math.pi * rng.uniform(5.0, 7.0) * t)
    x = _osc([1.0 / k for k in range(1, 20)], f0 * vib, n, sr)
    x = _formant_filter(x, 500.0, 3000.0, sr)
    return x * env + 0.01 * rng.standard_normal(n)


RECIPES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "ambulance siren": _ambulance_siren,
    "cat meowing": _cat_meowing,
    "dog barking": _dog_barking,
    "driving buses": _driving_buses,
    "horse clip-clop": _horse_clip_clop,
    "lions roaring": _lions_roaring,
    "mynah bird singing": _mynah_bird_singing,
    "playing acoustic guitar": _playing_acoustic_guitar,
    "playing piano": _playing_piano,
    "typing on computer keyboard": _typing_on_computer_keyboard,
    "helicopter": _helicopter,
    "race car, auto racing": _race_car,
    "male speech, man speaking": _male_speech,
    "playing violin, fiddle": _playing_violin,
}
assert set(RECIPES) == {c.vggsound_label for c in CATEGORIES}, "every label needs a recipe"


def synthesize_clip(
    label: str,
    rng: np.random.Generator,
    *,
    duration_s: float = 10.0,
    sample_rate: int = SAMPLE_RATE,
    silent_stretch: bool = False,
) -> np.ndarray:
    """A random clip of the VGGSound class ``label`` as float32 samples in [-1, 1].

    Args:
        label: a VGGSound label of the corpus (``dog barking``).
        rng: the random generator (the clip is a pure function of its state).
        duration_s: clip length in seconds.
        sample_rate: samples per second.
        silent_stretch: mute a random 1-3 s stretch (faint noise floor only), as in real clips
            whose sound source pauses or whose recording starts late.
    """
    return synthesize_clip_with_stretch(
        label, rng, duration_s=duration_s, sample_rate=sample_rate, silent_stretch=silent_stretch
    )[0]


def synthesize_clip_with_stretch(
    label: str,
    rng: np.random.Generator,
    *,
    duration_s: float = 10.0,
    sample_rate: int = SAMPLE_RATE,
    silent_stretch: bool = False,
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """:func:`synthesize_clip` and its muted stretch ``(start_s, end_s)`` (None without one; the
    fades of 10 ms at most lie inside it)."""
    if label not in RECIPES:
        raise KeyError(f"no sound recipe for label {label!r}")
    n = int(round(duration_s * sample_rate))
    x = RECIPES[label](rng, n, sample_rate)
    x = x / (np.max(np.abs(x)) + 1e-12) * rng.uniform(0.35, 0.85)
    stretch = None
    if silent_stretch:
        length = min(rng.uniform(1.0, 3.0), duration_s * 0.4)
        start = rng.uniform(0.0, duration_s - length)
        i0, i1 = int(start * sample_rate), int((start + length) * sample_rate)
        ramp = min(160, (i1 - i0) // 4)
        gain = np.ones(n)
        gain[i0:i1] = 0.0
        if ramp > 0:
            gain[i0 : i0 + ramp] = np.linspace(1.0, 0.0, ramp)
            gain[i1 - ramp : i1] = np.linspace(0.0, 1.0, ramp)
        x = x * gain
        stretch = (round(i0 / sample_rate, 6), round(i1 / sample_rate, 6))
    floor = 10.0 ** (rng.uniform(-62.0, -50.0) / 20.0)
    x = x + floor * rng.standard_normal(n)
    return np.clip(x, -1.0, 1.0).astype(np.float32), stretch


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit PCM (rounded, clipped)."""
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
