"""``avs-train pretrain-audio`` on the audio bank of a real sample-corpus build: the mixes it draws,
the file it writes, loading it into autr_tiny (``audio.weights_path``), and its errors."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from avs_model.data.stream import resolve_shards
from avs_model.modeling.audio_encoder import SMALL_CNN_WEIGHTS, SmallAudioCNN
from avs_model.modeling.build import build_model
from avs_model.modeling.config import AudioEncoderConfig, preset
from avs_model.runtime.checkpoint import load_checkpoint
from avs_model.training.audio_pretrain import AudioPretrainConfig, BankMixer, pretrain_audio
from avs_synth import schema
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, LogMelFrontend
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.train import app
from tests.support.build_support import build_sample, sample_corpus

SMALL = preset("autr_tiny").audio


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audio_pretrain_shards")
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=((1, 0.5), (2, 0.5)),
        shard_size=50,
        max_side=96,
    )
    build_sample(sample_corpus(tmp_path_factory), config, out)
    return out


@pytest.fixture(scope="module")
def stage(shards: Path, tmp_path_factory) -> Path:
    """The stage, 40 steps of 16 examples."""
    out = tmp_path_factory.mktemp("audio_stage")
    config = AudioPretrainConfig(steps=40, batch_size=16, log_every=10, seed=3)
    pretrain_audio(config, shards=shards, out_dir=out, audio=SMALL)
    return out / SMALL_CNN_WEIGHTS


def _bank_classes(shards: Path) -> list[str]:
    manifest = json.loads((shards / schema.MANIFEST_NAME).read_text())
    return sorted({s["audio_class"] for s in manifest["bank"]["shards"]})


def test_the_mixes_follow_the_sources_and_the_seed(shards: Path) -> None:
    """Every class of the bank is held from the start; an example mixes 1 or 2 distinct classes
    as the build's --sources says, one window long; the same seed draws the same examples."""
    bank = resolve_shards(shards).bank_classes
    mixer = BankMixer(bank, sources=((1, 0.5), (2, 0.5)), seed=0)
    assert mixer.classes == _bank_classes(shards) and len(mixer.classes) >= 3
    assert all(mixer.held[c] for c in mixer.classes)
    counts = set()
    for _ in range(60):
        wave, classes = mixer.example()
        assert wave.shape == (EXAMPLE_SAMPLES,) and wave.dtype.name == "float32"
        assert len(set(classes)) == len(classes) and set(classes) <= set(mixer.classes)
        counts.add(len(classes))
    assert counts == {1, 2}
    singles = BankMixer(bank, sources=((1, 1.0),), seed=0)
    assert all(len(singles.example()[1]) == 1 for _ in range(30))
    first, again = (
        BankMixer(bank, sources=((2, 1.0),), seed=5),
        BankMixer(bank, sources=((2, 1.0),), seed=5),
    )
    for _ in range(5):
        (a, ca), (b, cb) = first.example(), again.example()
        assert ca == cb and (a == b).all()
    waves, targets = next(first.batches(4))
    assert waves.shape == (4, EXAMPLE_SAMPLES) and (targets.sum(dim=1) == 2).all()


def test_bad_sources_are_refused(shards: Path) -> None:
    bank = resolve_shards(shards).bank_classes
    with pytest.raises(ValueError, match="each count must be"):
        BankMixer(bank, sources=((0, 1.0),), seed=0)
    with pytest.raises(ValueError, match="each count must be"):
        BankMixer(bank, sources=((99, 1.0),), seed=0)
    with pytest.raises(ValueError, match="weights"):
        BankMixer(bank, sources=((1, 0.0),), seed=0)
    with pytest.raises(ValueError, match="no audio bank"):
        BankMixer({}, sources=((1, 1.0),), seed=0)


def test_a_bank_of_unreadable_windows_is_refused_by_name(shards: Path, tmp_path: Path) -> None:
    """Bad windows are skipped and counted; a bank with none readable is a one-line error."""
    url = sorted(resolve_shards(shards).bank_classes)[0]
    broken = tmp_path / "bank-broken.tar"
    with tarfile.open(url) as source, tarfile.open(broken, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.endswith(".flac"):
                data = b"not a flac file"
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    with pytest.raises(ValueError, match="no readable window.*bank-broken.tar"):
        BankMixer({str(broken): "dog barking"}, sources=((1, 1.0),), seed=0)
    good = {u: c for u, c in resolve_shards(shards).bank_classes.items() if c != "dog barking"}
    mixer = BankMixer({**good, str(broken): "dog barking"}, sources=((1, 1.0),), seed=0)
    assert mixer.handler.skipped > 0 and not mixer.held["dog barking"]
    assert all(mixer.example()[1] != ("dog barking",) for _ in range(50))


def test_the_stage_writes_a_complete_file_that_tags_better(shards: Path, stage: Path) -> None:
    """The file records the network, the class table, the build's sources and the log; on fresh
    mixes its network and head score a lower BCE than the same network untrained."""
    record = torch.load(stage, map_location="cpu", weights_only=True)
    assert record["kind"] == "small_cnn" and record["embed_dim"] == SMALL.embed_dim
    assert record["classes"] == _bank_classes(shards)
    assert record["config"]["sources"] == [[1, 0.5], [2, 0.5]]  # the build's, by default
    assert [e["step"] for e in record["log"]] == [10, 20, 30, 40]
    assert record["data"] == resolve_shards(shards).data_versions()
    assert not list(stage.parent.glob(".*tmp*"))

    mixer = BankMixer(resolve_shards(shards).bank_classes, sources=((1, 0.5), (2, 0.5)), seed=99)
    waves, targets = next(mixer.batches(64))
    examples = LogMelFrontend()(waves)[:, None]
    trained = SmallAudioCNN(channels=SMALL.small_channels, embed_dim=SMALL.embed_dim)
    trained.load_state_dict(record["network"])
    head = torch.nn.Linear(SMALL.embed_dim, len(record["classes"]))
    head.load_state_dict(record["head"])
    torch.manual_seed(0)
    fresh = SmallAudioCNN(channels=SMALL.small_channels, embed_dim=SMALL.embed_dim)
    fresh_head = torch.nn.Linear(SMALL.embed_dim, len(record["classes"]))
    with torch.no_grad():
        after = F.binary_cross_entropy_with_logits(head(trained(examples)), targets)
        before = F.binary_cross_entropy_with_logits(fresh_head(fresh(examples)), targets)
    assert after < 0.8 * before


def test_the_same_seed_writes_the_same_weights(shards: Path, stage: Path, tmp_path: Path) -> None:
    config = AudioPretrainConfig(steps=40, batch_size=16, log_every=10, seed=3)
    pretrain_audio(config, shards=shards, out_dir=tmp_path, audio=SMALL)
    ours = torch.load(tmp_path / SMALL_CNN_WEIGHTS, weights_only=True)["network"]
    theirs = torch.load(stage, weights_only=True)["network"]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_autr_tiny_starts_from_the_file(stage: Path) -> None:
    """``audio.weights_path`` loads the network (a file or its folder); the model records the
    file and its sha256; the audio encoder stays trainable."""
    config = preset("autr_tiny")
    config.audio.weights_path = str(stage.parent)
    model = build_model(config)
    stored = torch.load(stage, weights_only=True)["network"]
    state = model.audio_encoder.network.state_dict()
    assert all(torch.equal(state[k], stored[k]) for k in stored)
    source = model.weight_sources()["audio_encoder"]
    assert source["source"] == "file" and source["path"] == str(stage.resolve())
    assert len(source["sha256"]) == 64
    assert all(p.requires_grad for p in model.audio_encoder.network.parameters())


def test_files_that_do_not_fit_are_refused(stage: Path, tmp_path: Path) -> None:
    config = preset("autr_tiny")
    config.audio.weights_path = str(stage)
    config.audio.small_channels = 16
    with pytest.raises(ValueError, match=f"{stage}.*small_channels"):
        build_model(config)
    record = torch.load(stage, weights_only=True)
    record["network"] = {k: v for k, v in record["network"].items() if "proj" not in k}
    cut = tmp_path / "cut.pt"
    torch.save(record, cut)
    config = preset("autr_tiny")
    config.audio.weights_path = str(cut)
    with pytest.raises(ValueError, match=f"{cut}: its network does not fit"):
        build_model(config)
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    config = preset("autr_tiny")
    config.audio.weights_path = str(other)
    with pytest.raises(ValueError, match=f"{other}: not an audio encoder file"):
        build_model(config)
    config.audio.weights_path = str(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_model(config)


def test_vggish_is_not_pre_trained_here(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="small_cnn"):
        pretrain_audio(
            AudioPretrainConfig(steps=1),
            shards=shards,
            out_dir=tmp_path,
            audio=AudioEncoderConfig(kind="vggish"),
        )


def test_the_cli_stage_then_pretrain_from_it(shards: Path, tmp_path: Path) -> None:
    """``avs-train pretrain-audio`` (single sources asked for), then ``avs-train pretrain`` from
    its file: the checkpoint records the file as the audio encoder's weights."""
    runner = CliRunner()
    audio_dir = tmp_path / "audio"
    args = ["pretrain-audio", "--shards", str(shards), "--out", str(audio_dir)]
    args += ["--steps", "3", "--batch-size", "4", "--sources", "1:1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sources [(1, 1.0)]" in result.output
    weights = audio_dir / SMALL_CNN_WEIGHTS
    assert f"model_overrides.audio.weights_path={weights}" in result.output
    assert torch.load(weights, weights_only=True)["config"]["sources"] == [[1, 1.0]]

    out = tmp_path / "pt"
    args = ["pretrain", "--shards", str(shards), "--out", str(out), "--model", "autr_tiny"]
    args += ["--image-size", "32", "--batch-size", "2", "--max-steps", "1", "--num-workers", "0"]
    args += ["--eval-every", "1", "--no-test", "--set", "data.max_eval_samples=2"]
    args += ["--set", f"model_overrides.audio.weights_path={weights}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint.model_config["audio"]["weights_path"] == str(weights)
    assert checkpoint.weights["audio_encoder"]["path"] == str(weights.resolve())

    refused = runner.invoke(
        app, ["pretrain-audio", "--shards", str(tmp_path / "nowhere"), "--out", str(audio_dir)]
    )
    assert refused.exit_code != 0 and "nowhere" in refused.output


def test_the_tagging_head_starts_from_the_stage_head(stage: Path, shards: Path) -> None:
    """With --audio-tags, the rows of the classes the stage's head knows start from that head;
    the other classes' biases start at the prior of one class heard among the table's."""
    record = torch.load(stage, weights_only=True)
    table = [*resolve_shards(shards).audio_class_labels(), "a class the bank lacks"]
    config = preset("autr_tiny")
    config.audio.weights_path = str(stage)
    config.audio_tags.enabled = True
    config.audio_tags.classes = table
    head = build_model(config).tag_head
    known = {label: i for i, label in enumerate(record["classes"])}
    assert set(known) < set(table)
    prior = -math.log(len(table) - 1)
    for i, label in enumerate(table):
        if label in known:
            assert torch.equal(head.weight[i], record["head"]["weight"][known[label]])
            assert head.bias[i] == record["head"]["bias"][known[label]]
        else:
            assert head.bias[i].item() == pytest.approx(prior)
