"""Package discovery; every other setting is in pyproject.toml.

Every sub-package of ``avs_synth`` and ``avs_model`` is found (none can be left out of the wheel by
a hand-kept list); ``cli/`` and ``category_maps/`` install as ``avs_synth_cli`` and
``avs_synth_category_maps``.
"""

from setuptools import find_packages, setup

RENAMED = {"avs_synth_cli": "cli", "avs_synth_category_maps": "category_maps"}

setup(
    packages=[
        *find_packages(include=["avs_synth", "avs_synth.*", "avs_model", "avs_model.*"]),
        *RENAMED,
    ],
    package_dir=RENAMED,
)
