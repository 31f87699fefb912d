"""The proofs' derived training sets (``bench/negative_robustness.py``'s ``filtered_copy`` and
``bench/multi_source_awareness.py``'s ``balanced_copy``) on a real multi-source build of the test
sample corpus: what they keep, that their manifests count what their shards hold, and that the
stream reads them; and the proofs' audio stage shared by an arm's seeds."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import webdataset as wds

from avs_model.data.stream import resolve_shards
from avs_model.runtime.checkpoint import load_checkpoint
from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import built_fixture, sample_corpus, shard_digests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from audio_awareness import (  # noqa: E402
    audio_stage_file,
    make_audio_stage,
    train_arm,
    train_config,
)
from multi_source_awareness import balanced_copy  # noqa: E402
from negative_robustness import filtered_copy  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return sample_corpus(tmp_path_factory)


built = built_fixture(
    BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=((1, 0.5), (2, 0.5)),
        mixes_per_picture=10,  # every subset of a picture's classes: singles above their weight
        shard_size=6,
        bank_clips_per_shard=4,
    ),
    "proof_data",
)


def _metas(folder: Path, split: str) -> list[schema.TripletMeta]:
    urls = [str(p) for p in sorted(folder.glob(f"{split}-*.tar"))]
    return [
        schema.decode_triplet_meta(sample["json"])
        for sample in wds.WebDataset(urls, shardshuffle=False)
    ]


def _positives_by_sources(metas: list[schema.TripletMeta]) -> dict[str, int]:
    return dict(sorted(Counter(str(m.num_sources) for m in metas if not m.negative).items()))


def test_the_balanced_copy_keeps_the_sources_shares(built: Path, tmp_path: Path) -> None:
    full = _positives_by_sources(_metas(built, "train"))
    assert full["1"] > full["2"] > 0  # every subset: singles above their weight of 0.5
    out = balanced_copy(built, tmp_path / "balanced")
    metas = _metas(out, "train")
    kept = _positives_by_sources(metas)
    assert kept["2"] == full["2"]  # the rarer count relative to its weight is kept whole
    assert abs(kept["1"] - kept["2"]) <= max(3, 0.35 * kept["2"])  # a seeded share of singles
    manifest = json.loads((out / schema.MANIFEST_NAME).read_text())
    train = manifest["splits"]["train"]
    assert train["per_num_sources"] == kept
    assert train["samples"] == len(metas) == sum(train["per_category"].values())
    assert train["per_category"] == dict(sorted(Counter(m.audio_class for m in metas).items()))
    for split in ("val", "test"):  # only the train split changes
        assert (
            manifest["splits"][split]
            == json.loads((built / schema.MANIFEST_NAME).read_text())["splits"][split]
        )
    assert resolve_shards(out).num_samples("train") == len(metas)


def test_the_balanced_copy_is_the_same_on_every_run(built: Path, tmp_path: Path) -> None:
    first = balanced_copy(built, tmp_path / "one")
    second = balanced_copy(built, tmp_path / "two")
    assert shard_digests(first) == shard_digests(second)
    assert (first / schema.MANIFEST_NAME).read_bytes() == (
        second / schema.MANIFEST_NAME
    ).read_bytes()


def test_filtered_copy_counts_what_it_keeps(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    filtered_copy(built, out, keep=lambda m: m.num_sources == 2, splits=("test",))
    metas = _metas(out, "test")
    assert metas and all(m.num_sources == 2 for m in metas)
    test = json.loads((out / schema.MANIFEST_NAME).read_text())["splits"]["test"]
    assert test["samples"] == len(metas) == test["per_num_sources"]["2"]
    assert "1" not in test["per_num_sources"]
    assert sum(test["per_source"].values()) == len(metas)
    assert shard_digests(out)[Path(test["shards"][0]["name"]).name] == test["shards"][0]["sha256"]


def test_a_shared_audio_stage_is_made_once_and_started_from(built: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"

    def config(seed: int, name: str):
        out = train_config(seed, 1, plain_queries=False, image_size=32, batch_size=2)
        out.name = name
        out.data.max_eval_samples = 2
        return out

    stage = audio_stage_file(work, built, 0, 3)
    with pytest.raises(FileNotFoundError, match="the shared audio stage was not made"):
        train_arm(config(1, "arm_1"), built, work, audio_pretrain_steps=3, audio_stage_seed=0)
    make_audio_stage(config(0, "stage"), built, stage, 3)
    made = stage.read_bytes()
    for seed in (0, 1):
        result = train_arm(
            config(seed, f"arm_{seed}"), built, work, audio_pretrain_steps=3, audio_stage_seed=0
        )
        assert result.out_dir.name == f"arm_{seed}_apre3stage0"
        started = load_checkpoint(result.last).train_config["model_overrides"]["audio"]
        assert started["weights_path"] == str(stage)
        assert not (result.out_dir / "audio").exists()  # no stage of its own
    assert stage.read_bytes() == made  # made once, never rewritten
    own = train_arm(config(0, "own"), built, work, audio_pretrain_steps=3)  # one stage per run
    assert own.out_dir.name == "own_apre3"
    mine = torch.load(own.out_dir / "audio" / stage.name, weights_only=True)["network"]
    shared = torch.load(stage, weights_only=True)["network"]
    assert all(torch.equal(mine[k], shared[k]) for k in shared)  # seed 0's stage either way
