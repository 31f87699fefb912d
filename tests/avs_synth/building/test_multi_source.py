"""``--sources`` / ``--pan`` / ``--mixes-per-picture``: multi-source triplets on the sample corpus.

``reference_sources_sha256.json`` holds the sha256 of every shard that the build before
``mixes_per_picture`` (main at 3aa8b70) wrote for :func:`_config` on the test sample corpus: one
mix per picture must still write those bytes. Shard bytes depend on the encoders that wrote the
corpus: with other versions of Pillow, PyAV or libsndfile, regenerate the file with that commit's
code.
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.inspect_shards import describe, inspect_shards, write_inspect_page
from avs_synth.building.sounding_sets import sounding_sets
from avs_synth.building.splits import SplitFractions
from avs_synth.seeded_order import seeded_sorted
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, built_fixture, shard_digests

SOURCES = ((1, 0.2), (2, 0.5), (3, 0.3))
REFERENCE = json.loads((Path(__file__).parent / "reference_sources_sha256.json").read_text())
MIXES = 3


def _config(pan: str = "linear", mixes: int = 1) -> BuildConfig:
    return BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=SOURCES,
        mixes_per_picture=mixes,
        pan=pan,  # type: ignore[arg-type]
        shard_size=6,
        bank_clips_per_shard=4,
    )


built = built_fixture(_config, "sources")


mixed = built_fixture(partial(_config, mixes=MIXES), "mixes")


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
    assert "COUNT:WEIGHT" in _refused_build(corpus, tmp_path, "--sources", "2:x")


def test_one_mix_per_picture_writes_the_shards_of_before_the_option(built: Path) -> None:
    assert shard_digests(built) == REFERENCE
    assert "mixes_per_picture" not in json.loads((built / "manifest.json").read_text())["config"]


def test_mixes_per_picture_give_distinct_sets_of_the_same_picture(built: Path, mixed: Path) -> None:
    one = {schema.decode_triplet_meta(raw["json"]).key for raw in _raw(built)}
    per_picture: dict[str, list[schema.TripletMeta]] = {}
    for raw in _raw(mixed):
        meta = schema.decode_triplet_meta(raw["json"])
        per_picture.setdefault(meta.image_id, []).append(meta)
    keys = [m.key for metas in per_picture.values() for m in metas]
    assert len(keys) == len(set(keys))
    assert one <= set(keys)  # mix 0 is the one-mix build's triplet
    sizes = [len(metas) for metas in per_picture.values()]
    assert max(sizes) == MIXES and sum(sizes) > len(one)
    for metas in per_picture.values():
        sets = [frozenset(src.audio_class for src in m.sources) for m in metas]
        assert len(set(sets)) == len(sets)  # each mix a distinct set of sounding classes
        # every mix of a picture splits the same classes into sounding and silent ones
        named = {
            frozenset(
                [c.name for src in m.sources for c in src.categories]
                + [c.name for c in m.silent_categories or ()]
            )
            for m in metas
        }
        assert len(named) == 1
    manifest = json.loads((mixed / "manifest.json").read_text())
    assert manifest["config"]["mixes_per_picture"] == MIXES
    # pictures with fewer sets than asked give fewer mixes, counted
    report = json.loads((mixed / "report.json").read_text())
    assert report["dropped_while_planning"]["fewer_mixes_than_asked"] > 0
    lines = describe(inspect_shards([mixed], num_samples=10))
    assert any(f"up to {MIXES} mixes per picture" in line for line in lines)


def test_mixes_per_picture_are_byte_identical_across_workers(
    mixed: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    build_sample(corpus, _config(mixes=MIXES), out, workers=2)
    assert shard_digests(out) == shard_digests(mixed)


def test_sounding_sets_enumerate_distinct_sets_then_stop() -> None:
    classes = ["a", "b", "c"]
    sets = sounding_sets(
        classes, identity=str, picture="p", seed=0, sources=((1, 0.5), (2, 0.5)), mixes=10
    )
    sounding = [frozenset(s) for s, _ in sets]
    assert len(sets) == 6 and len(set(sounding)) == 6  # 3 singles and 3 pairs, then none left
    assert all(sorted(s + q) == classes for s, q in sets)  # the rest of the picture is silent
    again = sounding_sets(
        classes, identity=str, picture="p", seed=0, sources=((1, 0.5), (2, 0.5)), mixes=2
    )
    assert again == sets[:2]  # asking for fewer mixes keeps the first ones
    # mix 0 is the first ``count`` classes of the seeded "sources" order
    first, rest = sets[0]
    assert first + rest == seeded_sorted(classes, seed=0, identity=str, salt="sources")
    assert (
        sounding_sets(classes, identity=str, picture="p", seed=0, sources=((4, 1.0),), mixes=3)
        == []
    )


def test_bad_mix_settings_are_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mixes_per_picture must be >= 1"):
        BuildConfig(sources=SOURCES, mixes_per_picture=0)
    with pytest.raises(ValueError, match="give sources"):
        BuildConfig(mixes_per_picture=2)
    with pytest.raises(ValueError, match="would cap"):
        BuildConfig(sources=SOURCES, mixes_per_picture=3, max_per_picture=2)
    BuildConfig(sources=SOURCES, mixes_per_picture=3, max_per_picture=3)
    assert "give sources" in _refused_build(corpus, tmp_path, "--mixes-per-picture", "2")


def _refused_build(corpus: Path, tmp_path: Path, *options: str) -> str:
    """The output of an ``avs-synth build`` of the sample corpus with ``options`` that fails."""
    args = ["build", "--corpus", str(corpus / "corpus"), "--out", str(tmp_path / "x"), *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    return result.output
