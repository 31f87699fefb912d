"""Both typer apps: help, version, and that installing them claims no generic module name."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from avs_synth import __version__
from avs_synth_cli.synth import app as synth_app
from avs_synth_cli.train import app as train_app

runner = CliRunner()


def test_version_of_both_apps() -> None:
    for app in (synth_app, train_app):
        result = runner.invoke(app, ["--version"])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"avs-synth {__version__}"


def test_help_lists_every_command_with_a_description() -> None:
    for app in (synth_app, train_app):
        result = runner.invoke(app, ["--help"])
        assert result.exit_code == 0, result.output
        for command in app.registered_commands:
            name = command.name or command.callback.__name__.replace("_", "-")
            assert name in result.output
            doc = (command.help or command.callback.__doc__ or "").strip()
            assert doc, f"command {name} has no description"


def test_no_generic_top_level_module(tmp_path) -> None:
    # outside the source tree, the install provides avs_synth_cli and no module named `cli`
    probe = (
        "import importlib.util as u; "
        "print(u.find_spec('avs_synth_cli') is not None, u.find_spec('cli'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "None"]


def test_third_party_chatter_only_with_verbose() -> None:
    """FiftyOne's (and MongoDB's, PIL's) info logs and warnings stay out of the user's log unless
    --verbose: run in a child, as the apps configure logging and warnings process-wide."""
    code = (
        "import logging, sys, warnings\n"
        "from avs_synth_cli.common import setup\n"
        "setup(verbose=sys.argv[1] == 'v')\n"
        "logging.getLogger('fiftyone.core.dataset').info('chatter-log')\n"
        "logging.getLogger('fiftyone').error('real-error')\n"
        "exec(compile('import warnings; warnings.warn(\"chatter-warning\")', 'x', 'exec'),\n"
        "     {'__name__': 'fiftyone.utils.data'})\n"
        "logging.getLogger('avs_synth.building').info('our-log')\n"
    )
    quiet = subprocess.run([sys.executable, "-c", code, "q"], capture_output=True, text=True)
    loud = subprocess.run([sys.executable, "-c", code, "v"], capture_output=True, text=True)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "our-log" in quiet.stderr and "real-error" in quiet.stderr
    assert "chatter-log" not in quiet.stderr and "chatter-warning" not in quiet.stderr
    assert "chatter-log" in loud.stderr and "chatter-warning" in loud.stderr
