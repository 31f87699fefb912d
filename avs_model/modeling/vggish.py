"""VGGish in PyTorch, with the layout of the public ``vggish-10086976.pth`` state dict.

conv 64-M-128-M-256-256-M-512-512-M (3x3, ReLU, 2x2 max-pool) over a [N, 1, 96, 64] log-mel
example, then FC 12288→4096→4096→128 with a ReLU after every FC (the last included). As in the
torchvggish port, the [N, 512, 6, 4] conv output is flattened in NHWC order before the FCs. No
PCA / quantisation post-processing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor, nn

from avs_model.modeling.weights import WeightFile, read_weight_file

logger = logging.getLogger(__name__)

EMBED_DIM = 128
_CONV_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


class VGGish(nn.Module):
    """Log-mel examples [N, 1, 96, 64] → embeddings [N, 128]."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for item in _CONV_CHANNELS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(True)]
                in_channels = item
        self.features = nn.Sequential(*layers)  # convs at 0, 3, 6, 8, 11, 13
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(True),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Linear(4096, EMBED_DIM),
            nn.ReLU(True),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # [N, 512, 6, 4]
        x = x.transpose(1, 3).transpose(1, 2).contiguous()  # [N, 6, 4, 512] (NHWC, as torchvggish)
        x = x.view(x.size(0), -1)  # [N, 12288]
        return self.embeddings(x)


def load_vggish_weights(model: VGGish, path: str | Path) -> WeightFile:
    """Load ``vggish-10086976.pth`` (or a file with the same keys and shapes) strictly.

    ``model`` may live on the meta device (``with torch.device("meta"): VGGish()``), which
    skips the random initialisation of its 72 M parameters; it then holds the file's tensors.

    Returns the file read and its sha256. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming the file and every missing, unexpected or wrongly shaped key otherwise.
    """
    path = Path(path).expanduser()
    state = read_weight_file(path, "VGGish weights")
    if not isinstance(state, dict):
        raise ValueError(
            f"VGGish weights {path}: expected a state dict, got {type(state).__name__}"
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(getattr(state[k], 'shape', ()))} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], Tensor) or state[k].shape != v.shape)
    ]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if wrong:
            problems.append(f"wrong shapes {wrong}")
        raise ValueError(f"VGGish weights {path} do not fit VGGish: " + "; ".join(problems))
    # a model built on the meta device (no random init) takes the file's tensors as they are
    assign = any(t.is_meta for t in model.state_dict().values())
    if assign:
        state = {k: v.contiguous() for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    record = WeightFile.of(path)
    logger.info("loaded VGGish from %s (sha256 %s)", path, record.sha256)
    return record
