"""``--tagger``: a user's TorchScript audio tagger scores each clip window's class, beside the
energy score, stored in the json and usable by ``--min-audibility``."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.audio.tagger import load_tagger, read_tagger_labels, tagger_probability
from avs_synth.audio.windows import WindowConfig
from avs_synth.building.config import BuildConfig
from avs_synth.building.inspect_shards import describe, inspect_shards
from avs_synth.building.splits import SplitFractions
from avs_synth.errors import DataFormatError
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, sample_corpus

LACKED = "dog barking"  # a corpus class left out of the tagger's labels


class LevelTagger(torch.nn.Module):
    """Every class's logit rises with the window's level: (dBFS + 40) / 5."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()  # [1, 1]
        level = 20.0 * torch.log10(rms + 1e-6)
        return ((level + 40.0) / 5.0).repeat(1, self.classes)  # [1, C]


def _expected(window: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))
    return 1.0 / (1.0 + np.exp(-(20.0 * np.log10(rms + 1e-6) + 40.0) / 5.0))


@pytest.fixture(scope="module")
def tagger_files(tmp_path_factory) -> tuple[Path, Path]:
    corpus = sample_corpus(tmp_path_factory)
    with open(corpus / "matches.csv", encoding="utf-8", newline="") as handle:
        classes = sorted({row["vggsound_label"] for row in csv.DictReader(handle)})
    labels = [c for c in classes if c != LACKED] + ["wind noise"]
    folder = tmp_path_factory.mktemp("tagger")
    model = folder / "tagger.pt"
    torch.jit.save(torch.jit.script(LevelTagger(len(labels))), str(model))
    names = folder / "labels.txt"
    names.write_text("\n".join(labels) + "\n", encoding="utf-8")
    return model, names


def _config(tagger, **changes) -> BuildConfig:
    settings = dict(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        min_audibility=0.0,
        tagger=tagger,
        window=WindowConfig(policy="fixed", fixed_start_s=4.0),
        shard_size=6,
        audio_bank=False,
    )
    return BuildConfig(**(settings | changes))


def _samples(out: Path) -> list[tuple[schema.DecodedTriplet, bytes]]:
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    return [(schema.decode_triplet(s), s["json"]) for s in wds.WebDataset(urls, shardshuffle=False)]


def test_probabilities_are_stored_beside_the_energy_score(
    tagger_files, tmp_path_factory, tmp_path
) -> None:
    corpus = sample_corpus(tmp_path_factory)
    tagger = load_tagger(*tagger_files, activation="sigmoid", sample_rate=16_000)
    out = tmp_path / "scored"
    build_sample(corpus, _config(tagger), out)
    samples = _samples(out)
    assert samples
    for t, raw in samples:
        assert 0.0 <= t.meta.audibility <= 1.0
        if t.meta.audio.label == LACKED:
            assert t.meta.tagger_probability is None and b"tagger_probability" not in raw
            continue
        # the stored FLAC is 16-bit: the tagger saw the float window, within quantisation
        assert t.meta.tagger_probability == pytest.approx(_expected(t.audio), abs=2e-3)
    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["config"]["tagger"]
    assert record["file"] == "tagger.pt" and record["activation"] == "sigmoid"
    assert record["sha256"] == hashlib.sha256(tagger_files[0].read_bytes()).hexdigest()
    assert LACKED not in record["audio_classes_tagged"]
    assert manifest["config"]["filters"]["audibility_from"] == "energy"
    lines = describe(inspect_shards([out], num_samples=0))
    assert any(line.startswith("tagger: tagger.pt (sha256 ") for line in lines)

    # filtering on the tagger: below the threshold skipped as inaudible, lacked classes counted
    probabilities = [t.meta.tagger_probability for t, _ in samples]
    threshold = float(np.median([p for p in probabilities if p is not None]))
    filtered = tmp_path / "filtered"
    build_sample(
        corpus, _config(tagger, min_audibility=threshold, audibility_from="tagger"), filtered
    )
    report = json.loads((filtered / "report.json").read_text())
    assert report["skipped"]["tagger_lacks_class"] == probabilities.count(None) > 0
    below = sum(p is not None and p < threshold for p in probabilities)
    assert report["skipped"]["inaudible"] == below > 0
    kept = _samples(filtered)
    assert {t.key for t, _ in kept} == {
        t.key
        for t, _ in samples
        if t.meta.tagger_probability is not None and t.meta.tagger_probability >= threshold
    }

    two = tmp_path / "two"
    build_sample(corpus, _config(tagger), two, workers=2)
    for shard in sorted(out.glob("*.tar")):
        assert (two / shard.name).read_bytes() == shard.read_bytes()


def test_tagger_files_are_checked(tagger_files, tmp_path: Path) -> None:
    model, labels = tagger_files
    pickle = tmp_path / "pickled.pt"
    torch.save({"weights": torch.zeros(3)}, pickle)  # a pickle, not TorchScript: refused
    with pytest.raises(DataFormatError, match="not a TorchScript file") as error:
        load_tagger(pickle, labels, activation="sigmoid", sample_rate=16_000)
    assert str(pickle) in str(error.value)
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="lists 2 labels"):
        load_tagger(model, short, activation="sigmoid", sample_rate=16_000)
    for text, message in (("a\n\nb\n", "empty label"), ("a\na\n", "listed twice"), ("", "no")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match=message):
            read_tagger_labels(bad)
    with pytest.raises(FileNotFoundError, match="tagger file not found"):
        load_tagger(tmp_path / "none.pt", labels, activation="sigmoid", sample_rate=16_000)
    tagger = load_tagger(model, labels, activation="softmax", sample_rate=16_000)
    window = np.full(16_000, 0.1, dtype=np.float32)
    names = read_tagger_labels(labels)
    assert tagger_probability(tagger, window, names[0]) == pytest.approx(1 / len(names))
    assert tagger_probability(tagger, window, LACKED) is None
    with pytest.raises(ValueError, match="needs a tagger"):
        BuildConfig(min_audibility=0.5, audibility_from="tagger")
    with pytest.raises(ValueError, match="give min_audibility"):
        BuildConfig(tagger=tagger)


def test_cli_checks_the_tagger_before_building(tagger_files, tmp_path_factory, tmp_path) -> None:
    corpus = sample_corpus(tmp_path_factory)
    model, labels = tagger_files
    base = ["build", "--corpus", str(corpus / "corpus"), "--min-audibility", "0"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a"), "--tagger", str(model)])
    assert result.exit_code == 1 and "--tagger and --tagger-labels go together" in result.output
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"#!/bin/sh\necho not a model\n")
    result = CliRunner().invoke(
        app,
        [
            *base,
            "--out",
            str(tmp_path / "b"),
            "--tagger",
            str(garbage),
            "--tagger-labels",
            str(labels),
        ],
    )
    assert result.exit_code == 1 and "not a TorchScript file" in result.output
    assert not (tmp_path / "b").exists()
