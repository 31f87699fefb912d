"""``--min-audibility``: every clip window scored in the workers, stored, filtered and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import webdataset as wds

from avs_synth import schema
from avs_synth.audio.windows import WindowConfig
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import build_sample, sample_corpus


def _build(corpus: Path, out: Path, min_audibility: float | None) -> list[schema.TripletMeta]:
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.5,
        negatives=("absent", "silence"),
        min_audibility=min_audibility,
        window=WindowConfig(policy="fixed", fixed_start_s=4.0),
        shard_size=50,
        audio_bank=False,
    )
    build_sample(corpus, config, out)
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    return [schema.decode_triplet_meta(s["json"]) for s in wds.WebDataset(urls, shardshuffle=False)]


def test_scores_are_stored_and_filter(tmp_path_factory, tmp_path: Path) -> None:
    corpus = sample_corpus(tmp_path_factory)
    scored = _build(corpus, tmp_path / "scored", 0.0)
    clip_windows = [m for m in scored if m.audio.vggsound_id]
    assert clip_windows and all(0.0 <= m.audibility <= 1.0 for m in clip_windows)
    assert all(m.audibility is None for m in scored if not m.audio.vggsound_id)  # silence
    manifest = json.loads((tmp_path / "scored" / "manifest.json").read_text())
    assert manifest["config"]["filters"]["min_audibility"] == 0.0
    # the fixed window at 4 s falls in some clips' muted stretch: those score low
    low = sorted(m.audibility for m in clip_windows)[0]
    assert low < 0.5
    threshold = 0.5
    kept = _build(corpus, tmp_path / "filtered", threshold)
    report = json.loads((tmp_path / "filtered" / "report.json").read_text())
    dropped = sum(m.audibility < threshold for m in clip_windows)
    assert report["skipped"]["inaudible"] == dropped > 0
    assert all(m.audibility >= threshold for m in kept if m.audio.vggsound_id)
    assert {m.key for m in kept} == {
        m.key for m in scored if m.audibility is None or m.audibility >= threshold
    }


def test_without_the_option_nothing_is_scored(tmp_path_factory, tmp_path: Path) -> None:
    metas = _build(sample_corpus(tmp_path_factory), tmp_path / "plain", None)
    assert metas and all(m.audibility is None for m in metas)
    assert all(b'"audibility"' not in schema.encode_meta(m) for m in metas)
    with pytest.raises(ValueError, match="min_audibility"):
        BuildConfig(min_audibility=1.5)
