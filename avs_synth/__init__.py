"""avs-synth: synthetic (image, mask, audio) triplets for annotation-free AVS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("avs-synth")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
