"""The loops' pieces: one train step, logits at GT resolution, evaluation, schedules, configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.inference import EMPTY_LOGIT
from avs_model.evaluation.loop import evaluate, frame_logits
from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.modeling.criterion import build_criterion
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.distributed import DistributedContext
from avs_model.runtime.train_config import (
    OptimConfig,
    TrainConfig,
    load_train_config,
    recipe_path,
    resolve_model_config,
)
from avs_model.training.engine import (
    FitSettings,
    TrainingError,
    TrainState,
    TrainWindow,
    build_optimizer,
    build_scheduler,
    fit,
    make_state_checkpoint,
    train_step,
)
from avs_model.training.run_log import RunLog, read_metrics

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)


def _batch(n: int = 4, size: int = 32, *, gt: bool = False) -> FrameBatch:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 150, (n, 3, size, size), dtype=torch.uint8, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        masks[i, 4 * i : 4 * i + 16, :] = 1  # stripes on the stride-4 grid
        images[i, 0][masks[i].bool()] = 255
    return FrameBatch(
        images=images,
        masks=masks,
        valid=torch.ones(n, dtype=torch.bool),
        audio=torch.randn(n, 1, 96, 64, generator=g),
        content_sizes=[(size, size)] * n,
        gt_masks=[m.bool() for m in masks] if gt else None,
        categories=["a", "b"] * (n // 2),
        keys=[str(i) for i in range(n)],
        frames_per_sample=1,
    )


def test_train_steps_fit_one_batch() -> None:
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = build_model(config)
    criterion = build_criterion(config.loss)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    scaler = FP32.grad_scaler()
    batch = _batch()
    first = train_step(
        model=model,
        criterion=criterion,
        batch=batch,
        optimizer=optimizer,
        scaler=scaler,
        precision=FP32,
        device=CPU,
        clip_grad_norm=1.0,
    )
    for _ in range(14):
        last = train_step(
            model=model,
            criterion=criterion,
            batch=batch,
            optimizer=optimizer,
            scaler=scaler,
            precision=FP32,
            device=CPU,
            clip_grad_norm=1.0,
        )
    assert {"loss", "loss_focal", "loss_dice", "loss_sound", "grad_norm"} <= set(first)
    assert not any(k.endswith("_0") for k in first)  # aux layers summed into loss only
    assert last["loss"] < 0.7 * first["loss"] and last["skipped"] == 0.0


def test_train_step_sets_train_mode_after_evaluation_and_steps_as_the_per_tensor_loop(
    monkeypatch,
) -> None:
    """``train_step`` skips ``model.train()`` when the model already trains, so it must restore
    train mode after an evaluation (the frozen backbone stays in eval); the foreach AdamW and
    gradient clipping give the same weights, bit for bit, as torch's per-tensor loops."""

    def trained() -> nn.Module:
        torch.manual_seed(0)
        config = preset("autr_tiny")
        model = build_model(config, load_weights=False)
        criterion = build_criterion(config.loss)
        optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
        for _ in range(3):
            model.eval()  # as after a validation
            train_step(
                model=model,
                criterion=criterion,
                batch=_batch(),
                optimizer=optimizer,
                scaler=FP32.grad_scaler(),
                precision=FP32,
                device=CPU,
                clip_grad_norm=1.0,
            )
            assert model.training and model.decoder.training
            assert not model.backbone.body.training
        return model

    fast = trained()
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        torch.nn.utils, "clip_grad_norm_", lambda p, n, **_: clip(p, n, foreach=False)
    )
    adamw = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: adamw(*a, **(k | {"foreach": False})))
    loop = trained()  # torch's CPU default: one tensor at a time
    assert all(torch.equal(a, b) for a, b in zip(fast.parameters(), loop.parameters(), strict=True))
    torch.manual_seed(0)
    start = build_model(preset("autr_tiny"), load_weights=False)
    moved = [
        not torch.equal(a, b) for a, b in zip(fast.parameters(), start.parameters(), strict=True)
    ]
    assert sum(moved) > len(moved) // 2  # the steps did train


def test_non_finite_loss_skips_the_step() -> None:
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = build_model(config)
    criterion = build_criterion(config.loss)
    optimizer = build_optimizer(model, OptimConfig())
    before = [p.detach().clone() for p in model.parameters()]
    batch = _batch()
    batch.audio[0, 0, 0, 0] = float("nan")
    out = train_step(
        model=model,
        criterion=criterion,
        batch=batch,
        optimizer=optimizer,
        scaler=FP32.grad_scaler(),
        precision=FP32,
        device=CPU,
    )
    assert out["skipped"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _outputs(masks: torch.Tensor, scores: torch.Tensor) -> dict:
    return {"pred_masks": masks, "pred_scores": scores, "aux_outputs": []}


def test_frame_logits_crop_padding_and_gate() -> None:
    batch = _batch(n=2, size=8, gt=True)
    batch.content_sizes = [(4, 8), (8, 8)]
    batch.gt_masks = [torch.zeros(8, 16, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)]
    masks = torch.full((2, 2, 8, 8), -5.0)
    masks[0, 1, :4] = 5.0  # frame 0: content rows 0-3 are foreground, padding rows 4-7 are not
    scores = torch.tensor([[-3.0, 3.0], [2.0, -4.0]])
    logits, probs = frame_logits(_outputs(masks, scores), batch)
    assert [tuple(x.shape) for x in logits] == [(8, 16), (8, 8)]
    assert bool((logits[0] > 0).all())  # the padding was cropped before resizing to 8 x 16
    assert torch.allclose(probs, torch.sigmoid(torch.tensor([3.0, 2.0])))
    gated, _ = frame_logits(_outputs(masks, scores), batch, gate_threshold=0.9)
    assert bool((gated[1] == EMPTY_LOGIT).all()) and bool((gated[0] > 0).all())


class _RedIsSounding(nn.Module):
    """Predicts the red pixels: a deterministic stand-in model for the evaluation plumbing."""

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> dict:
        red = images[:, :1] > 1.5  # normalised 255 in the red channel
        small = nn.functional.avg_pool2d(red.float(), 4) > 0.5  # [N, 1, H/4, W/4]
        masks = torch.where(small, 10.0, -10.0).repeat(1, 2, 1, 1)
        scores = torch.tensor([[4.0, -4.0]]).repeat(images.shape[0], 1)
        return {"pred_masks": masks, "pred_scores": scores, "aux_outputs": []}


def test_evaluate_scores_perfect_predictions_as_one() -> None:
    batches = [_batch(n=4, size=32, gt=True), _batch(n=2, size=32, gt=True)]
    result = evaluate(
        _RedIsSounding(),
        batches,
        device=CPU,
        precision=FP32,
        gate_threshold=0.5,
        frames_per_video=2,
    )
    assert result.ungated.num_frames == 6 and result.ungated.batch_frames == 4
    assert result.ungated.batch_videos == 2
    assert result.ungated.miou == pytest.approx(1.0, abs=1e-6)
    assert result.ungated.fmeasure == pytest.approx(1.0, abs=1e-6)
    assert set(result.ungated.per_category) == {"a", "b"}
    assert result.gated.miou == pytest.approx(1.0, abs=1e-6)
    assert result.mean_score_positive == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item())
    empty = _batch(n=2, size=32, gt=True)
    empty.gt_masks = [torch.zeros(32, 32, dtype=torch.bool)] * 2
    gated = evaluate(_RedIsSounding(), [empty], device=CPU, precision=FP32, gate_threshold=0.99)
    assert gated.gated.miou == pytest.approx(1.0, abs=1e-6) and gated.ungated.miou < 0.9


def test_schedules() -> None:
    params = [nn.Parameter(torch.zeros(1))]

    def rates(**kw) -> list[float]:
        optimizer = torch.optim.AdamW(params, lr=1.0)
        scheduler = build_scheduler(optimizer, OptimConfig(lr=1.0, **kw), total_steps=10)
        out = []
        for _ in range(10):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    assert rates() == [1.0] * 10
    assert rates(warmup_steps=2)[:3] == [0.5, 1.0, 1.0]
    assert rates(schedule="step", step_milestones=(0.5,))[4:6] == [1.0, pytest.approx(0.1)]
    cosine = rates(schedule="cosine")
    assert cosine[0] == 1.0 and cosine[5] == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_train_config_files_and_updates(tmp_path: Path) -> None:
    config = TrainConfig()
    assert TrainConfig.from_dict(config.to_dict()) == config
    changed = config.with_updates(
        **{
            "optim.lr": 3e-5,
            "avsbench.categories": ["dog_barking"],
            "model_overrides.decoder.num_queries": 3,
        }
    )
    assert changed.optim.lr == 3e-5 and changed.avsbench.categories == ("dog_barking",)
    assert resolve_model_config(changed).decoder.num_queries == 3
    # a ValueError with the closest field, not a KeyError (the CLI shows the message as it is)
    with pytest.raises(ValueError, match=r"'optim.lrr' \(did you mean 'optim.lr'\?\)"):
        config.with_updates(**{"optim.lrr": 1.0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: 1e-4, momentum: 0.9}\n")
    with pytest.raises(
        ValueError,
        match=r"bad.yaml: unknown config keys \['momentum'\] in "
        "section 'optim'",
    ):
        load_train_config(bad)
    bad.write_text("data: {resize: {mode: round}}\n")
    with pytest.raises(ValueError, match="bad.yaml: data.resize.mode must be one of"):
        load_train_config(bad)


def test_every_recipe_loads_with_the_paper_settings() -> None:
    s4 = load_train_config("s4_pvtv2")
    assert (s4.epochs, s4.batch_size, s4.data.resize.size, s4.optim.lr) == (50, 8, 224, 1e-4)
    assert s4.optim.weight_decay == 5e-4 and s4.optim.schedule == "constant"
    pre = load_train_config("pretrain_pvtv2")
    assert (pre.epochs, pre.batch_size, pre.data.resize.mode) == (10, 1, "keep_aspect")
    assert load_train_config("s4_pvtv2_frac10").avsbench.fraction == 0.1
    assert load_train_config("ms3_pvtv2").avsbench.subset == "ms3"
    assert load_train_config("s4_open_set_pvtv2").avsbench.open_set == "seen"
    plain = resolve_model_config(load_train_config("s4_pvtv2_ablation_plain_queries"))
    assert plain.decoder.audio_queries is False
    for path in recipe_path("s4_pvtv2").parent.glob("*.yaml"):
        resolve_model_config(load_train_config(path))
    with pytest.raises(FileNotFoundError, match="no recipe 's4_nope'"):
        load_train_config("s4_nope")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_autocast_steps_on_gpu() -> None:
    device = torch.device("cuda")
    precision = resolve_precision("auto", device)
    assert precision.name == "bf16"
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = build_model(config).to(device)
    criterion = build_criterion(config.loss).to(device)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    scaler = precision.grad_scaler()
    losses = [
        train_step(
            model=model,
            criterion=criterion,
            batch=_batch(),
            optimizer=optimizer,
            scaler=scaler,
            precision=precision,
            device=device,
            clip_grad_norm=1.0,
        )["loss"]
        for _ in range(6)
    ]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def _fit_on(batches: list[FrameBatch], tmp_path: Path, *, total: int, max_skipped: int = 100):
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = build_model(config)
    criterion = build_criterion(config.loss)
    optimizer = build_optimizer(model, OptimConfig())
    settings = FitSettings(
        total_steps=total,
        steps_per_epoch=total,
        log_every=2,
        checkpoint_every=1000,
        eval_every=None,
        select_metric="M_J",
        clip_grad_norm=1.0,
        max_skipped_in_a_row=max_skipped,
    )

    def checkpoint(state, metrics):
        return make_state_checkpoint(
            model=model,
            optimizer=optimizer,
            scaler=FP32.grad_scaler(),
            scheduler=build_scheduler(optimizer, OptimConfig(), total_steps=total),
            state=state,
            steps_per_epoch=total,
            train_config={},
            model_config={},
            data={},
            weights={},
            metrics=metrics,
        )

    with RunLog(out_dir=tmp_path, tensorboard=False) as run_log:
        return fit(
            model=model,
            criterion=criterion,
            optimizer=optimizer,
            scheduler=build_scheduler(optimizer, OptimConfig(), total_steps=total),
            scaler=FP32.grad_scaler(),
            precision=FP32,
            context=DistributedContext(rank=0, world_size=1, local_rank=0, device=CPU),
            settings=settings,
            state=TrainState(),
            train_batches=lambda epoch, start: batches[start:],
            validate=None,
            make_checkpoint=checkpoint,
            out_dir=tmp_path,
            run_log=run_log,
        )


def _nan_batch() -> FrameBatch:
    batch = _batch()
    batch.audio[:] = float("nan")
    return batch


def test_a_window_of_only_non_finite_losses_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batches = [_nan_batch(), _nan_batch(), _batch(), _nan_batch()]
    with caplog.at_level("INFO"):
        state = _fit_on(batches, tmp_path, total=4)
    assert state.step == 4
    logged = {
        (int(r["step"]), r["metric"]): float(r["value"])
        for r in read_metrics(tmp_path / "metrics.csv")
    }
    assert logged[2, "skipped"] == 1.0 and math.isnan(logged[2, "loss"])  # no finite loss
    assert logged[4, "skipped"] == 0.5 and math.isfinite(logged[4, "loss"])  # one of two
    # stderr is not a terminal here: plain, unwrapped lines with the step, losses, lr and ETA
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train step")]
    assert [line.split(" (")[0] for line in lines] == ["train step 2/4", "train step 4/4"]
    assert "loss nan" in lines[0] and "lr 0.0001" in lines[0] and "ETA " in lines[0]
    assert "loss_dice" in lines[1] and "frames/s" in lines[1]


def test_a_run_whose_loss_stays_non_finite_stops_with_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="not finite for 3 steps in a row"):
        _fit_on([_nan_batch()] * 5, tmp_path, total=5, max_skipped=3)


def test_train_window_means_over_finite_values_only() -> None:
    window = TrainWindow(["loss", "skipped"])
    window.add({"loss": float("nan"), "skipped": 1.0}, 4)
    window.add({"loss": 2.0, "skipped": 0.0}, 4)
    means = window.means(DistributedContext(rank=0, world_size=1, local_rank=0, device=CPU))
    assert means["loss"] == 2.0 and means["skipped"] == 0.5 and means["frames_per_s"] > 0


def test_old_metric_names_are_still_read() -> None:
    old = TrainConfig.from_dict({"eval": {"select_metric": "fmeasure_per_frame"}})
    assert old.eval.select_metric == "M_F_per_frame"
    assert TrainConfig.from_dict({"eval": {"select_metric": "miou"}}).eval.select_metric == "M_J"
    with pytest.raises(ValueError, match="select_metric must be one of"):
        TrainConfig.from_dict({"eval": {"select_metric": "accuracy"}})
