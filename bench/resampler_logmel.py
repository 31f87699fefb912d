"""How far apart the two resamplers put the VGGish log-mel of the same clips.

``avsbench`` makes 16 kHz audio exactly as AVSBench made its wavs (moviepy 1.0.3 over FFmpeg: no
anti-alias filter, int16 steps, clipping at 0.99); ``bandlimited`` resamples with a sinc filter.
On VGGSound-like clips (the sample corpus's synthetic sounds of every class, 10 s at 44.1 kHz
and 48 kHz stereo, as FLAC and as AAC mp4 as YouTube serves them; without and with a white-noise
floor up to the Nyquist frequency, as real recordings have) this prints the absolute log-mel
differences over whole clips: overall and per group of mel bands.

Usage::

    python bench/resampler_logmel.py [--clips-per-class 2] [--noise-db -50] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from avs_synth.audio.container import add_aac_stream, mux_audio
from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import LogMelFrontend
from avs_synth.sample_corpus.categories import CATEGORIES
from avs_synth.sample_corpus.sounds import synthesize_clip


def _write(path: Path, samples: np.ndarray, rate: int) -> None:
    if path.suffix == ".flac":
        sf.write(path, samples, rate, subtype="PCM_16")
        return
    with av.open(str(path), "w") as out:
        stream = add_aac_stream(out, rate=rate, channels=samples.shape[1], bit_rate=128_000)
        mux_audio(out, stream, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips-per-class", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--noise-db", type=float, default=-50.0, help="white-noise floor below the clip's peak"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="resampler-logmel-"))
    workdir.mkdir(parents=True, exist_ok=True)
    frontend = LogMelFrontend()
    rows: dict[str, list[np.ndarray]] = {}
    for rate, suffix, noise_db in [
        (44100, ".flac", None),
        (44100, ".flac", args.noise_db),
        (44100, ".mp4", args.noise_db),
        (48000, ".flac", args.noise_db),
        (48000, ".mp4", args.noise_db),
    ]:
        if True:
            diffs = []
            for index, category in enumerate(CATEGORIES):
                for k in range(args.clips_per_class):
                    rng = np.random.default_rng(1000 * index + k)
                    mono = synthesize_clip(category.vggsound_label, rng, sample_rate=rate)
                    level = 0.0 if noise_db is None else 10 ** (noise_db / 20)
                    noise = rng.standard_normal((len(mono), 2)) * level * np.abs(mono).max()
                    stereo = np.clip(np.stack([mono, 0.9 * mono], axis=1) + noise, -1, 0.999)
                    path = workdir / f"{rate}-{index}-{k}{suffix}"
                    _write(path, stereo, rate)
                    ours = load_audio(path, resampler="avsbench")
                    sinc = load_audio(path, resampler="bandlimited")
                    n = min(len(ours), len(sinc))
                    a = frontend(torch.from_numpy(ours[:n])).numpy()
                    b = frontend(torch.from_numpy(sinc[:n])).numpy()
                    diffs.append(np.abs(a - b))
            floor = "no noise" if noise_db is None else f"{noise_db:g} dB"
            rows[f"{rate} Hz {suffix[1:]}, {floor}"] = diffs
    print(
        f"VGGish log-mel |avsbench - bandlimited| over whole 10-s clips, "
        f"{len(CATEGORIES)} classes x {args.clips_per_class} clips each"
    )
    print(
        f"{'clips':<28}{'max':>8}{'mean':>8}{'p99':>8}  mean by bands 0-15 / 16-31 / 32-47 / 48-63"
    )
    for name, diffs in rows.items():
        stacked = np.concatenate(diffs)  # [frames, 64]
        groups = [stacked[:, g : g + 16].mean() for g in range(0, 64, 16)]
        print(
            f"{name:<28}{stacked.max():8.3f}{stacked.mean():8.4f}"
            f"{np.percentile(stacked, 99):8.3f}  " + " / ".join(f"{g:.4f}" for g in groups)
        )


if __name__ == "__main__":
    main()
