"""The recipes README against the paper's protocol: every row's command and resolved config.

The expectations below are the paper's rows (annotation-free AVS and its letter): Table 2 =
PVT-v2 pre-training (10 epochs, batch 1) then zero-shot S4; Table 3 = S4 at 0 / 10 / 20 / 30 /
100 % with and without pre-training ("0 % w/o P.T." = the untrained model scored); Table 4 /
letter Table I = S4 and MS3 x ResNet-50 and PVT-v2; letter Table II = MS3 from the same
backbone's S4 run; Table 5 / letter Table III = our open-set split x both backbones; letter Table
IV = "w/o audio-aware queries" and "w/o dynamic convolution" only. AVSBench rows: 50 epochs,
batch 8, 224 px, AdamW lr 1e-4, weight decay 5e-4. No synthetic initialisation unless a row says
"with P.T.".
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pytest

from avs_model.runtime.train_config import load_train_config, resolve_model_config

RECIPES = Path(str(files("avs_model") / "recipes"))
PRETRAIN_OUT = "runs/pt_pvtv2"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| `(avs-train [^`]+)` \|$")
BACKBONES = {"pvt": "pvt_v2_b5", "r50": "resnet50"}
WEIGHTS = {"pvt": "$W_PVT", "r50": "$W_R50"}


@dataclass(frozen=True)
class Paper:
    """One paper row: the command kind, its recipe and backbone, where its weights come from."""

    kind: str  # pretrain, finetune, evaluate
    config: str | None  # the recipe (None: evaluate a checkpoint)
    backbone: str  # pvt or r50
    init: str | None = None  # the row whose checkpoint starts this one (None: real weights)
    ckpt: str | None = None  # evaluate: the row whose checkpoint is scored
    subset: str | None = None
    fraction: float = 1.0
    open_set: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()  # (model-config path, value)


def _s4(config: str, **kw) -> Paper:
    return Paper("finetune", config, kw.pop("backbone", "pvt"), subset="s4", **kw)


PAPER = {
    "T2.pretrain": Paper("pretrain", "pretrain_pvtv2", "pvt"),
    "T2": Paper("evaluate", None, "pvt", ckpt="T2.pretrain", subset="s4"),
    "T3.0.pt": Paper("evaluate", None, "pvt", ckpt="T2.pretrain", subset="s4"),
    "T3.0": Paper("evaluate", "s4_pvtv2", "pvt", subset="s4"),
    "T3.10.pt": _s4("s4_pvtv2_frac10", fraction=0.1, init="T2.pretrain"),
    "T3.10": _s4("s4_pvtv2_frac10", fraction=0.1),
    "T3.20.pt": _s4("s4_pvtv2_frac20", fraction=0.2, init="T2.pretrain"),
    "T3.20": _s4("s4_pvtv2_frac20", fraction=0.2),
    "T3.30.pt": _s4("s4_pvtv2_frac30", fraction=0.3, init="T2.pretrain"),
    "T3.30": _s4("s4_pvtv2_frac30", fraction=0.3),
    "T3.100.pt": _s4("s4_pvtv2", init="T2.pretrain"),
    "T3.100": _s4("s4_pvtv2"),
    "T4.s4.r50": _s4("s4_r50", backbone="r50"),
    "T4.s4.pvt": _s4("s4_pvtv2"),
    "T4.ms3.r50": Paper("finetune", "ms3_r50", "r50", subset="ms3"),
    "T4.ms3.pvt": Paper("finetune", "ms3_pvtv2", "pvt", subset="ms3"),
    "L2.r50": Paper("finetune", "ms3_r50", "r50", subset="ms3", init="T4.s4.r50"),
    "L2.pvt": Paper("finetune", "ms3_pvtv2", "pvt", subset="ms3", init="T4.s4.pvt"),
    "T5.r50": _s4("s4_open_set_r50", backbone="r50", open_set="seen"),
    "T5.r50.eval": Paper("evaluate", None, "r50", ckpt="T5.r50", subset="s4"),
    "T5.pvt": _s4("s4_open_set_pvtv2", open_set="seen"),
    "T5.pvt.eval": Paper("evaluate", None, "pvt", ckpt="T5.pvt", subset="s4"),
    "L4.queries": _s4(
        "s4_pvtv2_ablation_plain_queries", overrides=(("decoder.audio_queries", False),)
    ),
    "L4.dynconv": _s4(
        "s4_pvtv2_ablation_dot_product_head",
        overrides=(("mask_head.kind", "dot_product"), ("mask_head.mask_dim", 256)),
    ),
}
# the paper's defaults that no paper row may change (an ablation names its one switch)
MODEL_DEFAULTS = (
    ("decoder.audio_queries", True),
    ("mask_head.kind", "dynamic_conv"),
    ("fusion.enabled", True),
    ("pixel_decoder.audio_attention", True),
    ("random_init", False),
)


def _readme_rows() -> dict[str, tuple[str, list[str]]]:
    rows = {}
    for line in (RECIPES / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            ident, label, command = match.groups()
            assert ident not in rows, f"row {ident} twice"
            rows[ident] = (label.strip(), shlex.split(command))
    return rows


def _options(argv: list[str]) -> dict[str, str | bool]:
    options: dict[str, str | bool] = {}
    positional = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            options[word] = argv[i + 1]
            i += 2
        elif word.startswith("--"):
            options[word] = True
            i += 1
        else:
            positional.append(word)
            i += 1
    options["_positional"] = " ".join(positional)
    return options


def _get(config: object, dotted: str) -> object:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


ROWS = _readme_rows()


def test_the_readme_has_exactly_the_paper_rows() -> None:
    assert sorted(ROWS) == sorted(PAPER)


@pytest.mark.parametrize("ident", sorted(PAPER))
def test_row_follows_the_paper(ident: str) -> None:
    expected = PAPER[ident]
    _, argv = ROWS[ident]
    assert argv[:2] == ["avs-train", expected.kind]
    options = _options(argv[2:])
    weights_token = WEIGHTS[expected.backbone]
    # real weights: from the init checkpoint, the scored checkpoint, or the files
    if expected.init is None and expected.ckpt is None:
        assert weights_token in argv, f"{ident}: a run on real weights needs {weights_token}"
    else:
        assert "$W_PVT" not in argv and "$W_R50" not in argv
    assert "--random-init" not in argv
    if expected.init is not None:
        assert options.get("--init") == f"{_out(expected.init)}/best.pt"
        assert PAPER[expected.init].backbone == expected.backbone
    else:
        assert "--init" not in options, f"{ident}: no synthetic initialisation unless said"
    if expected.ckpt is not None:
        assert options.get("--ckpt") == f"{_out(expected.ckpt)}/best.pt"
        assert PAPER[expected.ckpt].backbone == expected.backbone
        assert "--config" not in options
    if expected.kind == "evaluate":
        assert options.get("--subset") == expected.subset and "--avsbench" in options
        assert options.get("--batch-videos", "4") == "4"
        if expected.config is not None:
            assert options.get("--untrained") is True
    if expected.config is None:
        return
    assert options.get("--config") == expected.config
    config = load_train_config(expected.config)
    model = resolve_model_config(config)
    assert model.backbone.name == BACKBONES[expected.backbone]
    assert model.backbone.frozen and model.audio.kind == "vggish" and model.audio.frozen
    changed = dict(expected.overrides)
    for path, default in MODEL_DEFAULTS:
        assert _get(model, path) == changed.get(path, default), f"{ident}: {path}"
    for path, value in changed.items():
        assert _get(model, path) == value, f"{ident}: {path}"
    assert (config.optim.lr, config.optim.weight_decay) == (1e-4, 5e-4)
    assert config.optim.schedule == "constant"
    if expected.kind == "pretrain":
        assert (config.epochs, config.batch_size, config.max_steps) == (10, 1, None)
        assert config.data.resize.mode == "keep_aspect" and config.data.repair_audio
        return
    assert (config.epochs, config.batch_size, config.max_steps) == (50, 8, None)
    assert (config.data.resize.mode, config.data.resize.size) == ("square", 224)
    assert config.eval.batch_videos == 4
    bench = config.avsbench
    assert bench.subset == expected.subset
    assert bench.fraction == expected.fraction and bench.open_set == expected.open_set
    assert not bench.categories and not bench.exclude_categories
    for flag in ("--fraction", "--open-set", "--categories", "--epochs", "--max-steps"):
        assert flag not in options, f"{ident}: the recipe, not the command line, sets {flag}"


def _out(ident: str) -> str:
    options = _options(ROWS[ident][1][2:])
    out = options.get("--out")
    assert isinstance(out, str), f"{ident} has no --out"
    return out


def test_the_pretraining_row_is_the_one_the_with_pt_rows_start_from() -> None:
    assert _out("T2.pretrain") == PRETRAIN_OUT


def test_every_recipe_is_labelled_paper_or_toolkit_and_listed() -> None:
    readme = (RECIPES / "README.md").read_text(encoding="utf-8")
    paper_recipes = {p.config for p in PAPER.values() if p.config is not None}
    for path in sorted(RECIPES.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        name = path.stem
        if name in paper_recipes:
            assert first.startswith("# Paper row"), f"{path.name}: {first}"
        else:
            assert first.startswith("# Toolkit row (not in the paper)"), f"{path.name}: {first}"
            assert f"`{name}`" in readme.split("## Toolkit rows", 1)[1], f"{name} not listed"
