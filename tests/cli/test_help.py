"""Every command's --help of both apps ends with examples, shows the choices of options with
fixed ones, and one thing has one option name across every command (issue 13)."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from avs_synth_cli.synth import app as synth_app
from avs_synth_cli.train import app as train_app

runner = CliRunner()
APPS = {"avs-synth": synth_app, "avs-train": train_app}


def _commands():
    """(app name, typer app, command path, click command) of every leaf command."""

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    for name, app in APPS.items():
        for path, command in walk(get_command(app), []):
            yield name, app, path, command


COMMANDS = list(_commands())


def test_both_apps_have_their_commands() -> None:
    names = {f"{app} {' '.join(path)}" for app, _, path, _ in COMMANDS}
    assert {"avs-synth build", "avs-synth import avs-synthetic", "avs-train predict"} <= names
    assert "avs-train pretrain-audio" in names
    assert len(names) == 12


@pytest.mark.parametrize(
    ("name", "app", "path"),
    [(name, app, path) for name, app, path, _ in COMMANDS],
    ids=[" ".join([name, *path]) for name, _, path, _ in COMMANDS],
)
def test_help_ends_with_examples_of_the_command(name, app, path) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Examples:" in text, text
    tail = text[text.rindex("Examples:") :]
    assert "╰" not in tail, "the examples must come after every option panel"
    lines = [line.strip() for line in tail.splitlines()[1:] if line.strip()]
    runs = [line for line in lines if line.startswith((f"{name} {' '.join(path)}", "torchrun"))]
    assert 1 <= len(runs) <= 2, lines
    for line in runs:  # every option an example uses exists
        for option in re.findall(r"(?<= )--[a-z][a-z0-9-]*", line):
            assert option in text, f"{line}: {option} is not an option of the command"


def _visible_options():
    for name, _, path, command in COMMANDS:
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                yield f"{name} {' '.join(path)}", param


def test_one_thing_has_one_option_name_in_every_command() -> None:
    long_of: dict[str, set[str]] = defaultdict(set)
    name_of: dict[str, set[str]] = defaultdict(set)
    short_of: dict[str, set[str]] = defaultdict(set)
    for _, param in _visible_options():
        longs = [o for o in param.opts if o.startswith("--")]
        long_of[param.name].update(longs)
        for option in longs:
            name_of[option].add(param.name)
        for short in (o for o in param.opts if not o.startswith("--")):
            short_of[short].update(longs)
    assert {k: v for k, v in long_of.items() if len(v) > 1} == {}
    assert {k: v for k, v in name_of.items() if len(v) > 1} == {}
    assert short_of["-o"] == {"--out"} and short_of["-c"] == {"--config"}
    for where, param in _visible_options():
        help_text = (param.help or "").lower()
        if "avsbench folder" in help_text:
            assert param.opts == ["--avsbench"], where
        if param.opts[0] == "--out":
            assert "-o" in param.opts, f"{where}: --out without -o"
        if "vggsound.csv" in help_text:
            assert param.opts == ["--vggsound-csv"], where


@pytest.mark.parametrize(
    ("app", "args", "old", "new"),
    [
        (train_app, ["finetune"], "--data", "--avsbench"),
        (synth_app, ["match"], "--vggsound", "--vggsound-csv"),
    ],
)
def test_old_option_names_stay_as_hidden_aliases(app, args, old, new) -> None:
    command = dict((" ".join(p), c) for _, a, p, c in COMMANDS if a is app)[" ".join(args)]
    hidden = {
        o for p in command.params if p.param_type_name == "option" and p.hidden for o in p.opts
    }
    assert old in hidden
    text = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "250"}).output
    assert new in text and f"{old} " not in text


def _squeezed(text: str) -> str:
    """Help text without whitespace and panel borders (rich wraps long cells)."""
    return re.sub(r"[\s│]+", "", text)


def test_fixed_choices_are_shown() -> None:
    expected = {
        "avs-synth build": {
            "--mask-mode": "semantic|instance",
            "--window-policy": "fixed|loudest|nonsilent",
            "--resampler": "avsbench|bandlimited",
            "--pan": "none|linear|constant-power",
            "--crop": "none|object",
        },
        "avs-synth sample-corpus": {"--size": "tiny|small|medium"},
        "avs-train evaluate": {"--subset": "s4|ms3", "--split": "test|val|train"},
        "avs-train predict": {"--resampler": "avsbench|bandlimited"},
    }
    for where, options in expected.items():
        name, *path = where.split()
        text = _squeezed(
            runner.invoke(APPS[name], [*path, "--help"], env={"COLUMNS": "250"}).output
        )
        for option, choices in options.items():
            assert f"{option}<{choices}>" in text, (where, option)


def test_an_unknown_choice_names_the_choices_in_one_line(tmp_path) -> None:
    result = runner.invoke(
        synth_app,
        ["build", "--out", str(tmp_path), "--corpus", str(tmp_path), "--mask-mode", "semantc"],
    )
    assert result.exit_code == 2
    assert "'semantc'isnotoneof'semantic','instance'" in _squeezed(result.output)
    assert "Traceback" not in result.output
