"""A build whose clips folder holds a clip with NaN / infinite samples and one whose header declares
1 Hz: the build finishes, those clips' samples are skipped and counted, and the log names them."""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.plan import make_plan
from avs_synth.building.run import execute_plan
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import MATCHES, make_world


@pytest.mark.parametrize("resampler", ["avsbench", "bandlimited"])
def test_a_nan_clip_and_a_1_hz_header_are_skipped_and_named(tmp_path, caplog, resampler):
    records, clips = make_world(tmp_path / "world")
    config = BuildConfig(
        fractions=SplitFractions(train=0.5, val=0.25, test=0.25),
        shard_size=4,
        max_per_picture=2,
        resampler=resampler,
    )
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    used = sorted({t.clip.path for unit in plan.units for t in unit.triplets})
    nan_clip, one_hertz = used[0], used[-1]  # two clips the triplets take their audio from
    samples = np.full(3 * 16000, 0.3, dtype=np.float32)
    samples[::997] = np.nan
    samples[5] = np.inf
    sf.write(nan_clip, samples, 16000, format="WAV", subtype="FLOAT")  # (named .flac)
    sf.write(one_hertz, np.full(20, 1000, dtype=np.int16), 16000, format="WAV", subtype="PCM_16")
    header = bytearray(one_hertz.read_bytes())
    header[24:32] = struct.pack("<II", 1, 2)  # 1 Hz, 2 bytes a second: "20 s of audio"
    one_hertz.write_bytes(bytes(header))
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG, logger="avs_synth.building"):
        summary = execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
    report = json.loads((out / "report.json").read_text())
    skipped = json.dumps(report)
    assert sum(summary.samples.values()) > 0
    assert "unreadable_audio" in skipped
    assert f"{nan_clip}: holds NaN or infinite samples" in caplog.text
    assert f"{one_hertz}: the header declares a sample rate of 1 Hz" in caplog.text
    # the bank skips and counts them too
    bank = replace(config, audio_bank=True)
    execute_plan(
        make_plan(records=records, clips=clips, matches=MATCHES, config=bank),
        config=bank,
        out=tmp_path / "bank",
        run=RunOptions(progress=False),
    )
    assert "unreadable_audio" in (tmp_path / "bank" / "report.json").read_text()
