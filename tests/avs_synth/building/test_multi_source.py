"""``--sources`` / ``--pan``: multi-source triplets on the sample corpus."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.inspect_shards import describe, inspect_shards, write_inspect_page
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, built_fixture

SOURCES = ((1, 0.2), (2, 0.5), (3, 0.3))


def _config(pan: str = "linear") -> BuildConfig:
    return BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=SOURCES,
        pan=pan,  # type: ignore[arg-type]
        shard_size=6,
        bank_clips_per_shard=4,
    )


built = built_fixture(_config, "sources")


def _raw(out: Path) -> list[dict]:
    urls = [str(p) for p in sorted(out.glob("t*.tar")) + sorted(out.glob("val-*.tar"))]
    return list(wds.WebDataset(urls, shardshuffle=False))


def test_sources_mix_masks_and_audio(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["config"]["sources"] == [list(s) for s in SOURCES]
    assert manifest["config"]["pan"] == "linear"
    per_picture: dict[str, list[schema.TripletMeta]] = {}
    counts: dict[str, int] = {}
    multi = 0
    for raw in _raw(built):
        t = schema.decode_triplet(raw)
        m = t.meta
        per_picture.setdefault(m.image_id, []).append(m)
        counts[str(m.num_sources)] = counts.get(str(m.num_sources), 0) + 1
        assert m.sources is not None and m.sources[0].audio_class == m.audio_class
        assert m.sources[0].audio == m.audio
        sounding = {c.name for src in m.sources for c in src.categories}
        silent = {c.name for c in m.silent_categories or ()}
        assert not sounding & silent
        assert {i for src in m.sources for i in src.instance_ids} == set(m.instance_ids)
        assert len({src.audio_class for src in m.sources}) == m.num_sources
        stereo, _ = sf.read(io.BytesIO(raw["flac"]), always_2d=True)
        assert stereo.shape[1] == 2  # panned
        for src in m.sources:
            assert -6.0 <= src.gain_db <= 0.0 and 0.0 <= src.pan <= 1.0
        if m.num_sources > 1:
            multi += 1
            # each source's window is its own clip's, cut with its own key
            assert len({src.audio.vggsound_id for src in m.sources}) == m.num_sources
    assert multi > 0
    assert all(len(v) == 1 for v in per_picture.values())  # one triplet per picture
    written = {k: 0 for k in counts}
    for split in ("train", "val", "test"):
        for k, v in manifest["splits"][split]["per_num_sources"].items():
            written[k] += v
    assert written == counts


def test_multi_source_builds_are_byte_identical_across_workers(
    built: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    build_sample(corpus, _config(), out, workers=2)

    def digests(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.tar")}

    assert digests(out) == digests(built)


def test_mono_mix_and_decoding(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "mono"
    build_sample(corpus, _config("none"), out)
    for raw in _raw(out):
        data, _ = sf.read(io.BytesIO(raw["flac"]), always_2d=True)
        assert data.shape[1] == 1
        m = schema.decode_triplet_meta(raw["json"])
        assert all(src.pan is None for src in m.sources)
        audio, rate = schema.decode_audio(raw["flac"])
        assert rate == 16000 and audio.ndim == 1 and np.abs(audio).max() <= 0.99 + 1e-4


def test_inspect_shows_the_sources(built: Path, tmp_path: Path) -> None:
    lines = describe(inspect_shards([built], num_samples=1000))
    assert any("positives by number of sources" in line for line in lines)
    assert any(" + " in line and line.startswith("- ") for line in lines)
    write_inspect_page([built], tmp_path / "page", per_split=100)
    html = (tmp_path / "page" / "index.html").read_text()
    assert "source 2" in html and "silent in the picture" in html and "pan " in html


def test_bad_source_settings_are_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct counts"):
        BuildConfig(sources=((2, 0.5), (2, 0.5)))
    with pytest.raises(ValueError, match="distinct counts"):
        BuildConfig(sources=((5, 1.0),))
    with pytest.raises(ValueError, match="semantic"):
        BuildConfig(sources=((2, 1.0),), mask_mode="instance")
    with pytest.raises(ValueError, match="give sources"):
        BuildConfig(pan="linear")
    result = CliRunner().invoke(
        app,
        [
            "build",
            "--corpus",
            str(corpus / "corpus"),
            "--out",
            str(tmp_path / "x"),
            "--sources",
            "2:x",
        ],
    )
    assert result.exit_code != 0 and "COUNT:WEIGHT" in result.output
