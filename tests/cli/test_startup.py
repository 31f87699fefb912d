"""`avs-synth` starts without torch: a build's plan (and ``--help``) pays no torch import, which
costs a few CPU-seconds; torch is loaded only by the steps that use it."""

import subprocess
import sys

SCRIPT = """
import sys
import avs_synth_cli.synth
import avs_synth.building.run
loaded = sorted(m for m in ("torch", "torchaudio", "matplotlib") if m in sys.modules)
print(",".join(loaded) or "none")
"""


def test_avs_synth_cli_and_the_build_path_import_no_torch():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "none"
