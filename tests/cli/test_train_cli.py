"""End to end through the CLI on the sample corpus: pretrain → checkpoint → fine-tune with
``--fraction 0.1`` on the mini S4 set → MS3 from the S4 checkpoint → evaluate → predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avs_model.runtime.checkpoint import load_checkpoint
from avs_synth.sources.avsbench import AVSBenchReader
from avs_synth_cli.synth import app as synth_app
from avs_synth_cli.train import app

runner = CliRunner()
FAST = ["--model", "autr_tiny", "--image-size", "32", "--batch-size", "2", "--num-workers", "0"]


def _ok(result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    _ok(
        runner.invoke(
            synth_app, ["sample-corpus", str(root / "corpus"), "--size", "tiny", "--no-mp4"]
        )
    )
    build = ["build", "--corpus", str(root / "corpus"), "--out", str(root / "shards")]
    _ok(runner.invoke(synth_app, [*build, "--splits", "0.5,0.25,0.25", "--max-per-picture", "0"]))
    return root / "corpus", root / "shards"


def test_pretrain_finetune_evaluate_predict(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    corpus_dir, shards = corpus
    avsbench = corpus_dir / "avsbench"
    pre = tmp_path / "pretrain"
    out = _ok(
        runner.invoke(
            app, ["pretrain", "--shards", str(shards), "--out", str(pre), "--max-steps", "3", *FAST]
        )
    )
    assert "best checkpoint" in out and "test M_J" in out
    pre_ckpt = load_checkpoint(pre / "best.pt")
    assert pre_ckpt.data["kind"] == "synthetic" and pre_ckpt.data["samples"]["train"] > 0
    assert json.loads((pre / "test_metrics.json").read_text())["ungated"]["num_frames"] > 0
    assert (pre / "metrics.csv").is_file() and any((pre / "tensorboard").iterdir())

    tune = tmp_path / "s4"
    _ok(
        runner.invoke(
            app,
            [
                "finetune",
                "--init",
                str(pre / "best.pt"),
                "--data",
                str(avsbench),
                "--subset",
                "s4",
                "--fraction",
                "0.1",
                "--out",
                str(tune),
                "--max-steps",
                "2",
                *FAST,
            ],
        )
    )
    s4 = load_checkpoint(tune / "last.pt")
    reader = AVSBenchReader(root=avsbench, subset="s4")
    categories = reader.categories
    assert s4.data["fraction"] == 0.1 and s4.data["init"] == str(pre / "best.pt")
    kept = s4.data["train_videos"]
    assert len(kept) == len(categories)  # round(n * 0.1) = 0 → at least one per category
    assert {v.category for v in reader.videos("train") if v.name in kept} == set(categories)
    assert s4.data["init_data"]["kind"] == "synthetic"

    ms3 = tmp_path / "ms3"
    _ok(
        runner.invoke(
            app,
            [
                "finetune",
                "--init",
                str(tune / "last.pt"),
                "--data",
                str(avsbench),
                "--subset",
                "ms3",
                "--out",
                str(ms3),
                "--max-steps",
                "1",
                "--no-test",
                *FAST,
            ],
        )
    )
    assert load_checkpoint(ms3 / "last.pt").data["subset"] == "ms3"

    report_dir = tmp_path / "eval"
    out = _ok(
        runner.invoke(
            app,
            [
                "evaluate",
                "--ckpt",
                str(tune / "last.pt"),
                "--avsbench",
                str(avsbench),
                "--subset",
                "s4",
                "--out",
                str(report_dir),
                "--num-workers",
                "0",
            ],
        )
    )
    assert "batch 20 frames = 4 videos" in out and "M_F_per_frame" in out
    assert "dog_barking" in out and "open-set seen" in out
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert metrics["ungated"]["batch_videos"] == 4
    assert set(metrics["ungated"]["per_category"]) == set(categories)
    assert (report_dir / "per_category.png").stat().st_size > 1000
    out = _ok(
        runner.invoke(
            app,
            [
                "evaluate",
                "--ckpt",
                str(pre / "best.pt"),
                "--shards",
                str(shards),
                "--num-workers",
                "0",
                "--json",
            ],
        )
    )
    assert json.loads(out)["dataset"] == "synthetic"

    video = reader.videos("test")[0]
    pred = tmp_path / "pred"
    out = _ok(
        runner.invoke(
            app,
            [
                "predict",
                "--ckpt",
                str(tune / "last.pt"),
                str(video.frame_paths[0].parent),
                "--audio",
                str(video.wav_path),
                "--out",
                str(pred),
                "--no-video",
            ],
        )
    )
    assert out.count("score") == 5
    assert len(list((pred / "overlays").glob("frame_*.png"))) == 5


def test_cli_errors_are_clear(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    corpus_dir, shards = corpus
    result = runner.invoke(
        app,
        [
            "finetune",
            "--data",
            str(corpus_dir / "avsbench"),
            "--out",
            str(tmp_path / "x"),
            "--categories",
            "dog_barkng",
            *FAST,
        ],
    )
    assert result.exit_code == 1 and "unknown categories ['dog_barkng']" in result.output
    result = runner.invoke(
        app, ["pretrain", "--shards", str(tmp_path / "none"), "--out", str(tmp_path / "y"), *FAST]
    )
    assert result.exit_code == 1 and "shard folder not found" in result.output
    result = runner.invoke(
        app, ["evaluate", "--ckpt", str(tmp_path / "missing.pt"), "--shards", str(shards)]
    )
    assert result.exit_code == 1 and "missing.pt: checkpoint not found" in result.output


def test_config_mistakes_get_one_line_with_the_closest_name(tmp_path: Path) -> None:
    base = ["finetune", "--avsbench", str(tmp_path), "--out", str(tmp_path / "run")]
    cases = [
        (["--config", "s4_pvtv3"], "no recipe 's4_pvtv3' (did you mean 's4_pvtv2'?)"),
        (["--set", "optim.lrr=1"], "unknown config field 'optim.lrr' (did you mean 'optim.lr'?)"),
        (["--set", "optimm.lr=1"], "unknown config section 'optimm' (did you mean 'optim'?)"),
        (
            ["--set", "model_overrides.backbone.namee=x"],
            "unknown field(s) ['namee'] (did you mean model.backbone.name?)",
        ),
        (["--fraction", "1.5"], "fraction must be in (0, 1], got 1.5; the 0 % rows train nothing"),
        (["--set", "optim=3"], "optim must be a mapping, got 3"),
    ]
    for extra, expected in cases:
        result = runner.invoke(app, [*base, "--config", "demo_finetune_tiny", *extra])
        assert result.exit_code == 1, result.output
        assert expected in result.output, result.output
        assert "<dict>" not in result.output and "Traceback" not in result.output


def test_print_config_shows_a_loadable_resolved_config(tmp_path: Path) -> None:
    from avs_model.runtime.train_config import load_train_config

    result = runner.invoke(
        app, ["print-config", "--config", "s4_pvtv2_frac10", "--set", "optim.lr=5e-5"]
    )
    assert result.exit_code == 0, result.output
    (tmp_path / "resolved.yaml").write_text(result.stdout)
    config = load_train_config(tmp_path / "resolved.yaml")
    assert config.optim.lr == 5e-5 and config.avsbench.fraction == 0.1  # "5e-5" read as a number
    assert config == load_train_config("s4_pvtv2_frac10").with_updates(**{"optim.lr": 5e-5})
    assert "#   backbone:" in result.stdout and "#     name: pvt_v2_b5" in result.stdout
