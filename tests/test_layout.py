"""The layout: every package committed and shipped, one documented room per stage, short modules.

The import direction between the rooms is checked by ``lint-imports`` (``make lint``), from the
contracts in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"avs_synth": "avs_synth", "avs_model": "avs_model", "cli": "avs_synth_cli"}
DATA_PACKAGES = {"category_maps": "avs_synth_category_maps"}
LONG_MODULE = 600  # lines; a longer module says why in its docstring
MAX_MODULE = 800


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (the layout is checked on the repository)")
    result = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    )
    return [name for name in result.stdout.split("\0") if name]


def _package_dirs() -> list[Path]:
    """Every folder under the importable roots that holds Python files."""
    out = []
    for folder in (*PACKAGES, *DATA_PACKAGES):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts and path.parent not in out:
                out.append(path.parent)
    return out


def _sub_packages() -> list[str]:
    """``avs_synth.sources``, ``avs_model.modeling``... (one level below each library root)."""
    return sorted(
        f"{root}.{child.name}"
        for root in ("avs_synth", "avs_model")
        for child in (ROOT / root).iterdir()
        if (child / "__init__.py").is_file()
    )


def test_git_tracks_every_package_init() -> None:
    tracked = set(_tracked_files())
    missing = []
    for folder in _package_dirs():
        init = (folder / "__init__.py").relative_to(ROOT).as_posix()
        if init not in tracked:
            missing.append(init)
    assert missing == [], f"package folders whose __init__.py git does not track: {missing}"
    test_folders = {p.parent for p in (ROOT / "tests").rglob("test_*.py")}
    untracked_tests = [
        (folder / "__init__.py").relative_to(ROOT).as_posix()
        for folder in sorted(test_folders)
        if (folder / "__init__.py").relative_to(ROOT).as_posix() not in tracked
    ]
    assert untracked_tests == []


def test_no_folder_is_named_build() -> None:
    # .gitignore ignores every build/ folder, so files in one would never be committed
    folders = {part for name in _tracked_files() for part in Path(name).parts[:-1]}
    assert "build" not in folders
    on_disk = [
        p.relative_to(ROOT).as_posix()
        for folder in (*PACKAGES, *DATA_PACKAGES, "tests")
        for p in (ROOT / folder).rglob("build")
        if p.is_dir()
    ]
    assert on_disk == []


def test_every_sub_package_says_what_it_holds_and_may_import() -> None:
    for name in _sub_packages():
        init = ROOT / name.replace(".", "/") / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init}: no docstring"
        assert "import" in doc.lower(), (
            f"{init}: the docstring does not say what the package may import"
        )


def test_readme_layout_names_every_sub_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [n for n in _sub_packages() if f"`{n.replace('.', '/')}/`" not in layout]
    assert missing == [], f"README's Layout section does not name {missing}"


def test_tests_mirror_the_packages() -> None:
    expected = {f"tests/{name.replace('.', '/')}" for name in _sub_packages()}
    present = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")}
    assert expected <= present, f"sub-packages without a test folder: {sorted(expected - present)}"


def test_modules_are_short_or_say_why() -> None:
    too_long, unexplained = [], []
    for folder in (*PACKAGES, "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").count("\n")
            name = path.relative_to(ROOT).as_posix()
            if lines > MAX_MODULE:
                too_long.append(f"{name} ({lines} lines)")
            elif lines > LONG_MODULE:
                doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
                if "Why this module is long:" not in doc:
                    unexplained.append(f"{name} ({lines} lines)")
    assert too_long == [], f"modules over {MAX_MODULE} lines: {too_long}"
    assert unexplained == [], (
        f"modules over {LONG_MODULE} lines without 'Why this module is long:' in their "
        f"docstring: {unexplained}"
    )


@pytest.mark.slow
def test_the_wheel_holds_every_package_recipe_and_category_map(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in _tracked_files():
        if not (ROOT / name).is_file():
            continue  # deleted in the working tree
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--disable-pip-version-check", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("avs_synth-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
    expected = set()
    for folder, installed in {**PACKAGES, **DATA_PACKAGES}.items():
        for path in (source / folder).rglob("*"):
            relative = path.relative_to(source / folder).as_posix()
            if path.name == "__init__.py" or (
                path.is_file()
                and (folder == "category_maps" or "recipes" in path.relative_to(source).parts)
            ):
                expected.add(f"{installed}/{relative}")
    assert expected, "nothing to look for"
    missing = sorted(expected - members)
    assert missing == [], f"files missing from {wheel.name}: {missing}"
