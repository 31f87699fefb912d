"""``avs-train evaluate``: the untrained model ("0 % w/o P.T."), and what reports say of weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from avs_model.evaluation.evaluate import evaluate_checkpoint, format_report, untrained_model
from avs_model.runtime.distributed import init_distributed, shutdown
from avs_model.training.run import start_run
from avs_synth_cli.train import app
from tests.support.train_support import tiny_config, write_mini_avsbench

runner = CliRunner()


@pytest.fixture(scope="module")
def avsbench(tmp_path_factory) -> Path:
    return write_mini_avsbench(tmp_path_factory.mktemp("avs"))


def test_the_untrained_model_is_the_model_a_run_starts_from(tmp_path: Path) -> None:
    config = tiny_config(seed=7)
    untrained = untrained_model(config, torch.device("cpu")).state_dict()
    context = init_distributed("cpu")
    try:
        run = start_run(config, context=context, out_dir=tmp_path / "run", steps_per_epoch=1)
    finally:
        shutdown(context)
    started = run.model.state_dict()
    assert untrained.keys() == started.keys()
    assert all(torch.equal(untrained[k], started[k]) for k in untrained)
    other = untrained_model(tiny_config(seed=8), torch.device("cpu")).state_dict()
    assert not all(torch.equal(untrained[k], other[k]) for k in untrained)


def test_untrained_evaluation_reports_its_weights(avsbench: Path) -> None:
    report = evaluate_checkpoint(
        None, untrained=tiny_config(), avsbench=avsbench, subset="s4", device="cpu", num_workers=0
    )
    described = report.checkpoint
    assert described["path"] is None and described["untrained"] == "test"
    assert described["weights"]["backbone"]["source"] == "file"
    assert report.result.ungated.num_frames == 3 * 2 * 5
    text = format_report(report)
    assert "untrained test, seed 0" in text and "RANDOM" not in text


def test_random_frozen_weights_are_flagged_in_the_report(avsbench: Path) -> None:
    config = tiny_config(
        **{"model_overrides.backbone.pretrained_path": None, "model_overrides.random_init": True}
    )
    report = evaluate_checkpoint(
        None, untrained=config, avsbench=avsbench, subset="s4", device="cpu", num_workers=0
    )
    assert "WARNING: frozen backbone on RANDOM weights" in format_report(report)


def test_cli_untrained_and_the_weights_error(avsbench: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "--untrained", "--config", "demo_finetune_tiny", "--avsbench", str(avsbench)]
        + ["--subset", "s4", "--num-workers", "0", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "untrained demo_finetune_tiny, seed 0" in result.stdout and "M_J" in result.stdout

    neither = runner.invoke(app, ["evaluate", "--avsbench", str(avsbench)])
    assert neither.exit_code == 1 and "--untrained" in neither.output
    mixed = runner.invoke(app, ["evaluate", "--ckpt", "x.pt", "--config", "s4_pvtv2"])
    assert mixed.exit_code == 1 and "go with --untrained" in mixed.output

    # the paper's S4 recipe without weight files: one line naming the files, no traceback
    bare = runner.invoke(
        app,
        ["finetune", "--config", "s4_pvtv2", "--avsbench", str(avsbench), "--out"]
        + [str(tmp_path / "run"), "--max-steps", "1", "--num-workers", "0"],
    )
    assert bare.exit_code == 1
    assert "vggish-10086976.pth" in bare.output and "pvt_v2_b5.pth" in bare.output
    assert "Traceback" not in bare.output and not (tmp_path / "run" / "last.pt").exists()
