"""Command-line apps `avs-synth` and `avs-train` (installed as the package ``avs_synth_cli``)."""
